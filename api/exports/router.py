"""Analytics API: exports. A request is queued (202) and run by the export runner of
``aqstream jobs``; its status and progress are polled, and once it succeeded a short-lived
presigned URL downloads the file (docs/exports.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    Membership,
    StateDep,
    UowDep,
    enter_tenant_as,
    require_resource_role,
)
from api.errors import responses
from api.media.router import StorageDep
from api.pagination import Page, Paging
from api.types import IsoDatetime, RequestModel
from domain.exports import service
from domain.exports.models import Dataset, Export, ExportFormat, ExportStatus
from warehouse.exports.datasets import count_rows, spec

router = APIRouter(prefix="/analytics", tags=["analytics"])

ExportReader = Annotated[
    Membership, Depends(require_resource_role("exports", "export_id", *READ_ROLES))
]


class ExportCreate(RequestModel):
    organization_id: uuid.UUID
    dataset: Dataset = Field(
        description="registrations; payments (payments and refunds); attendance (confirmed "
        "registrations, check-ins, no-shows); funnel and traffic (hourly warehouse rollups)"
    )
    format: ExportFormat
    event_id: uuid.UUID | None = Field(default=None, description="Only this event's rows")
    from_: IsoDatetime | None = Field(
        default=None,
        alias="from",
        description="Inclusive start: of the record's creation (registrations, payments), the "
        "event's start (attendance) or the hour (funnel, traffic)",
    )
    to: IsoDatetime | None = Field(default=None, description="Exclusive end, as `from`")


class ExportOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: uuid.UUID
    organization_id: uuid.UUID
    dataset: Dataset
    format: ExportFormat
    event_id: uuid.UUID | None
    from_: datetime | None = Field(alias="from")
    to: datetime | None
    status: ExportStatus
    progress: int = Field(ge=0, le=100, description="Percent; 100 once succeeded")
    rows: int | None = Field(description="Rows in the file, once succeeded")
    columns: list[str] = Field(
        description="The file's columns. Names, e-mails and Telegram handles are included only "
        "in exports requested by an owner or moderator"
    )
    personal_data: bool = Field(description="Whether the file holds personal data columns")
    file_name: str = Field(description="Carries the dataset, the event (or organization) and date")
    size_bytes: int | None
    download_url: str | None = Field(
        description="Presigned, short-lived GET URL of the file; only once succeeded, and only "
        "for owners and moderators when the file holds personal data"
    )
    download_expires_at: datetime | None
    error: str | None = Field(description="Why it failed")
    created_at: datetime
    finished_at: datetime | None


def _out(export: Export, member: Membership, state: StateDep, storage: StorageDep) -> ExportOut:
    url = expires = None
    may_download = not export.personal_data or member.role in MANAGE_ROLES
    if export.status is ExportStatus.SUCCEEDED and export.storage_key and may_download:
        ttl = state.settings.export_url_ttl_s
        # Signed for the address clients reach S3 under (as media URLs are).
        url = (storage.signer or storage.client).generate_presigned_url(
            "get_object",
            Params={
                "Bucket": state.settings.s3_bucket,
                "Key": export.storage_key,
                "ResponseContentDisposition": f'attachment; filename="{export.file_name}"',
            },
            ExpiresIn=ttl,
        )
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
    return ExportOut(
        id=export.id,
        organization_id=export.tenant_id,
        dataset=export.dataset,
        format=export.format,
        event_id=export.event_id,
        from_=export.range_from,
        to=export.range_to,
        status=export.status,
        progress=export.progress,
        rows=export.rows,
        columns=[c.name for c in spec(export.dataset).columns(export.personal_data)],
        personal_data=export.personal_data,
        file_name=export.file_name,
        size_bytes=export.size_bytes,
        download_url=url,
        download_expires_at=expires,
        error=export.error,
        created_at=export.created_at,
        finished_at=export.finished_at,
    )


@router.post(
    "/export",
    response_model=ExportOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(401, 403, 404, 429),
)
def request_export(
    body: ExportCreate, uow: UowDep, state: StateDep, storage: StorageDep
) -> ExportOut:
    """Queue an export of an organization's data (owners, moderators, analysts; analysts get
    no personal data columns). At most two per organization may be queued or running: one more
    is a 429 with Retry-After."""
    member = enter_tenant_as(uow, body.organization_id, READ_ROLES)
    export = service.request_export(
        uow,
        tenant_id=member.tenant_id,
        requested_by=member.user_id,
        request=service.ExportRequest(
            body.dataset, body.format, body.event_id, body.from_, body.to
        ),
        personal_data=member.role in MANAGE_ROLES,
        max_active=state.settings.export_max_active,
        count_rows=count_rows,
    )
    return _out(export, member, state, storage)


@router.get("/exports/{export_id}", response_model=ExportOut, responses=responses(401, 404))
def get_export(
    export_id: uuid.UUID,
    member: ExportReader,
    uow: UowDep,
    state: StateDep,
    storage: StorageDep,
    response: Response,
) -> ExportOut:
    """An export's status and progress, and its download URL once it succeeded (members of
    its organization)."""
    response.headers["Cache-Control"] = "no-store"
    return _out(service.get_export(uow, export_id), member, state, storage)


@router.get("/exports", response_model=Page[ExportOut], responses=responses(401, 403, 404))
def list_exports(
    uow: UowDep,
    state: StateDep,
    storage: StorageDep,
    response: Response,
    paging: Paging,
    organization_id: uuid.UUID = Query(description="The organization"),
) -> Page[ExportOut]:
    """The organization's exports, newest first (owners, moderators, analysts)."""
    member = enter_tenant_as(uow, organization_id, READ_ROLES)
    response.headers["Cache-Control"] = "no-store"
    page = service.recent_exports(uow, member.tenant_id, paging)
    return Page[ExportOut].of(page, lambda e: _out(e, member, state, storage))
