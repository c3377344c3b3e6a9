"""Sending queued notifications: claim, send with retries, record.

Each message goes through three short steps, none of which holds a transaction open across the
network:

1. **claim**, in the message's own context (its tenant, acting as its recipient): the row is
   locked ``SKIP LOCKED``; if the recipient is in quiet hours now it becomes ``deferred`` to their
   end; otherwise its ``due_at`` moves a lease ahead, so no other dispatcher takes it meanwhile.
2. **send**, retried with exponential backoff (tenacity) while the error is transient.
3. **record**: ``sent``, or ``failed`` with the last error; ``attempts`` counts every try.

A dispatcher that dies between 1 and 3 leaves the row ``queued``; it is sent again when the lease
runs out (at least once: neither the Bot API nor SMTP lets a retry be recognised as one).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from core.logging import get_logger
from core.settings import Settings
from domain.checkin import tickets
from domain.checkin.service import ticket_code
from domain.errors import InvalidState
from domain.notification.channels import ChannelError, Channels, Outgoing
from domain.notification.models import (
    Channel,
    Notification,
    NotificationPreference,
    NotificationStatus,
)
from domain.notification.preferences import quiet_hours
from domain.notification.service import INVITE_TEMPLATE, INVITE_TOKEN_MARK
from domain.organization.models import OrganizationInvite
from domain.organization.service import invite_signing_key, invite_token, token_hash
from domain.registration.models import Registration
from domain.uow import UnitOfWork

log = get_logger(__name__)

LEASE = timedelta(minutes=5)
BATCH = 200
ERROR_CHARS = 2000
_PENDING = (NotificationStatus.QUEUED, NotificationStatus.DEFERRED)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


@dataclass(frozen=True)
class Pending:
    """A message to deliver, by id and the context its row lives in."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    user_id: uuid.UUID | None  # None: an address without an account (an invitation)

    @classmethod
    def of(cls, notification: Notification) -> Pending:
        return cls(notification.id, notification.tenant_id, notification.user_id)


@dataclass(frozen=True)
class _Claimed:
    pending: Pending
    channel: Channel
    outgoing: Outgoing


def _uow(sessions: sessionmaker[Session], item: Pending) -> UnitOfWork:
    # The recipient's own context: their preferences and, for platform messages, the row itself.
    return UnitOfWork(sessions, tenant_id=item.tenant_id, user_id=item.user_id)


def _claim(
    sessions: sessionmaker[Session], item: Pending, now: datetime, ticket_key: bytes
) -> _Claimed | NotificationStatus | None:
    with _uow(sessions, item) as uow:
        row = uow.session.scalar(
            select(Notification)
            .where(
                Notification.id == item.id,
                Notification.status.in_(_PENDING),
                Notification.due_at <= now,
            )
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return None  # sent, failed, not yet due, or being sent by another dispatcher
        prefs = uow.session.get(NotificationPreference, row.user_id) if row.user_id else None
        quiet = quiet_hours(prefs)
        until = quiet.until(now) if quiet else None
        if until is not None:
            row.status, row.due_at = NotificationStatus.DEFERRED, until
            uow.commit()
            return NotificationStatus.DEFERRED
        image = None
        if row.registration_id is not None:
            registration = uow.session.get(Registration, row.registration_id)
            try:
                if registration is None:
                    raise InvalidState("The registration is gone", code="cancelled")
                image = tickets.qr_png(ticket_code(registration, ticket_key))
            except InvalidState as exc:
                row.status, row.last_error = NotificationStatus.FAILED, f"not sent: {exc.message}"
                uow.commit()
                return NotificationStatus.FAILED
        texts = (row.subject, row.body_text, row.body_html)
        if row.template == INVITE_TEMPLATE:
            token = _invite_token(uow, row, now, ticket_key)
            if token is None:
                row.status = NotificationStatus.FAILED
                row.last_error = "not sent: the invitation was accepted, revoked or has expired"
                uow.commit()
                return NotificationStatus.FAILED
            texts = tuple(t.replace(INVITE_TOKEN_MARK, token) for t in texts)
        row.status, row.due_at = NotificationStatus.QUEUED, now + LEASE
        outgoing = Outgoing(
            address=row.address,
            subject=texts[0],
            text=texts[1],
            html=texts[2],
            image_png=image,
        )
        claimed = _Claimed(item, row.channel, outgoing)
        uow.commit()
        return claimed


def _invite_token(
    uow: UnitOfWork, row: Notification, now: datetime, ticket_key: bytes
) -> str | None:
    """The token of the invitation an invitation message is keyed by, drawn again from its id;
    None once it is no longer pending (a revoked invitation expires at once) or its token cannot
    be drawn (one made with another key)."""
    invite = uow.session.get(OrganizationInvite, row.source_event_id)
    if invite is None or invite.accepted_at is not None or invite.expires_at <= now:
        return None
    token = invite_token(invite_signing_key(ticket_key.decode()), invite.id)
    return token if token_hash(token) == invite.token_hash else None


def _record(sessions: sessionmaker[Session], item: Pending, tries: int, error: str | None) -> None:
    with _uow(sessions, item) as uow:
        row = uow.session.get(Notification, item.id, with_for_update=True)
        row.attempts += tries
        if error is None:
            row.status, row.sent_at, row.last_error = NotificationStatus.SENT, _now(), None
        else:
            row.status, row.last_error = NotificationStatus.FAILED, error[:ERROR_CHARS]
        uow.commit()


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ChannelError) and exc.transient


