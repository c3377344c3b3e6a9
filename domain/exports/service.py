"""Requesting exports and reading them back. The runner (warehouse/exports/runner.py) does the
work; here are the rules a request must pass before anything is queued."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from domain.errors import NotFound
from domain.event.models import Event
from domain.exports.errors import InvalidRange, TooManyExports, TooManyRowsForXlsx
from domain.exports.models import ACTIVE_STATUSES, Dataset, Export, ExportFormat
from domain.organization.models import Organization
from domain.pagination import Keyset, Page, PageRequest, desc
from domain.uow import UnitOfWork

XLSX_MAX_ROWS = 1_048_575  # a sheet's 1,048,576 rows, one of them the header


@dataclass(frozen=True)
class ExportRequest:
    dataset: Dataset
    format: ExportFormat
    event_id: uuid.UUID | None = None
    range_from: datetime | None = None
    range_to: datetime | None = None


# How many rows a request would export (for the XLSX limit), in the tenant's context.
RowCounter = Callable[[UnitOfWork, ExportRequest], int]


def slugify(value: str, fallback: str = "export") -> str:
    """ASCII, lower case, words joined by hyphens: safe in a file name and a URL."""
    ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:60].strip("-")
    return slug or fallback


def file_name(dataset: Dataset, subject: str, day: datetime, fmt: ExportFormat) -> str:
    """E.g. ``registrations_spring-meetup_2026-11-22.parquet``."""
    return f"{dataset.value}_{slugify(subject)}_{day.date().isoformat()}.{fmt.value}"


def request_export(
    uow: UnitOfWork,
    *,
    tenant_id: uuid.UUID,
    requested_by: uuid.UUID,
    request: ExportRequest,
    personal_data: bool,
    max_active: int,
    count_rows: RowCounter,
) -> Export:
    """Queue an export of the tenant (already entered). At most ``max_active`` of a tenant may
    be queued or running: the tenant's exports are serialized by a transaction-scoped advisory
    lock, so two requests at once cannot both take the last slot."""
    if request.range_from and request.range_to and request.range_from >= request.range_to:
        raise InvalidRange(
            "`from` must be before `to`",
            details={"from": request.range_from.isoformat(), "to": request.range_to.isoformat()},
        )
    if request.event_id is not None:
        event = uow.session.scalars(
            select(Event).where(
                Event.id == request.event_id,
                Event.tenant_id == tenant_id,
                Event.deleted_at.is_(None),
            )
        ).one_or_none()
        if event is None:
            raise NotFound("No such event in this organization")
        subject = event.title
    else:
        subject = uow.session.scalars(
            select(Organization.slug).where(Organization.id == tenant_id)
        ).one()
    uow.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"aqstream.exports:{tenant_id}"},
    )
    active = uow.session.scalar(
        select(func.count())
        .select_from(Export)
        .where(Export.tenant_id == tenant_id, Export.status.in_(ACTIVE_STATUSES))
    )
    if active >= max_active:
        raise TooManyExports(
            f"At most {max_active} exports of an organization may be queued or running; "
            "retry when one has finished",
            details={"active": active, "limit": max_active},
        )
    if request.format is ExportFormat.XLSX:
        rows = count_rows(uow, request)
        if rows > XLSX_MAX_ROWS:
            raise TooManyRowsForXlsx(
                f"{rows} rows do not fit in one XLSX sheet ({XLSX_MAX_ROWS} at most); "
                "choose CSV or Parquet, or a narrower range",
                details={"rows": rows, "limit": XLSX_MAX_ROWS},
            )
    export = Export(
        tenant_id=tenant_id,
        requested_by=requested_by,
        dataset=request.dataset,
        format=request.format,
        event_id=request.event_id,
        range_from=request.range_from,
        range_to=request.range_to,
        personal_data=personal_data,
        file_name=file_name(request.dataset, subject, datetime.now(UTC), request.format),
    )
    uow.session.add(export)
    uow.session.flush()
    return export


def get_export(uow: UnitOfWork, export_id: uuid.UUID) -> Export:
    export = uow.session.get(Export, export_id)
    if export is None or export.tenant_id != uow.tenant_id:
        raise NotFound("No such export")
    return export


def recent_exports(uow: UnitOfWork, tenant_id: uuid.UUID, page: PageRequest) -> Page[Export]:
    """The organization's exports, newest first."""
    stmt = select(Export).where(Export.tenant_id == tenant_id)
    return Keyset(desc(Export.created_at), desc(Export.id)).page(uow.session, stmt, page)
