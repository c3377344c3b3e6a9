"""Turning domain events into queued notifications, organizers' messages, and event reminders.

``handle`` is the one entry point of the notification stream processor: it decodes nothing, owns
no transaction, and sends nothing. Inside the caller's unit of work it writes one row per
recipient into the notification log (``queued``, or ``deferred`` to the end of the recipient's
quiet hours), rendered in the recipient's language; ``domain.notification.delivery`` sends them.
The log is unique per (source event id, recipient, channel), so handling a redelivered event
queues nothing new.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased, sessionmaker

from domain.db.base import uuid7
from domain.errors import NotFound, ValidationFailed
from domain.event.models import Event, EventStatus, TicketType, Visibility
from domain.group.models import Group, GroupMember
from domain.identity.models import User
from domain.notification import catalog
from domain.notification.events import EventReminderDue
from domain.notification.models import (
    Channel,
    EventReminder,
    Notification,
    NotificationPreference,
    NotificationStatus,
)
from domain.notification.preferences import address, effective_channel, quiet_hours
from domain.organization.models import Organization, OrganizationInvite
from domain.pagination import Keyset, Page, PageRequest, desc
from domain.registration.models import Registration, RegistrationStatus
from domain.uow import UnitOfWork

# Header names that may carry the event id (the relay writes ``event_id``).
EVENT_ID_HEADERS = ("event_id", "event-id", "id")
LIVE = (RegistrationStatus.CONFIRMED, RegistrationStatus.PENDING_PAYMENT)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Source:
    """The fact a notification answers: a consumed event, or an organizer's message."""

    id: uuid.UUID
    type: str
    tenant_id: uuid.UUID | None


@dataclass(frozen=True)
class Recipient:
    user: User
    channel: Channel
    address: str
    language: str
    deferred_until: datetime | None


# --- the entry point ----------------------------------------------------------------------------


def handle(
    uow: UnitOfWork,
    event_type: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]],
    *,
    now: datetime | None = None,
) -> list[Notification]:
    """Queue the notifications ``event_type`` calls for; answer those this call queued (none for
    an event type that sends nothing, or for an event already handled).

    ``payload`` is the event's JSON body; ``headers`` must carry its id (``event_id``; Kafka's
    ``(name, bytes)`` pairs are accepted). ``uow`` may come without context: ``handle`` enters
    the event's tenant (and acts as the recipient when there is exactly one). The caller commits.
    """
    handler = _HANDLERS.get(event_type)
    if handler is None:
        return []
    tenant = payload.get("tenant_id")
    source = Source(
        id=_event_id(headers),
        type=event_type,
        tenant_id=uuid.UUID(str(tenant)) if tenant else None,
    )
    if source.tenant_id is not None:
        uow.enter_tenant(source.tenant_id)
    return handler(uow, source, payload, now or _now())