def _backoff(settings: Settings):
    exponential = wait_exponential(
        multiplier=settings.notification_retry_base_s, max=settings.notification_retry_max_s
    )

    def wait(state) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ChannelError) and exc.retry_after is not None:
            return min(exc.retry_after, settings.notification_retry_max_s)  # Telegram's 429
        return exponential(state)

    return wait


async def deliver(
    sessions: sessionmaker[Session],
    channels: Channels,
    items: Iterable[Pending | Notification],
    *,
    now: datetime | None = None,
) -> DeliveryResult:
    """Send these messages now if they are due (e.g. the ones ``handle`` just queued, after its
    transaction committed); answer what became of them."""
    settings = channels.settings
    key = settings.ticket_signing_key.get_secret_value().encode()
    result = DeliveryResult()
    async with channels.open() as senders:
        for entry in items:
            item = entry if isinstance(entry, Pending) else Pending.of(entry)
            claimed = await asyncio.to_thread(_claim, sessions, item, now or _now(), key)
            if claimed is None:
                continue
            if claimed == NotificationStatus.DEFERRED:
                result.deferred += 1
                continue
            if claimed == NotificationStatus.FAILED:
                result.failed += 1
                continue
            tries, error = 0, None
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(settings.notification_attempts),
                    wait=_backoff(settings),
                    retry=retry_if_exception(_transient),
                    reraise=True,
                ):
                    with attempt:
                        tries += 1
                        await senders[claimed.channel].send(claimed.outgoing)
            except ChannelError as exc:
                error = str(exc)
            await asyncio.to_thread(_record, sessions, item, tries, error)
            if error is None:
                result.sent += 1
            else:
                result.failed += 1
                log.warning(
                    "notification_failed",
                    notification_id=str(item.id),
                    channel=claimed.channel.value,
                    attempts=tries,
                    error=error,
                )
    return result


def due(
    sessions: sessionmaker[Session], *, now: datetime | None = None, limit: int = BATCH
) -> list[Pending]:
    """Messages due by ``now`` across tenants (ids only, from ``due_notifications()``)."""
    with sessions() as session:
        rows = session.execute(
            text("SELECT * FROM due_notifications(:now, :n)"), {"now": now or _now(), "n": limit}
        ).all()
    return [Pending(*row) for row in rows]


async def deliver_due(
    sessions: sessionmaker[Session],
    channels: Channels,
    *,
    now: datetime | None = None,
    limit: int = BATCH,
) -> DeliveryResult:
    """One pass of the dispatcher: every queued message due by now, and deferred ones whose
    quiet hours are over."""
    return await deliver(sessions, channels, due(sessions, now=now, limit=limit), now=now)


def deliver_due_blocking(
    sessions: sessionmaker[Session], channels: Channels, *, now: datetime | None = None
) -> DeliveryResult:
    """``deliver_due`` for a synchronous caller (the background jobs loop)."""
    return asyncio.run(deliver_due(sessions, channels, now=now))
