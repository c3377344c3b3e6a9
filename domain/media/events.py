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
