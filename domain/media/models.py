"""Uploaded files (media) and the objects stored for them in S3 (variants).

A row's objects live under ``tenants/<tenant_id>/media/<media id>/<variant>.<ext>``. Deleting
is soft (``deleted_at``); the cleanup job removes the objects and sets ``purged_at``.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey
from domain.organization.models import _enum


class MediaPurpose(enum.StrEnum):
    EVENT_COVER = "event_cover"
    ORGANIZATION_LOGO = "organization_logo"
    ATTACHMENT = "attachment"


class VariantName(enum.StrEnum):
    ORIGINAL = "original"  # documents: the uploaded bytes
    THUMBNAIL = "thumbnail"  # images: the derived renditions below
    CARD = "card"
    COVER = "cover"


class Media(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "media"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    purpose: Mapped[MediaPurpose] = mapped_column(_enum(MediaPurpose, "media_purpose"))
    # Detected from the content, never taken from the client.
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    width: Mapped[int | None]
    height: Mapped[int | None]
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

    __table_args__ = (
        # The target of the (tenant_id, ...) foreign keys of events and organizations: a cover
        # or logo is always media of the same tenant, enforced by the database.
        UniqueConstraint("tenant_id", "id"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
        CheckConstraint("purged_at IS NULL OR deleted_at IS NOT NULL", name="purged_is_deleted"),
        Index("ix_media_cleanup", "created_at", postgresql_where=sql_text("purged_at IS NULL")),
    )


class MediaVariant(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "media_variants"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id"))
    name: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(100))
    storage_key: Mapped[str] = mapped_column(String(300))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None]
    height: Mapped[int | None]

    __table_args__ = (Index("uq_media_variants_media_id_name", "media_id", "name", unique=True),)


class EventAttachment(UUIDPrimaryKey, Timestamps, Base):
    """A document an event lists (programme, rules): an upload of purpose ``attachment`` that
    stays as long as an event lists it."""

    __tablename__ = "event_attachments"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    media_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(server_default=sql_text("0"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None]  # removed from the event (a soft delete)
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("btrim(title) <> ''", name="title_not_blank"),
        CheckConstraint("position BETWEEN 0 AND 1000", name="position_range"),
        ForeignKeyConstraint(["tenant_id", "media_id"], ["media.tenant_id", "media.id"]),
        Index(
            "uq_event_attachments_event_id_media_id",
            "event_id",
            "media_id",
            unique=True,
            postgresql_where=sql_text("deleted_at IS NULL"),
        ),
        Index(
            "ix_event_attachments_media_id",
            "media_id",
            postgresql_where=sql_text("deleted_at IS NULL"),
        ),
    )
