"""Event attachments: documents an event lists (programme, rules) for its readers to download.

An attachment is a document (a PDF) uploaded with purpose ``attachment`` by the event's own
organization, downloaded as the bytes uploaded; while a live event lists it, the media cleanup keeps it (``is_referenced``, the
``media_due_for_cleanup`` function of migration 0018) and it cannot be deleted. Whoever may see
the event may list and download its attachments (the SECURITY DEFINER functions of 0018 answer
them without exposing the organization's media rows); owners and moderators add and remove them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from domain.db.base import uuid7
from domain.errors import Conflict, InvalidState, NotFound, ValidationFailed
from domain.event.models import Event, EventStatus
from domain.media.content import DOCUMENT_TYPES
from domain.media.events import EventAttachmentAdded, EventAttachmentRemoved
from domain.media.models import EventAttachment, Media, MediaPurpose
from domain.uow import UnitOfWork

MAX_PER_EVENT = 20


@dataclass(frozen=True)
class Listed:
    """An attachment as its readers see it."""

    id: uuid.UUID
    title: str
    position: int
    content_type: str
    size_bytes: int
    filename: str | None
    created_at: datetime


def _event(uow: UnitOfWork, event_id: uuid.UUID, *, lock: bool = False) -> Event:
    event = uow.session.get(Event, event_id, with_for_update=lock or None)
    if event is None or event.deleted_at is not None:
        raise NotFound("Event not found")
    return event


def add_attachment(
    uow: UnitOfWork,
    event_id: uuid.UUID,
    *,
    media_id: uuid.UUID,
    title: str,
    position: int,
    actor: uuid.UUID,
) -> tuple[EventAttachment, Media]:
    """List an uploaded document on the event (owners and moderators, in the event's tenant).

    The file is locked FOR SHARE until the commit, so neither a delete nor the cleanup can take
    it away between this check and the row that keeps it."""
    event = _event(uow, event_id, lock=True)  # serialises the count below per event
    if event.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
        raise InvalidState(
            f"A {event.status.value} event cannot be edited", details={"status": event.status.value}
        )
    media = uow.session.scalar(
        select(Media)
        .where(Media.id == media_id, Media.tenant_id == event.tenant_id, Media.deleted_at.is_(None))
        .with_for_update(read=True)
    )
    if (
        media is None
        or media.purpose != MediaPurpose.ATTACHMENT
        or media.content_type not in DOCUMENT_TYPES
    ):
        raise ValidationFailed(
            "Not a document uploaded as an attachment by this organization",
            code="invalid_media",
            details={"media_id": str(media_id)},
        )
    count = uow.session.scalar(
        select(func.count()).where(
            EventAttachment.event_id == event_id, EventAttachment.deleted_at.is_(None)
        )
    )
    if count >= MAX_PER_EVENT:
        raise Conflict(
            f"An event lists at most {MAX_PER_EVENT} attachments",
            code="too_many_attachments",
            details={"limit": MAX_PER_EVENT},
        )
    attachment = EventAttachment(
        id=uuid7(),
        tenant_id=event.tenant_id,
        event_id=event_id,
        media_id=media_id,
        title=title,
        position=position,
        created_by=actor,
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(attachment)
            uow.session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "The event already lists this file",
            code="attachment_exists",
            details={"media_id": str(media_id)},
        ) from exc
    uow.emit(
        EventAttachmentAdded(
            aggregate_id=event_id,
            tenant_id=event.tenant_id,
            event_id=event_id,
            attachment_id=attachment.id,
            media_id=media_id,
            title=title,
            content_type=media.content_type,
            size_bytes=media.size_bytes,
            added_by=actor,
        )
    )
    return attachment, media


def remove_attachment(
    uow: UnitOfWork, event_id: uuid.UUID, attachment_id: uuid.UUID, actor: uuid.UUID
) -> None:
    attachment = uow.session.scalar(
        select(EventAttachment)
        .where(
            EventAttachment.id == attachment_id,
            EventAttachment.event_id == event_id,
            EventAttachment.deleted_at.is_(None),
        )
        .with_for_update()
    )
    if attachment is None:
        raise NotFound("Attachment not found")
    attachment.deleted_at = datetime.now(UTC)
    attachment.deleted_by = actor
    uow.session.flush()
    uow.emit(
        EventAttachmentRemoved(
            aggregate_id=event_id,
            tenant_id=attachment.tenant_id,
            event_id=event_id,
            attachment_id=attachment_id,
            media_id=attachment.media_id,
            removed_by=actor,
        )
    )


def list_attachments(uow: UnitOfWork, event_id: uuid.UUID) -> list[Listed]:
    """The event's attachments in their order, for whoever may see the event (anyone else:
    not found, as the event itself)."""
    visible = uow.session.execute(text("SELECT app_can_see_event(:e)"), {"e": event_id})
    if not visible.scalar_one():
        raise NotFound("Event not found")
    rows = uow.session.execute(
        text(
            'SELECT id, title, "position", content_type, size_bytes, filename, created_at'
            " FROM event_attachments_of(:e)"
        ),
        {"e": event_id},
    )
    return [Listed(*row) for row in rows]


def attachment_object(
    uow: UnitOfWork, event_id: uuid.UUID, attachment_id: uuid.UUID
) -> tuple[str, str, str | None, str]:
    """Storage key, type, file name and title of an attachment, for whoever may see the
    event."""
    row = uow.session.execute(
        text(
            "SELECT storage_key, content_type, filename, title FROM event_attachment_object(:e, :a)"
        ),
        {"e": event_id, "a": attachment_id},
    ).first()
    if row is None:
        raise NotFound("Attachment not found")
    return row.storage_key, row.content_type, row.filename, row.title
