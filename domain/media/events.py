"""Events of uploaded files."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.events import DomainEvent


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


@dataclass(frozen=True, kw_only=True)
class MediaDeleted(DomainEvent):
    """A file was deleted; its objects go at the next cleanup."""

    event_type = "media.deleted"
    aggregate_type = "media"

    media_id: uuid.UUID
    organization_id: uuid.UUID
    deleted_by: uuid.UUID
