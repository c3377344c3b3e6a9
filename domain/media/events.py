"""Events of uploaded files."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.media.models import Media, MediaVariant


@dataclass(frozen=True, kw_only=True)
class MediaUploaded(DomainEvent):
    """A file was uploaded and its objects stored (variants: the names of what was stored)."""

    event_type = "media.uploaded"
    aggregate_type = "media"

    media_id: uuid.UUID
    organization_id: uuid.UUID
    purpose: str
    content_type: str
    size_bytes: int
    uploaded_by: uuid.UUID
    variants: list[str]

    @classmethod
    def of(cls, media: Media, variants: Sequence[MediaVariant]) -> Self:
        return cls(
            aggregate_id=media.id,
            tenant_id=media.tenant_id,
            media_id=media.id,
            organization_id=media.tenant_id,
            purpose=media.purpose.value,
            content_type=media.content_type,
            size_bytes=media.size_bytes,
            uploaded_by=media.uploaded_by,
            variants=[v.name for v in variants],
        )


@dataclass(frozen=True, kw_only=True)
class MediaDeleted(DomainEvent):
    """A file was deleted; its objects go at the next cleanup."""

    event_type = "media.deleted"
    aggregate_type = "media"

    media_id: uuid.UUID
    organization_id: uuid.UUID
    deleted_by: uuid.UUID

    @classmethod
    def of(cls, media: Media, *, deleted_by: uuid.UUID) -> Self:
        return cls(
            aggregate_id=media.id,
            tenant_id=media.tenant_id,
            media_id=media.id,
            organization_id=media.tenant_id,
            deleted_by=deleted_by,
        )


@dataclass(frozen=True, kw_only=True)
class EventAttachmentAdded(DomainEvent):
    """An event lists a document (programme, rules) for its readers to download."""

    event_type = "event.attachment.added"
    aggregate_type = "event"

    event_id: uuid.UUID
    attachment_id: uuid.UUID
    media_id: uuid.UUID
    title: str
    content_type: str
    size_bytes: int
    added_by: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class EventAttachmentRemoved(DomainEvent):
    """An event no longer lists a document (the file goes at the media cleanup after the grace
    period unless something else keeps it)."""

    event_type = "event.attachment.removed"
    aggregate_type = "event"

    event_id: uuid.UUID
    attachment_id: uuid.UUID
    media_id: uuid.UUID
    removed_by: uuid.UUID
