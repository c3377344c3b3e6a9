"""Uploading, reading and deleting media; what covers and logos may point at."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from sqlalchemy import exists, select, text

from domain.db.base import uuid7
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.event.models import Event
from domain.media.content import DOCUMENT_TYPES, is_image
from domain.media.events import MediaDeleted, MediaUploaded
from domain.media.images import Rendition, process_image
from domain.media.models import EventAttachment, Media, MediaPurpose, MediaVariant, VariantName
from domain.media.storage import MediaStorage, object_key
from domain.organization.models import Organization
from domain.uow import UnitOfWork


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UploadedFile:
    """A received file, already within its type's size limit; ``content_type`` was detected
    from its content."""

    file: BinaryIO
    size: int
    content_type: str
    sha256: str
    filename: str | None


def default_variant(media: Media) -> VariantName:
    return VariantName.COVER if is_image(media.content_type) else VariantName.ORIGINAL


def _renditions(upload: UploadedFile, max_pixels: int) -> tuple[int | None, int | None, list]:
    upload.file.seek(0)
    if is_image(upload.content_type):
        image = process_image(upload.file, upload.content_type, max_pixels)
        return image.width, image.height, image.variants
    data = upload.file.read()
    original = Rendition(
        VariantName.ORIGINAL,
        data,
        width=0,
        height=0,
        content_type=upload.content_type,
        ext=DOCUMENT_TYPES[upload.content_type],
    )
    return None, None, [original]


def upload_media(
    uow: UnitOfWork,
    storage: MediaStorage,
    *,
    tenant_id: uuid.UUID,
    uploaded_by: uuid.UUID,
    purpose: MediaPurpose,
    upload: UploadedFile,
    max_image_pixels: int,
) -> tuple[Media, list[MediaVariant]]:
    """Store a file and, for images, its variants; the rows are written first (flushed, not
    committed), then the objects, so a refused row never leaves objects behind."""
    width, height, renditions = _renditions(upload, max_image_pixels)
    media = Media(
        id=uuid7(),
        tenant_id=tenant_id,
        purpose=purpose,
        content_type=upload.content_type,
        size_bytes=upload.size,
        sha256=upload.sha256,
        filename=upload.filename,
        width=width,
        height=height,
        uploaded_by=uploaded_by,
    )
    variants = [
        MediaVariant(
            id=uuid7(),
            tenant_id=tenant_id,
            media_id=media.id,
            name=r.name.value,
            content_type=r.content_type,
            storage_key=object_key(tenant_id, media.id, r.name.value, r.ext),
            size_bytes=len(r.data),
            width=r.width or None,
            height=r.height or None,
        )
        for r in renditions
    ]
    uow.session.add(media)
    uow.session.flush()  # the parent first: variants reference it
    uow.session.add_all(variants)
    uow.session.flush()
    stored: list[str] = []
    try:
        for rendition, variant in zip(renditions, variants, strict=True):
            storage.put(variant.storage_key, rendition.data, rendition.content_type)
            stored.append(variant.storage_key)
    except Exception:
        storage.delete_quietly(stored)
        raise
    uow.emit(MediaUploaded.of(media, variants))
    return media, variants


def get_media(uow: UnitOfWork, media_id: uuid.UUID, *, lock: bool = False) -> Media:
    media = uow.session.get(Media, media_id, with_for_update=lock or None)
    if media is None or media.deleted_at is not None:
        raise NotFound("Media not found")
    return media


def list_variants(uow: UnitOfWork, media_id: uuid.UUID) -> list[MediaVariant]:
    return list(
        uow.session.scalars(
            select(MediaVariant)
            .where(MediaVariant.media_id == media_id)
            .order_by(MediaVariant.size_bytes)
        )
    )


def get_variant(uow: UnitOfWork, media: Media, name: VariantName | None) -> MediaVariant:
    wanted = (name or default_variant(media)).value
    variant = uow.session.scalar(
        select(MediaVariant).where(MediaVariant.media_id == media.id, MediaVariant.name == wanted)
    )
    if variant is None:
        raise NotFound(
            f"This file has no {wanted} variant",
            code="variant_not_found",
            details={"variant": wanted},
        )
    return variant


# Every column that keeps media alive. A feature that references media adds its column here;
# cleanup_media (domain/media/cleanup.py) purges what none of them names after the grace period.
def _referencing_events(media_id: uuid.UUID):
    return select(Event.id).where(Event.cover_media_id == media_id, Event.deleted_at.is_(None))


def _referencing_organizations(media_id: uuid.UUID):
    return select(Organization.id).where(
        Organization.logo_media_id == media_id, Organization.deleted_at.is_(None)
    )


def _attaching_events(media_id: uuid.UUID):
    return (
        select(EventAttachment.event_id)
        .join(Event, Event.id == EventAttachment.event_id)
        .where(
            EventAttachment.media_id == media_id,
            EventAttachment.deleted_at.is_(None),
            Event.deleted_at.is_(None),
        )
    )


def is_referenced(media_id: uuid.UUID):
    """SQL condition: something live points at ``media_id``."""
    return (
        exists(_referencing_events(media_id))
        | exists(_referencing_organizations(media_id))
        | exists(_attaching_events(media_id))
    )


def delete_media(uow: UnitOfWork, media_id: uuid.UUID, actor: uuid.UUID) -> None:
    """Soft delete; refused while an event or organization still shows the file."""
    media = get_media(uow, media_id, lock=True)
    events = list(uow.session.scalars(_referencing_events(media_id)))
    events += [e for e in uow.session.scalars(_attaching_events(media_id)) if e not in events]
    organizations = list(uow.session.scalars(_referencing_organizations(media_id)))
    if events or organizations:
        raise Conflict(
            "The file is in use; remove it from these first",
            code="media_in_use",
            details={
                "events": [str(e) for e in events],
                "organizations": [str(o) for o in organizations],
            },
        )
    media.deleted_at = _now()
    uow.session.flush()
    uow.emit(MediaDeleted.of(media, deleted_by=actor))


def usable_image(uow: UnitOfWork, media_id: uuid.UUID, tenant_id: uuid.UUID) -> Media:
    """The image an event cover or organization logo may point at: of the same tenant, not
    deleted. Locked FOR SHARE until the transaction ends, so neither a delete nor the cleanup
    can take it away between this check and the commit."""
    media = uow.session.scalar(
        select(Media)
        .where(Media.id == media_id, Media.tenant_id == tenant_id, Media.deleted_at.is_(None))
        .with_for_update(read=True)
    )
    if media is None or not is_image(media.content_type):
        raise ValidationFailed(
            "Not an image of this organization",
            code="invalid_media",
            details={"media_id": str(media_id)},
        )
    return media


def event_cover_variant(
    uow: UnitOfWork, event_id: uuid.UUID, name: VariantName
) -> tuple[str, str] | None:
    """Storage key and type of an event's cover variant, for anyone who may see the event
    (a SECURITY DEFINER function answers only these two values)."""
    row = uow.session.execute(
        text("SELECT storage_key, content_type FROM event_cover_variant(:e, :v)"),
        {"e": event_id, "v": name.value},
    ).first()
    return (row.storage_key, row.content_type) if row else None