def _event_id(headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> uuid.UUID:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found = {}
    for name, value in pairs:
        found[name.lower() if isinstance(name, str) else name] = value
    for name in EVENT_ID_HEADERS:
        value = found.get(name)
        if value is not None:
            if isinstance(value, bytes):
                value = value.decode()
            return uuid.UUID(str(value))
    raise ValueError(f"no event id among the headers (expected one of {EVENT_ID_HEADERS})")


# --- recipients ----------------------------------------------------------------------------------


def recipients(uow: UnitOfWork, user_ids: Iterable[uuid.UUID], now: datetime) -> list[Recipient]:
    """The reachable users among ``user_ids``: channel, address, language and quiet hours each.
    Users who chose no notifications, or have no address for any channel, are left out."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return []
    users = uow.session.scalars(
        select(User).where(User.id.in_(ids), User.deleted_at.is_(None))
    ).all()
    stored = {
        p.user_id: p
        for p in uow.session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id.in_(ids))
        )
    }
    position = {user_id: n for n, user_id in enumerate(ids)}
    out = []
    for user in sorted(users, key=lambda u: position[u.id]):
        prefs = stored.get(user.id)
        channel = effective_channel(user, prefs)
        to = address(user, channel)
        if channel == Channel.NONE or to is None:
            continue
        quiet = quiet_hours(prefs)
        out.append(
            Recipient(
                user=user,
                channel=channel,
                address=to,
                language=catalog.language_of(user.locale),
                deferred_until=quiet.until(now) if quiet else None,
            )
        )
    return out


def _as_recipient(uow: UnitOfWork, user_id: uuid.UUID, now: datetime) -> list[Recipient]:
    """For a message to one user: act as them (their account and preferences are theirs), still
    inside the event's tenant when there is one."""
    uow.act_as(user_id)
    return recipients(uow, [user_id], now)


# --- the log --------------------------------------------------------------------------------------


def enqueue(
    uow: UnitOfWork,
    source: Source,
    template: str,
    people: Iterable[Recipient],
    variables: dict[str, Any],
    *,
    now: datetime,
    event_id: uuid.UUID | None = None,
    registration_id: uuid.UUID | None = None,
) -> list[Notification]:
    """Render and log one message per recipient, in two statements whatever their number: the
    recipients this source already has a message for (for a ticket: whose registration already
    has its ticket) are skipped, the others inserted. Answers the rows inserted."""
    people = list(people)
    if not people:
        return []
    ids = [r.user.id for r in people]
    already = Notification.source_event_id == source.id
    if template == "ticket":
        already = or_(
            already,
            (Notification.template == "ticket") & (Notification.registration_id == registration_id),
        )
    taken = set(
        uow.session.scalars(
            select(Notification.user_id).where(already, Notification.user_id.in_(ids))
        )
    )
    rows = []
    for recipient in people:
        if recipient.user.id in taken:
            continue
        rendered = catalog.render(
            template, recipient.language, {"name": recipient.user.display_name, **variables}
        )
        deferred = recipient.deferred_until
        rows.append(
            {
                "id": uuid7(),
                "tenant_id": source.tenant_id,
                "source_event_id": source.id,
                "source_event_type": source.type,
                "template": template,
                "user_id": recipient.user.id,
                "channel": recipient.channel,
                "address": recipient.address,
                "language": recipient.language,
                "subject": rendered.subject,
                "body_text": rendered.text,
                "body_html": rendered.html,
                "registration_id": registration_id,
                "event_id": event_id,
                "status": NotificationStatus.DEFERRED if deferred else NotificationStatus.QUEUED,
                "due_at": deferred or now,
            }
        )
    if not rows:
        return []
    # A concurrent handler of the same event (two workers, a redelivery racing the first
    # delivery) waits on the unique indexes and then inserts nothing.
    inserted = uow.session.scalars(
        insert(Notification).on_conflict_do_nothing().returning(Notification), rows
    ).all()
    order = {row["id"]: n for n, row in enumerate(rows)}
    return sorted(inserted, key=lambda n: order[n.id])


# --- per event type -----------------------------------------------------------------------------


def _event(uow: UnitOfWork, event_id: Any) -> Event:
    event = uow.session.get(Event, uuid.UUID(str(event_id)))
    if event is None:
        raise NotFound("Event not found")
    return event


def _uuid(payload: Mapping[str, Any], name: str) -> uuid.UUID:
    return uuid.UUID(str(payload[name]))


def _welcome(uow, source, payload, now):
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    return enqueue(uow, source, "welcome", people, {}, now=now)


def _ticket(uow, source, payload, now):
    if source.type == "registration.created" and payload.get("status") != "confirmed":
        return []  # a paid registration's ticket comes with registration.confirmed
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    registration = uow.session.get(Registration, _uuid(payload, "registration_id"))
    if registration is None or registration.status != RegistrationStatus.CONFIRMED:
        return []  # cancelled since: no ticket
    event = _event(uow, registration.event_id)
    ticket_type = uow.session.get(TicketType, registration.ticket_type_id)
    variables = {
        "event_title": event.title,
        "starts_at": catalog.when(event.starts_at, event.timezone),
        "venue": event.venue,
        "online_url": event.online_url,
        "ticket_type": ticket_type.name if ticket_type else "",
        "quantity": registration.quantity,
        "registration_id": str(registration.id),
    }
    return enqueue(
        uow,
        source,
        "ticket",
        people,
        variables,
        now=now,
        event_id=event.id,
        registration_id=registration.id,
    )


def _receipt(uow, source, payload, now):
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    registration = uow.session.get(Registration, _uuid(payload, "registration_id"))
    if registration is None:
        raise NotFound("Registration not found")
    event = _event(uow, registration.event_id)
    variables = {
        "event_title": event.title,
        "amount": catalog.money(int(payload["amount"]), str(payload["currency"])),
        "purpose": str(payload.get("purpose") or "full"),
        "payment_id": str(payload["payment_id"]),
        "registration_id": str(registration.id),
    }
    return enqueue(uow, source, "receipt", people, variables, now=now, event_id=event.id)


def _reservation_expired(uow, source, payload, now):
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    event = _event(uow, payload["event_id"])
    variables = {"event_title": event.title, "quantity": int(payload["quantity"])}
    return enqueue(
        uow, source, "reservation_expired", people, variables, now=now, event_id=event.id
    )


def _waitlist_offered(uow, source, payload, now):
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    event = _event(uow, payload["event_id"])
    ticket_type = uow.session.get(TicketType, _uuid(payload, "ticket_type_id"))
    variables = {
        "event_title": event.title,
        "ticket_type": ticket_type.name if ticket_type else "",
        "expires_at": catalog.when(
            datetime.fromisoformat(str(payload["expires_at"])), event.timezone
        ),
    }
    return enqueue(uow, source, "waitlist_offered", people, variables, now=now, event_id=event.id)


def _event_cancelled(uow, source, payload, now):
    event = _event(uow, payload["event_id"])
    # Live when the event was cancelled: the payment saga may have cancelled them since.
    live = Registration.status != RegistrationStatus.CANCELLED
    if event.cancelled_at is not None:
        live = live | (Registration.cancelled_at >= event.cancelled_at)
    user_ids = uow.session.scalars(
        select(Registration.user_id)
        .where(Registration.event_id == event.id, live)
        .order_by(Registration.id)
    ).all()
    variables = {
        "event_title": event.title,
        "starts_at": catalog.when(event.starts_at, event.timezone),
        "reason": payload.get("reason"),
    }
    people = recipients(uow, user_ids, now)
    return enqueue(uow, source, "event_cancelled", people, variables, now=now, event_id=event.id)


def _event_reminder(uow, source, payload, now):
    event = _event(uow, payload["event_id"])
    if event.status != EventStatus.PUBLISHED or event.starts_at <= now:
        return []  # cancelled or begun since the reminder was emitted
    user_ids = uow.session.scalars(
        select(Registration.user_id)
        .where(
            Registration.event_id == event.id,
            Registration.status == RegistrationStatus.CONFIRMED,
        )
        .order_by(Registration.id)
    ).all()
    variables = {
        "event_title": event.title,
        "starts_at": catalog.when(event.starts_at, event.timezone),
        "venue": event.venue,
        "online_url": event.online_url,
    }
    people = recipients(uow, user_ids, now)
    return enqueue(uow, source, "event_reminder", people, variables, now=now, event_id=event.id)


# Edits that change where or when participants have to be; other fields (description, capacity,
# ...) notify nobody. The message names what changed as "time", "venue" or "online_url".
_NOTIFYING_CHANGES = {
    "starts_at": "time",
    "ends_at": "time",
    "timezone": "time",
    "venue": "venue",
    "online_url": "online_url",
}


def _live_registrants(uow: UnitOfWork, event: Event) -> list[uuid.UUID]:
    return list(
        uow.session.scalars(
            select(Registration.user_id)
            .where(Registration.event_id == event.id, Registration.status.in_(LIVE))
            .order_by(Registration.id)
        )
    )


def _event_changed(uow, source, payload, now):
    changed = sorted(
        {_NOTIFYING_CHANGES[f] for f in payload.get("changed") or () if f in _NOTIFYING_CHANGES}
    )
    if not changed:
        return []  # a description, a capacity...: nobody needs to hear of it
    event = _event(uow, payload["event_id"])
    if event.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
        return []  # the cancellation notice says what matters now
    variables = {
        "event_title": event.title,
        "changed": changed,
        "starts_at": catalog.when(event.starts_at, event.timezone),
        "venue": event.venue,
        "online_url": event.online_url,
    }
    people = recipients(uow, _live_registrants(uow, event), now)
    return enqueue(uow, source, "event_changed", people, variables, now=now, event_id=event.id)


def _group_event_published(uow, source, payload, now):
    event = _event(uow, payload["event_id"])
    if (
        event.visibility != Visibility.PRIVATE
        or event.group_id is None
        or event.status != EventStatus.PUBLISHED
    ):
        return []  # public events are listed for all; one unpublished since is not to be seen
    group = uow.session.get(Group, event.group_id)
    if group is None or group.deleted_at is not None:
        return []
    registered = set(_live_registrants(uow, event))  # published again: they know of it
    members = [
        user_id
        for user_id in uow.session.scalars(
            select(GroupMember.user_id)
            .where(GroupMember.group_id == group.id, GroupMember.deleted_at.is_(None))
            .order_by(GroupMember.id)
        )
        if user_id not in registered
    ]
    organization = uow.session.get(Organization, event.tenant_id)
    variables = {
        "event_title": event.title,
        "organization": organization.name if organization else "",
        "group": group.name,
        "starts_at": catalog.when(event.starts_at, event.timezone),
        "venue": event.venue,
        "online_url": event.online_url,
    }
    people = recipients(uow, members, now)
    return enqueue(
        uow, source, "group_event_published", people, variables, now=now, event_id=event.id
    )


def _payment_failed(uow, source, payload, now):
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    event = _event(uow, payload["event_id"])
    remainder_due = None
    if payload.get("purpose") == "remainder":
        remainder_due = catalog.when(event.remainder_due_at or event.starts_at, event.timezone)
    variables = {
        "event_title": event.title,
        "amount": catalog.money(int(payload["amount"]), str(payload["currency"])),
        "payment_id": str(payload["payment_id"]),
        "remainder_due": remainder_due,
    }
    return enqueue(uow, source, "payment_failed", people, variables, now=now, event_id=event.id)


def _refund_completed(uow, source, payload, now):
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    event = _event(uow, payload["event_id"])
    currency = str(payload["currency"])
    variables = {
        "event_title": event.title,
        "amount": catalog.money(int(payload["amount"]), currency),
        "refunded": catalog.money(int(payload["amount_refunded"]), currency),
        "paid": catalog.money(int(payload["payment_amount"]), currency),
        "partial": bool(payload.get("partial")),
        "payment_id": str(payload["payment_id"]),
    }
    return enqueue(uow, source, "refund_completed", people, variables, now=now, event_id=event.id)


# Cancelled for non-payment. A registration the saga cancels after its payment failed
# (payment_failed) is not among them: the payment_failed message already says so.
UNPAID_REASONS = ("payment_timeout", "remainder_unpaid")


def _registration_unpaid(uow, source, payload, now):
    reason = payload.get("reason")
    if reason not in UNPAID_REASONS:
        return []
    people = _as_recipient(uow, _uuid(payload, "user_id"), now)
    event = _event(uow, payload["event_id"])
    amount_paid = int(payload.get("amount_paid") or 0)
    variables = {
        "event_title": event.title,
        "starts_at": catalog.when(event.starts_at, event.timezone),
        "reason": reason,
        "amount_paid": catalog.money(amount_paid, str(payload["currency"])),
        "deposit_refunded": bool(
            reason == "remainder_unpaid" and amount_paid and event.refund_deposit_on_default
        ),
    }
    return enqueue(
        uow, source, "registration_unpaid", people, variables, now=now, event_id=event.id
    )


# An organization's invitation: the clear token is in no payload and no stored message. The
# message holds this mark; the dispatcher draws the token again from the invitation's id when it
# sends (``delivery``), and sends nothing for an invitation accepted, revoked or expired since.
INVITE_TEMPLATE = "organization_invite"
INVITE_EVENT_TYPES = ("organization.member.invited", "group.member.invited")
INVITE_TOKEN_MARK = "[[invite-token]]"


def _organization_invite(uow, source, payload, now):
    invite = uow.session.get(OrganizationInvite, _uuid(payload, "invite_id"))
    if invite is None or invite.accepted_at is not None or invite.expires_at <= now:
        return []  # accepted, revoked (it expires at once) or expired before we got to it
    inviter = uow.session.get(User, invite.invited_by)
    organization = uow.session.get(Organization, invite.tenant_id)
    group = uow.session.get(Group, invite.group_id) if invite.group_id is not None else None
    variables = {
        "organization": organization.name if organization else "",
        "group": group.name if group else "",  # an invitation to a group of it (migration 0025)
        "inviter": inviter.display_name if inviter else "",
        "role": invite.role.value if invite.role else "",
        "expires_at": catalog.when(invite.expires_at, "UTC"),
        "token": INVITE_TOKEN_MARK,
        "by_telegram": invite.email is None,
    }
    # Keyed by the invitation: the dispatcher finds it from the message, and it is sent once.
    keyed = Source(id=invite.id, type=source.type, tenant_id=source.tenant_id)
    account = uow.session.scalar(text("SELECT invitee_account(:i)"), {"i": invite.id})
    if account is None:
        if invite.email is None:
            return []  # no Telegram-linked account with that username: no chat to write to
        # No account yet: to the address, in the inviter's language, no quiet hours to keep.
        language = catalog.language_of(inviter.locale if inviter else None)
        return _enqueue_to_address(uow, keyed, invite.email, language, variables, now)
    uow.act_as(account)  # their account, language and quiet hours are theirs
    user = uow.session.get(User, account)
    channel = Channel.TELEGRAM if invite.email is None else Channel.EMAIL
    to = address(user, channel) if invite.email is None else invite.email
    if to is None:
        return []
    quiet = quiet_hours(uow.session.get(NotificationPreference, user.id))
    # By the invited address or chat, whatever channel the account prefers: it was invited there.
    person = Recipient(
        user=user,
        channel=channel,
        address=to,
        language=catalog.language_of(user.locale),
        deferred_until=quiet.until(now) if quiet else None,
    )
    return enqueue(uow, keyed, INVITE_TEMPLATE, [person], variables, now=now)


def _enqueue_to_address(
    uow: UnitOfWork,
    source: Source,
    to: str,
    language: str,
    variables: dict[str, Any],
    now: datetime,
) -> list[Notification]:
    """One e-mail to an address without an account (once per source and address)."""
    rendered = catalog.render(INVITE_TEMPLATE, language, {"name": "", **variables})
    row = {
        "id": uuid7(),
        "tenant_id": source.tenant_id,
        "source_event_id": source.id,
        "source_event_type": source.type,
        "template": INVITE_TEMPLATE,
        "user_id": None,
        "channel": Channel.EMAIL,
        "address": to,
        "language": language,
        "subject": rendered.subject,
        "body_text": rendered.text,
        "body_html": rendered.html,
        "status": NotificationStatus.QUEUED,
        "due_at": now,
    }
    return list(
        uow.session.scalars(
            insert(Notification).values(row).on_conflict_do_nothing().returning(Notification)
        )
    )


# --- the account's own e-mails (password reset, address verification) -------------------------


def account_addressee(
    uow: UnitOfWork, payload: Mapping[str, Any], now: datetime
) -> tuple[User, datetime] | None:
    """The account an account e-mail of ``payload`` (``user_id``, ``email``, ``expires_at``) goes
    to, and the link's expiry; None once the link has expired, the account is gone or its
    address changed since. Acts as that account: a platform message is the recipient's alone."""
    expires_at = datetime.fromisoformat(str(payload["expires_at"]))
    if expires_at <= now:
        return None
    user_id = _uuid(payload, "user_id")
    uow.act_as(user_id)
    user = uow.session.get(User, user_id)
    if user is None or user.deleted_at is not None or user.email != payload["email"]:
        return None
    return user, expires_at


def enqueue_account_email(
    uow: UnitOfWork,
    user: User,
    source: Source,
    template: str,
    variables: dict[str, Any],
    now: datetime,
) -> list[Notification]:
    """Queue ``template`` by e-mail to the account's address, whatever channel it chose and not
    held for quiet hours (it was asked for now)."""
    assert user.email is not None
    recipient = Recipient(
        user=user,
        channel=Channel.EMAIL,
        address=user.email,
        language=catalog.language_of(user.locale),
        deferred_until=None,
    )
    return enqueue(uow, source, template, [recipient], variables, now=now)


def sources_of(event_type: str, payload: Mapping[str, Any]) -> list[uuid.UUID]:
    """The source ids the messages of a consumed event are logged under besides the event's
    own id (an invitation's message is keyed by the invitation)."""
    if event_type in INVITE_EVENT_TYPES and payload.get("invite_id"):
        return [_uuid(payload, "invite_id")]
    return []


_Handler = Callable[[UnitOfWork, Source, Mapping[str, Any], datetime], list[Notification]]
_HANDLERS: dict[str, _Handler] = {
    "user.registered": _welcome,
    "registration.created": _ticket,
    "registration.confirmed": _ticket,
    "payment.completed": _receipt,
    "reservation.expired": _reservation_expired,
    "waitlist.offered": _waitlist_offered,
    "event.cancelled": _event_cancelled,
    "event.reminder": _event_reminder,
    "event.updated": _event_changed,
    "event.published": _group_event_published,
    "payment.failed": _payment_failed,
    "payment.refunded": _refund_completed,
    "registration.cancelled": _registration_unpaid,
    "organization.member.invited": _organization_invite,
    "group.member.invited": _organization_invite,
}
HANDLED_EVENT_TYPES = tuple(_HANDLERS)


# --- organizers' messages ----------------------------------------------------------------------


@dataclass(frozen=True)
class MessageQueued:
    message_id: uuid.UUID
    recipients: int
    deferred: int


def event_tenant(uow: UnitOfWork, event_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant of a live event, whoever asks (to check their membership of it next)."""
    return uow.session.execute(
        text("SELECT app_resource_tenant('events', :id)"), {"id": event_id}
    ).scalar_one()


@dataclass(frozen=True)
class Audience:
    """Which participants of an event an organizer's message goes to: registrations with one of
    ``statuses``, of ``ticket_type_id`` when given, checked in or not when ``checked_in`` is."""

    statuses: tuple[RegistrationStatus, ...] = LIVE
    ticket_type_id: uuid.UUID | None = None
    checked_in: bool | None = None


def _audience(uow: UnitOfWork, event: Event, audience: Audience) -> list[uuid.UUID]:
    if audience.ticket_type_id is not None:
        ticket_type = uow.session.get(TicketType, audience.ticket_type_id)
        if ticket_type is None or ticket_type.event_id != event.id:
            raise ValidationFailed(
                "No such ticket type in this event",
                code="unknown_ticket_type",
                details={"loc": ["body", "ticket_type_id"]},
            )
    stmt = select(Registration.user_id).where(
        Registration.event_id == event.id, Registration.status.in_(list(audience.statuses))
    )
    if audience.ticket_type_id is not None:
        stmt = stmt.where(Registration.ticket_type_id == audience.ticket_type_id)
    if audience.checked_in is not None:
        stmt = stmt.where(
            Registration.checked_in_at.is_not(None)
            if audience.checked_in
            else Registration.checked_in_at.is_(None)
        )
    return list(uow.session.scalars(stmt.order_by(Registration.id)))


def _message_variables(uow: UnitOfWork, event: Event, subject: str, text_: str) -> dict[str, Any]:
    organization = uow.session.get(Organization, event.tenant_id)
    return {
        "event_title": event.title,
        "organization": organization.name if organization else "",
        "subject": subject,
        "text": text_,
    }


def send_organizer_message(
    uow: UnitOfWork,
    event_id: uuid.UUID,
    *,
    subject: str,
    text_: str,
    audience: Audience = Audience(),
    now: datetime | None = None,
) -> MessageQueued:
    """Queue an organizer's message to the participants of ``event_id`` the audience chooses;
    the caller has entered the event's tenant as an owner or moderator."""
    now = now or _now()
    event = _event(uow, event_id)
    user_ids = _audience(uow, event, audience)
    source = Source(id=uuid7(), type=catalog.ORGANIZER_MESSAGE_SOURCE, tenant_id=event.tenant_id)
    variables = _message_variables(uow, event, subject, text_)
    rows = enqueue(
        uow, source, "organizer_message", recipients(uow, user_ids, now), variables,
        now=now, event_id=event.id,
    )  # fmt: skip
    deferred = sum(1 for r in rows if r.status == NotificationStatus.DEFERRED)
    return MessageQueued(message_id=source.id, recipients=len(rows), deferred=deferred)


@dataclass(frozen=True)
class LanguagePreview:
    language: str
    recipients: int
    subject: str
    text: str


@dataclass(frozen=True)
class MessagePreview:
    recipients: int
    deferred: int
    languages: list[LanguagePreview]


def preview_organizer_message(
    uow: UnitOfWork,
    event_id: uuid.UUID,
    *,
    subject: str,
    text_: str,
    audience: Audience = Audience(),
    now: datetime | None = None,
) -> MessagePreview:
    """What ``send_organizer_message`` would queue, without queueing: the reachable recipients
    and the message rendered in each of their languages (for its first recipient there)."""
    now = now or _now()
    event = _event(uow, event_id)
    people = recipients(uow, _audience(uow, event, audience), now)
    variables = _message_variables(uow, event, subject, text_)
    by_language: dict[str, list[Recipient]] = {}
    for person in people:
        by_language.setdefault(person.language, []).append(person)
    languages = []
    for language in sorted(by_language):
        group = by_language[language]
        rendered = catalog.render(
            "organizer_message", language, {"name": group[0].user.display_name, **variables}
        )
        languages.append(LanguagePreview(language, len(group), rendered.subject, rendered.text))
    deferred = sum(1 for p in people if p.deferred_until is not None)
    return MessagePreview(recipients=len(people), deferred=deferred, languages=languages)


# --- the delivery log of organizers' messages ------------------------------------------------


@dataclass(frozen=True)
class MessageSummary:
    """One organizer's message: its first row (subject, time) and its rows' count per state."""

    first: Notification
    states: dict[NotificationStatus, int]

    @property
    def recipients(self) -> int:
        return sum(self.states.values())


def _organizer_rows(event_id: uuid.UUID) -> Any:
    return (Notification.event_id == event_id) & (
        Notification.source_event_type == catalog.ORGANIZER_MESSAGE_SOURCE
    )


def list_messages(uow: UnitOfWork, event_id: uuid.UUID, page: PageRequest) -> Page[MessageSummary]:
    """The organizers' messages to the participants of ``event_id``, newest first, with how many
    of their deliveries are queued, deferred, sent and failed. The caller is in the tenant."""
    _event(uow, event_id)
    earlier = aliased(Notification)
    first_rows = select(Notification).where(
        _organizer_rows(event_id),
        ~select(earlier.id)
        .where(
            earlier.source_event_id == Notification.source_event_id, earlier.id < Notification.id
        )
        .exists(),
    )
    firsts = Keyset(desc(Notification.id)).page(uow.session, first_rows, page)
    sources = [n.source_event_id for n in firsts.items]
    states: dict[uuid.UUID, dict[NotificationStatus, int]] = {s: {} for s in sources}
    if sources:
        counted = uow.session.execute(
            select(Notification.source_event_id, Notification.status, func.count())
            .where(_organizer_rows(event_id), Notification.source_event_id.in_(sources))
            .group_by(Notification.source_event_id, Notification.status)
        )
        for source_id, state, count in counted:
            states[source_id][state] = count
    return Page([MessageSummary(n, states[n.source_event_id]) for n in firsts.items], firsts.after)


def list_deliveries(
    uow: UnitOfWork, event_id: uuid.UUID, message_id: uuid.UUID, page: PageRequest
) -> Page[tuple[Notification, User]]:
    """Each recipient's delivery of one organizer's message (channel, state, times), in the
    order they were queued. The caller is in the event's tenant."""
    mine = _organizer_rows(event_id) & (Notification.source_event_id == message_id)
    if uow.session.scalar(select(Notification.id).where(mine).limit(1)) is None:
        raise NotFound("Message not found")
    stmt = select(Notification, User).join(User, User.id == Notification.user_id).where(mine)
    return Keyset(Notification.id).page(uow.session, stmt, page)


# --- reminders ----------------------------------------------------------------------------------

REMINDER_BATCH = 200


def remind_event(uow: UnitOfWork, event_id: uuid.UUID, *, lead_hours: float) -> bool:
    """Emit ``event.reminder`` for a published event unless it was emitted before (the record and
    the outbox row commit together, so exactly once). The caller is in the event's tenant."""
    event = uow.session.get(Event, event_id)
    if event is None or event.status != EventStatus.PUBLISHED or event.deleted_at is not None:
        return False
    recorded = uow.session.scalar(
        insert(EventReminder)
        .values(event_id=event.id, tenant_id=event.tenant_id, starts_at=event.starts_at)
        .on_conflict_do_nothing()
        .returning(EventReminder.event_id)
    )
    if recorded is None:
        return False
    uow.emit(EventReminderDue.of(event, lead_hours=lead_hours))
    return True


def emit_due_reminders(
    sessions: sessionmaker[Session],
    *,
    lead: timedelta = timedelta(hours=24),
    now: datetime | None = None,
    headers: Callable[[], dict[str, str]] | None = None,
) -> int:
    """Emit ``event.reminder`` for every published event starting within ``lead`` that has not
    had one; answer how many were emitted. For the background jobs process: events are found
    across tenants by ``due_event_reminders()`` (ids only), each handled in its own tenant's
    transaction. Several processes may run it: the record makes each reminder happen once."""
    now = now or _now()
    with sessions() as session:
        due = session.execute(
            text("SELECT * FROM due_event_reminders(:now, :lead, :n)"),
            {"now": now, "lead": lead, "n": REMINDER_BATCH},
        ).all()
    emitted = 0
    for event_id, tenant_id in due:
        with UnitOfWork(sessions, tenant_id=tenant_id, headers=headers) as uow:
            if remind_event(uow, event_id, lead_hours=lead.total_seconds() / 3600):
                emitted += 1
            uow.commit()
    return emitted
