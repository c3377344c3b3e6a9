"""An export job: what to export, for whom, and how far it got.

A row is created ``queued`` by the API; the runner claims it (``running``), reports progress
and a heartbeat while it streams the rows, and ends it ``succeeded`` (with the file in S3 under
``tenants/<tenant_id>/exports/<id>/<file_name>``) or ``failed`` (with the error).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey
from domain.organization.models import _enum


class Dataset(enum.StrEnum):
    REGISTRATIONS = "registrations"
    PAYMENTS = "payments"  # payments and refunds, one row each
    ATTENDANCE = "attendance"
    FUNNEL = "funnel"  # warehouse rollups
    TRAFFIC = "traffic"  # warehouse rollups


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    XLSX = "xlsx"


class ExportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


ACTIVE_STATUSES = (ExportStatus.QUEUED, ExportStatus.RUNNING)


class Export(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "exports"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    requested_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    dataset: Mapped[Dataset] = mapped_column(_enum(Dataset, "export_dataset"))
    format: Mapped[ExportFormat] = mapped_column(_enum(ExportFormat, "export_format"))
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"))
    range_from: Mapped[datetime | None]
    range_to: Mapped[datetime | None]
    # Names, e-mails and Telegram handles are in the file only when the requester was an owner
    # or moderator; decided once, at request time.
    personal_data: Mapped[bool]
    status: Mapped[ExportStatus] = mapped_column(
        _enum(ExportStatus, "export_status"), server_default=sql_text("'queued'")
    )
    progress: Mapped[int] = mapped_column(SmallInteger, server_default=sql_text("0"))
    rows: Mapped[int | None] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(300))
    storage_key: Mapped[str | None] = mapped_column(String(600))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=sql_text("0"))
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        CheckConstraint(
            "range_from IS NULL OR range_to IS NULL OR range_from < range_to", name="range_order"
        ),
        CheckConstraint(
            "status NOT IN ('succeeded', 'failed') OR finished_at IS NOT NULL", name="finished"
        ),
        CheckConstraint("status <> 'failed' OR error IS NOT NULL", name="failure_explained"),
        Index("ix_exports_tenant_id_created_at", "tenant_id", "created_at"),
        Index(
            "ix_exports_active",
            "status",
            "created_at",
            postgresql_where=sql_text("status IN ('queued', 'running')"),
        ),
    )
