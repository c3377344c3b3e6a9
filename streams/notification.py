"""The notifications agent (``notifications``, on every topic carrying a type of
``NOTIFICATION_EVENT_TYPES``): ``domain.notification.service.handle`` (or a handler of its own,
``SPECIAL``: the resent ticket, the password reset and address verification e-mails) queues the
messages
(deduplicated by source event id in the notification log), commits, then ``delivery.deliver``
sends what of this event is still queued and due, so a record redelivered after a crash between
commit and sending still sends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, text

from core.logging import get_logger
from core.settings import Settings
from domain.identity.email_verification import signing_key as verification_key
from domain.identity.password_reset import signing_key
from domain.notification import delivery, email_verification, password_reset, resend
from domain.notification.models import Notification, NotificationStatus
from domain.notification.service import HANDLED_EVENT_TYPES, handle, sources_of
from domain.uow import UnitOfWork
from streams.processor import Deps
from streams.records import Record

log = get_logger(__name__)

NOTIFICATIONS = "notifications"

# Event types with a handler of their own (the rest go to domain/notification/service.py's
# ``handle``): the ticket an organizer asks to send again, and the account's own e-mails, whose
# links carry a token the handler derives with the platform's key (password reset, address
# verification).
Special = Callable[[UnitOfWork, Record, Settings], object]
SPECIAL: dict[str, Special] = {
    resend.EVENT_TYPE: lambda uow, record, _settings: resend.handle(
        uow, record.payload(), record.event_id
    ),
    password_reset.EVENT_TYPE: lambda uow, record, settings: password_reset.handle(
        uow,
        record.payload(),
        record.event_id,
        key=signing_key(settings.ticket_signing_key.get_secret_value()),
        link=settings.password_reset_url,
    ),
    email_verification.EVENT_TYPE: lambda uow, record, settings: email_verification.handle(
        uow,
        record.payload(),
        record.event_id,
        key=verification_key(settings.ticket_signing_key.get_secret_value()),
        link=settings.email_verification_url,
    ),
}
NOTIFICATION_EVENT_TYPES = (*HANDLED_EVENT_TYPES, *SPECIAL)


_INBOX = text(
    "INSERT INTO inbox (consumer, event_id) VALUES (:consumer, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


def queue_notifications(deps: Deps, record: Record) -> list[delivery.Pending]:
    """Queue the messages of this record (once), and answer every message of it still queued
    and due: the new ones, and those a crashed worker committed but never sent (blocking).

    The record is handled once: its inbox row ``(worker.notifications, event id)`` commits with
    the messages it queued, so a redelivered record queues nothing (not even to people who
    became recipients since, such as a group's new member) and only sends what is still queued.
    """
    with UnitOfWork(deps.sessions, headers=record.outbox_headers) as uow:
        fresh = uow.session.execute(
            _INBOX, {"consumer": f"worker.{NOTIFICATIONS}", "event_id": record.event_id}
        ).first()
        if fresh is not None:
            special = SPECIAL.get(record.event_type)
            if special is not None:
                special(uow, record, deps.settings)
            else:
                handle(uow, record.event_type, record.payload(), record.headers)
        sources = [record.event_id, *sources_of(record.event_type, record.payload())]
        rows = uow.session.scalars(
            select(Notification).where(
                Notification.source_event_id.in_(sources),
                Notification.status == NotificationStatus.QUEUED,
                Notification.due_at <= datetime.now(UTC),
            )
        ).all()
        pending = [delivery.Pending.of(row) for row in rows]
        uow.commit()
    return pending


async def notification_handler(deps: Deps, record: Record) -> None:
    if record.event_type not in NOTIFICATION_EVENT_TYPES:
        return
    pending = await asyncio.to_thread(queue_notifications, deps, record)
    if pending:
        result = await delivery.deliver(deps.sessions, deps.channels, pending)
        log.info(
            "notifications",
            event_type=record.event_type,
            event_id=str(record.event_id),
            sent=result.sent,
            failed=result.failed,
            deferred=result.deferred,
        )
