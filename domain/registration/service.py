"""Seat holds and registrations. Seats are taken only through the database's claim_seats(),
as the transaction's last statement, sent with its COMMIT; nothing here can oversell. The seat
counters are sharded (migration 0023): the hold or registration records the shards that gave
its seats, and they go back there."""

from __future__ import annotations

import enum
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import and_, bindparam, or_, select, text

from domain.checkin import tickets
from domain.db.base import UNIQUE_VIOLATION, add_unique, uuid7
from domain.errors import (
    Conflict,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from domain.event.models import Event, EventStatus, ParticipantsVisibility, TicketType
from domain.event.service import get_event
from domain.identity import email_verification
from domain.identity.models import User
from domain.pagination import InvalidCursor, Keyset, Page, PageRequest, desc
from domain.registration.events import (
    RegistrationCancelled,
    RegistrationConfirmed,
    RegistrationCreated,
    RegistrationTicketResent,
    ReservationCreated,
    ReservationExpired,
)
from domain.registration.models import (
    PaymentMode,
    Registration,
    RegistrationStatus,
    Reservation,
    ReservationStatus,
)
from domain.uow import FinalStatement, UnitOfWork
from domain.waitlist.models import WaitlistEntry

_CLAIM = text("SELECT claim_seats(:tt, :n, :from_waitlist, :registration, :reservation)")
_TAKE_AT_COMMIT = "SELECT take_seats(%s, %s, %s, %s, %s)"
_RELEASE_AT_COMMIT = "SELECT release_seats(%s, %s, %s, %s)"
_REFUSED = "AQ001"  # take_seats(): the claim was refused; the message is the verdict


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SaleEvent:
    """The columns of an event that a hold or a registration checks: the registration path reads
    these, not the whole row (with its descriptions, venue and policies)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    status: EventStatus
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    ends_at: datetime
    hold_minutes: int
    max_holds_per_account: int
    max_held_seats_per_account: int


@dataclass(frozen=True, slots=True)
class SaleTicket:
    """The columns of a ticket type that a hold or a registration checks and prices."""

    id: uuid.UUID
    is_active: bool
    sales_starts_at: datetime | None
    sales_ends_at: datetime | None
    max_per_order: int
    max_held_seats_per_account: int | None
    price_amount: int
    currency: str
    deposit_amount: int | None
    deposit_percent: int | None


_SALE_EVENT = (
    Event.id,
    Event.tenant_id,
    Event.status,
    Event.registration_opens_at,
    Event.registration_closes_at,
    Event.ends_at,
    Event.hold_minutes,
    Event.max_holds_per_account,
    Event.max_held_seats_per_account,
)
_SALE_TICKET = (
    TicketType.id,
    TicketType.is_active,
    TicketType.sales_starts_at,
    TicketType.sales_ends_at,
    TicketType.max_per_order,
    TicketType.max_held_seats_per_account,
    TicketType.price_amount,
    TicketType.currency,
    TicketType.deposit_amount,
    TicketType.deposit_percent,
)
# One round trip for both, as the caller may see them (row level security applies).
_SALE = (
    select(*_SALE_EVENT, *_SALE_TICKET)
    .outerjoin(
        TicketType,
        and_(
            TicketType.id == bindparam("ticket_type_id"),
            TicketType.event_id == Event.id,
            TicketType.deleted_at.is_(None),
        ),
    )
    .where(Event.id == bindparam("event_id"), Event.deleted_at.is_(None))
)


def on_sale(
    uow: UnitOfWork, event_id: uuid.UUID, ticket_type_id: uuid.UUID
) -> tuple[SaleEvent, SaleTicket]:
    """The event and the ticket type a hold or registration is for (404 for either missing)."""
    row = uow.session.execute(
        _SALE, {"event_id": event_id, "ticket_type_id": ticket_type_id}
    ).one_or_none()
    if row is None:
        raise NotFound("Event not found")
    n = len(_SALE_EVENT)
    if row[n] is None:
        raise NotFound("Ticket type not found")
    return SaleEvent(*row[:n]), SaleTicket(*row[n:])


def _refused(verdict: str, ticket_type_id: uuid.UUID) -> Exception:
    if verdict == "sold_out":
        return Conflict(
            "Sold out", code="sold_out", details={"ticket_type_id": str(ticket_type_id)}
        )
    if verdict == "event_full":
        return Conflict("The event is full", code="sold_out", details={"scope": "event"})
    if verdict == "not_open":
        return InvalidState("The event is not open for registration", code="registration_closed")
    return NotFound("Ticket type not found")


def claim_seats(
    uow: UnitOfWork,
    tt: TicketType | SaleTicket,
    quantity: int,
    *,
    from_waitlist: bool = False,
    at_commit: bool = True,
    registration_id: uuid.UUID | None = None,
    reservation_id: uuid.UUID | None = None,
) -> None:
    """Take seats: the hot-row update, after every other write of the transaction.

    ``at_commit`` (the default) sends it with the COMMIT in one round trip, so the counter rows
    are locked only for as long as the database needs; a refusal then surfaces from
    ``uow.commit()``. ``at_commit=False`` takes them now, for a caller that needs the verdict
    inside its transaction (a waitlist offer, under a savepoint). The registration or hold the
    seats are for (one of the ids) gets the shards that gave them."""
    if at_commit:

        def refusal(exc: psycopg.Error) -> Exception | None:
            if exc.sqlstate != _REFUSED:
                return None
            return _refused(exc.diag.message_primary or "", tt.id)

        uow.finish_with(
            FinalStatement(
                _TAKE_AT_COMMIT,
                (tt.id, quantity, from_waitlist, registration_id, reservation_id),
                refusal,
            )
        )
        return
    uow.write_events()
    verdict = uow.session.execute(
        _CLAIM,
        {
            "tt": tt.id,
            "n": quantity,
            "from_waitlist": from_waitlist,
            "registration": registration_id,
            "reservation": reservation_id,
        },
    ).scalar_one()
    if verdict != "ok":
        raise _refused(verdict, tt.id)


def release_seats(uow: UnitOfWork, holder: Reservation | Registration) -> None:
    """Give a hold's or registration's seats back to the shards that gave them, with the
    COMMIT (see ``claim_seats``)."""
    uow.finish_with(
        FinalStatement(
            _RELEASE_AT_COMMIT,
            (holder.ticket_type_id, holder.quantity, holder.seat_shard, holder.event_seat_shard),
        )
    )


def check_sale_open(
    event: Event | SaleEvent,
    tt: TicketType | SaleTicket,
    quantity: int,
    now: datetime | None = None,
) -> None:
    """The rules a new hold or registration must pass (the counter guards capacity itself)."""
    now = now or _now()
    if event.status != EventStatus.PUBLISHED:
        raise InvalidState(
            "The event is not open for registration",
            code="registration_closed",
            details={"status": event.status.value},
        )
    if (
        (event.registration_opens_at and now < event.registration_opens_at)
        or (event.registration_closes_at and now >= event.registration_closes_at)
        or now >= event.ends_at
    ):
        raise InvalidState("Registration is closed", code="registration_closed")
    if (
        not tt.is_active
        or (tt.sales_starts_at and now < tt.sales_starts_at)
        or (tt.sales_ends_at and now >= tt.sales_ends_at)
    ):
        raise InvalidState("This ticket type is not on sale", code="not_on_sale")
    if quantity > tt.max_per_order:
        raise ValidationFailed(
            f"At most {tt.max_per_order} tickets per order",
            code="max_per_order",
            details={"max_per_order": tt.max_per_order},
        )


# --- reservations -------------------------------------------------------------------------------------


# Holds of one account for one event are counted under this lock (transaction-scoped, per
# account and event), so two holds at once cannot both pass the limits.
_LOCK_HOLDS = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_HELD = text(
    "SELECT count(*), coalesce(sum(quantity), 0),"
    " coalesce(sum(quantity) FILTER (WHERE ticket_type_id = :tt), 0)"
    " FROM reservations WHERE user_id = :user AND event_id = :event AND status = 'active'"
    " AND expires_at > now()"
)


def check_hold_limits(
    uow: UnitOfWork,
    event: Event | SaleEvent,
    tt: TicketType | SaleTicket,
    user_id: uuid.UUID,
    quantity: int,
) -> None:
    """One account may not hold more than the event allows (holds at once, seats over all of
    them) nor more seats of a ticket type than the type allows: holds are meant for checking
    out, and one account once held a whole ticket type, renewing every 15 minutes."""
    uow.session.execute(_LOCK_HOLDS, {"key": f"holds:{user_id}:{event.id}"})
    holds, seats, of_type = uow.session.execute(
        _HELD, {"user": user_id, "event": event.id, "tt": tt.id}
    ).one()
    limits = (
        ("ticket_type", tt.max_held_seats_per_account, of_type, quantity,
         "seats of this ticket type"),
        ("event", event.max_held_seats_per_account, seats, quantity, "seats of this event"),
        ("holds", event.max_holds_per_account, holds, 1, "holds on this event"),
    )  # fmt: skip
    for scope, limit, held, requested, what in limits:
        if limit is not None and held + requested > limit:
            raise Conflict(
                f"One account may hold at most {limit} {what} at a time; you hold {held}",
                code="hold_limit_reached",
                details={"scope": scope, "limit": limit, "held": int(held), "requested": requested},
            )


def reserve(
    uow: UnitOfWork,
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    quantity: int,
    *,
    user_id: uuid.UUID,
    waitlist_entry_id: uuid.UUID | None = None,
    visitor_id: str | None = None,
) -> Reservation:
    """Hold seats for the event's hold time."""
    event, tt = on_sale(uow, event_id, ticket_type_id)
    check_sale_open(event, tt, quantity)
    if waitlist_entry_id is None:  # an offer from the waitlist is the platform's, not a grab
        check_hold_limits(uow, event, tt, user_id, quantity)
    reservation = Reservation(
        id=uuid7(),
        tenant_id=event.tenant_id,
        event_id=event.id,
        ticket_type_id=tt.id,
        user_id=user_id,
        quantity=quantity,
        status=ReservationStatus.ACTIVE,
        expires_at=_now() + timedelta(minutes=event.hold_minutes),
        waitlist_entry_id=waitlist_entry_id,
        visitor_id=visitor_id,
    )
    uow.session.add(reservation)
    uow.session.flush()
    uow.emit(ReservationCreated.of(reservation))
    # A waitlist offer is made under a savepoint and needs the verdict now; a participant's
    # hold takes its seats with the commit.
    offer = waitlist_entry_id is not None
    claim_seats(
        uow, tt, quantity, from_waitlist=offer, at_commit=not offer, reservation_id=reservation.id
    )
    if offer:  # claim_seats wrote its shards on the row
        uow.session.refresh(reservation, ["seat_shard", "event_seat_shard"])
    return reservation


def get_reservation(
    uow: UnitOfWork, reservation_id: uuid.UUID, *, lock: bool = False
) -> Reservation:
    reservation = uow.session.get(Reservation, reservation_id, with_for_update=lock or None)
    if reservation is None:
        raise NotFound("Reservation not found")
    return reservation


def _waitlist_offer(uow: UnitOfWork, reservation: Reservation) -> WaitlistEntry | None:
    """The waitlist entry a hold was offered to, if it was an offer."""
    if reservation.waitlist_entry_id is None:
        return None
    return uow.session.get(WaitlistEntry, reservation.waitlist_entry_id)


def expire_reservation(uow: UnitOfWork, reservation_id: uuid.UUID) -> bool:
    """Expire one due hold (the sweeper); False if it was converted or expired meanwhile."""
    reservation = uow.session.scalar(
        select(Reservation)
        .where(
            Reservation.id == reservation_id,
            Reservation.status == ReservationStatus.ACTIVE,
            Reservation.expires_at <= _now(),
        )
        .with_for_update(skip_locked=True)
    )
    if reservation is None:
        return False
    reservation.status = ReservationStatus.EXPIRED
    uow.session.flush()
    if (offer := _waitlist_offer(uow, reservation)) is not None:
        offer.lapse_offer()
        uow.session.flush()
    uow.emit(ReservationExpired.of(reservation))
    release_seats(uow, reservation)
    return True


def cancel_reservation(
    uow: UnitOfWork, reservation_id: uuid.UUID, user_id: uuid.UUID
) -> Reservation:
    """Give a hold back before it expires."""
    reservation = get_reservation(uow, reservation_id, lock=True)
    if reservation.user_id != user_id:
        raise NotFound("Reservation not found")
    if reservation.status != ReservationStatus.ACTIVE:
        raise InvalidState(
            f"The reservation is {reservation.status.value}",
            details={"status": reservation.status.value},
        )
    reservation.status = ReservationStatus.CANCELLED
    uow.session.flush()
    if (offer := _waitlist_offer(uow, reservation)) is not None:
        offer.lapse_offer()
        uow.session.flush()
    release_seats(uow, reservation)
    return reservation


# --- registrations --------------------------------------------------------------------------------------


def _amounts(
    tt: TicketType | SaleTicket, quantity: int, mode: PaymentMode | None
) -> tuple[PaymentMode, int, int]:
    total = tt.price_amount * quantity
    if total == 0:
        return PaymentMode.FREE, 0, 0
    if mode == PaymentMode.DEPOSIT:
        if tt.deposit_amount is not None:
            per_ticket = tt.deposit_amount
        elif tt.deposit_percent is not None:
            per_ticket = max(1, tt.price_amount * tt.deposit_percent // 100)
        else:
            raise ValidationFailed("This ticket type takes no deposit", code="deposit_unavailable")
        return PaymentMode.DEPOSIT, total, per_ticket * quantity
    if mode == PaymentMode.FREE:
        raise ValidationFailed("This ticket is not free", code="invalid_payment_mode")
    return PaymentMode.FULL, total, total


def register(
    uow: UnitOfWork,
    event_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    reservation_id: uuid.UUID | None = None,
    ticket_type_id: uuid.UUID | None = None,
    quantity: int = 1,
    payment_mode: PaymentMode | None = None,
    visitor_id: str | None = None,
) -> Registration:
    """Register from a hold, or directly. Free tickets confirm at once; paid ones await payment.

    A direct registration's row is written with the seats' claim and the COMMIT, in one round
    trip; its ``created_at`` is set once committed."""
    reservation = None
    if reservation_id is not None:
        reservation = get_reservation(uow, reservation_id, lock=True)
        if reservation.user_id != user_id or reservation.event_id != event_id:
            raise NotFound("Reservation not found")
        if reservation.status != ReservationStatus.ACTIVE or reservation.expires_at <= _now():
            raise InvalidState(
                "The reservation is no longer active",
                code="reservation_expired",
                details={"status": reservation.status.value},
            )
        ticket_type_id, quantity = reservation.ticket_type_id, reservation.quantity
    elif ticket_type_id is None:
        raise ValidationFailed(
            "Give a reservation_id or a ticket_type_id", code="invalid_registration"
        )
    event, tt = on_sale(uow, event_id, ticket_type_id)
    if reservation is None:
        check_sale_open(event, tt, quantity)
    elif event.status != EventStatus.PUBLISHED:
        raise InvalidState("The event is not open for registration", code="registration_closed")
    mode, total, due_now = _amounts(tt, quantity, payment_mode)
    if mode != PaymentMode.FREE:  # a paid ticket needs a confirmed address (or none at all)
        buyer = uow.session.get(User, user_id)
        if buyer is not None:
            email_verification.require_verified(buyer)
    now = _now()
    status = (
        RegistrationStatus.CONFIRMED
        if mode == PaymentMode.FREE
        else RegistrationStatus.PENDING_PAYMENT
    )
    registration = Registration(
        id=uuid7(),
        tenant_id=event.tenant_id,
        event_id=event.id,
        ticket_type_id=tt.id,
        user_id=user_id,
        reservation_id=reservation.id if reservation else None,
        quantity=quantity,
        status=status,
        payment_mode=mode,
        currency=tt.currency,
        amount_total=total,
        amount_due_now=due_now,
        amount_paid=0,
        ticket_secret=secrets.token_urlsafe(16),
        confirmed_at=now if status == RegistrationStatus.CONFIRMED else None,
        # a hold's visitor carries over unless the registration names one
        visitor_id=visitor_id or (reservation.visitor_id if reservation else None),
        # and so do the shards its seats came from
        seat_shard=reservation.seat_shard if reservation else None,
        event_seat_shard=reservation.event_seat_shard if reservation else None,
        listed=True,
    )
    if reservation is not None:
        add_unique(uow.session, registration, _already_registered())
        reservation.status = ReservationStatus.CONVERTED
        if (offer := _waitlist_offer(uow, reservation)) is not None:
            offer.accept_offer()
        uow.session.flush()
    else:
        _insert_at_commit(uow, registration)
    uow.emit(RegistrationCreated.of(registration))
    if status == RegistrationStatus.CONFIRMED:
        uow.emit(RegistrationConfirmed.of(registration))
    if reservation is None:
        # with the commit: the counter's shard is locked only by it
        claim_seats(uow, tt, quantity, registration_id=registration.id)
    return registration


def _already_registered() -> Conflict:
    return Conflict("You are already registered for this event", code="already_registered")


_LIVE_REGISTRATION = "uq_registrations_event_user_live"
_INSERTED = (
    "id", "tenant_id", "event_id", "ticket_type_id", "user_id", "quantity", "status",
    "payment_mode", "currency", "amount_total", "amount_due_now", "ticket_secret",
    "confirmed_at", "visitor_id",
)  # fmt: skip
_CASTS = {"status": "::registration_status", "payment_mode": "::payment_mode"}
_INSERT_REGISTRATION = (
    f"INSERT INTO registrations ({', '.join(_INSERTED)})"
    f" VALUES ({', '.join('%s' + _CASTS.get(c, '') for c in _INSERTED)})"
    " RETURNING created_at, updated_at"
)


def _insert_at_commit(uow: UnitOfWork, registration: Registration) -> None:
    """A direct registration's row, sent with the outbox rows, the seats' claim and the COMMIT
    (no flush of its own: two round trips fewer on the flash sale's path). The row stays out of
    the session; a second live registration of the account is refused from the commit."""

    def refusal(exc: psycopg.Error) -> Exception | None:
        if exc.sqlstate == UNIQUE_VIOLATION and exc.diag.constraint_name == _LIVE_REGISTRATION:
            return _already_registered()
        return None

    def returned(row: tuple[Any, ...]) -> None:
        registration.created_at, registration.updated_at = row

    uow.finish_with(
        FinalStatement(
            _INSERT_REGISTRATION,
            tuple(getattr(registration, column) for column in _INSERTED),
            refusal,
            returned,
            row_write=True,
        )
    )


def get_registration(
    uow: UnitOfWork, registration_id: uuid.UUID, *, lock: bool = False
) -> Registration:
    registration = uow.session.get(Registration, registration_id, with_for_update=lock or None)
    if registration is None:
        raise NotFound("Registration not found")
    return registration


def confirm(uow: UnitOfWork, registration_id: uuid.UUID, amount: int) -> Registration:
    """Count a completed payment of ``amount`` (payment.completed): ``amount_paid`` accumulates,
    and a pending registration is confirmed once what was due now is paid (the full price, or
    the deposit; a remainder adds to an already confirmed one). The payment saga counts each
    payment once (domain/payment/saga.py)."""
    registration = get_registration(uow, registration_id, lock=True)
    if registration.status == RegistrationStatus.CANCELLED:
        raise InvalidState("The registration is cancelled", details={"status": "cancelled"})
    registration.amount_paid += amount
    newly_confirmed = (
        registration.status == RegistrationStatus.PENDING_PAYMENT
        and registration.amount_paid >= registration.amount_due_now
    )
    if newly_confirmed:
        registration.status = RegistrationStatus.CONFIRMED
        registration.confirmed_at = _now()
    uow.session.flush()
    if newly_confirmed:
        uow.emit(RegistrationConfirmed.of(registration))
    return registration


def check_cancellable(registration: Registration) -> None:
    if registration.status == RegistrationStatus.CANCELLED:
        raise InvalidState("The registration is already cancelled", details={"status": "cancelled"})
    if registration.checked_in_at is not None:
        raise InvalidState(
            "A checked-in registration cannot be cancelled", code="already_checked_in"
        )


def cancel(
    uow: UnitOfWork, registration_id: uuid.UUID, *, reason: str, refund_due: int | None = None
) -> Registration:
    """Cancel and free the seats. Refunds are the payment saga's: it cancels registrations whose
    payments went back, refunds what arrives after a cancellation, and asks for ``refund_due``
    (what the event's policy gives back on a participant's own cancellation;
    domain/payment/saga.py)."""
    registration = get_registration(uow, registration_id, lock=True)
    check_cancellable(registration)
    registration.status = RegistrationStatus.CANCELLED
    registration.cancelled_at = _now()
    registration.cancel_reason = reason
    registration.refund_due = refund_due
    uow.session.flush()
    uow.emit(RegistrationCancelled.of(registration, reason=reason))
    release_seats(uow, registration)
    return registration


def set_listed(
    uow: UnitOfWork, registration_id: uuid.UUID, *, user_id: uuid.UUID, listed: bool
) -> Registration:
    """The participant shows on the event's participant list, or not (their own choice)."""
    registration = get_registration(uow, registration_id, lock=True)
    if registration.user_id != user_id:
        raise PermissionDenied(
            "Only the participant chooses whether they are listed", code="not_participant"
        )
    if registration.status == RegistrationStatus.CANCELLED:
        raise InvalidState("The registration is cancelled", details={"status": "cancelled"})
    registration.listed = listed
    uow.session.flush()
    return registration


_PARTICIPANTS = text("SELECT after_id, display_name FROM event_participants(:event, :after, :n)")


def participants(
    uow: UnitOfWork, event_id: uuid.UUID, page: PageRequest, *, organizer: bool = False
) -> Page[str]:
    """Display names of who comes: the listed, confirmed registrations of the event, oldest
    first. Participants only while the list is open and they hold a confirmed registration
    themselves; ``organizer`` (the event's tenant entered) always. Names come through the
    SECURITY DEFINER ``event_participants()``: no other field of anyone's registration or
    account can be read this way."""
    visible = uow.session.execute(text("SELECT app_can_see_event(:e)"), {"e": event_id})
    if not visible.scalar_one():
        raise NotFound("Event not found")
    if not organizer:
        event = get_event(uow, event_id)
        if event.participants_visibility != ParticipantsVisibility.OPEN:
            raise PermissionDenied(
                "The organizer keeps this event's participant list closed",
                code="participants_closed",
            )
        mine = uow.session.scalar(
            select(Registration.status).where(
                Registration.event_id == event_id,
                Registration.user_id == uow.user_id,
                Registration.status != RegistrationStatus.CANCELLED,
            )
        )
        if mine != RegistrationStatus.CONFIRMED:
            raise PermissionDenied(
                "Only participants with a confirmed registration see who else comes",
                code="not_registered",
                details={"status": mine.value if mine else None},
            )
    after = _participants_position(page.after)
    rows = uow.session.execute(
        _PARTICIPANTS, {"event": event_id, "after": after, "n": page.limit + 1}
    ).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return Page([r.display_name for r in rows], [rows[-1].after_id.hex] if more else None)


def _participants_position(after: tuple | None) -> uuid.UUID | None:
    if after is None:
        return None
    if len(after) != 1 or not isinstance(after[0], str):
        raise InvalidCursor()
    try:
        return uuid.UUID(hex=after[0])
    except ValueError:
        raise InvalidCursor() from None


def resend_ticket(
    uow: UnitOfWork, registration_id: uuid.UUID, *, requested_by: uuid.UUID
) -> Registration:
    """Send a confirmed registration's ticket again (``registration.ticket_resent``)."""
    registration = get_registration(uow, registration_id)
    if registration.status != RegistrationStatus.CONFIRMED:
        raise InvalidState(
            f"The registration is {registration.status.value}: only a confirmed one has a ticket",
            code="not_confirmed",
            details={"status": registration.status.value},
        )
    uow.emit(RegistrationTicketResent.of(registration, requested_by=requested_by))
    return registration


class PaymentState(enum.StrEnum):
    """Where a registration's money stands, for the organizer's list (``payment=``). Read from
    the registration's own amounts: ``amount_paid`` counts completed payments (refunds are the
    payments', they do not lower it)."""

    PAID = "paid"  # a price, paid in full
    DEPOSIT = "deposit"  # the deposit paid, the remainder outstanding
    OWING = "owing"  # pending payment, nothing paid yet


_PAYMENT_STATES = {
    PaymentState.PAID: lambda: and_(
        Registration.amount_total > 0, Registration.amount_paid >= Registration.amount_total
    ),
    PaymentState.DEPOSIT: lambda: and_(
        Registration.payment_mode == PaymentMode.DEPOSIT,
        Registration.amount_paid > 0,
        Registration.amount_paid < Registration.amount_total,
    ),
    PaymentState.OWING: lambda: and_(
        Registration.status == RegistrationStatus.PENDING_PAYMENT, Registration.amount_paid == 0
    ),
}


def _like(text_: str) -> str:
    escaped = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_for_event(
    uow: UnitOfWork,
    event_id: uuid.UUID,
    *,
    status: RegistrationStatus | None,
    ticket_type_id: uuid.UUID | None,
    page: PageRequest,
    search: str | None = None,
    ticket_key: bytes | None = None,
    payment: PaymentState | None = None,
    checked_in: bool | None = None,
) -> Page[Registration]:
    """The event's registrations, oldest first. ``search`` matches the participant's name or
    e-mail (case-insensitive, anywhere in it) or, given ``ticket_key``, a whole ticket code."""
    stmt = select(Registration).where(Registration.event_id == event_id)
    if status:
        stmt = stmt.where(Registration.status == status)
    if ticket_type_id:
        stmt = stmt.where(Registration.ticket_type_id == ticket_type_id)
    if payment:
        stmt = stmt.where(_PAYMENT_STATES[payment]())
    if checked_in is not None:
        stmt = stmt.where(
            Registration.checked_in_at.is_not(None)
            if checked_in
            else Registration.checked_in_at.is_(None)
        )
    coded: uuid.UUID | None = None
    if search:
        pattern = _like(search)
        person = (
            select(User.id)
            .where(
                User.id == Registration.user_id,
                or_(User.display_name.ilike(pattern), User.email.ilike(pattern)),
            )
            .exists()
        )
        if ticket_key is not None:
            try:
                coded, _ = tickets.registration_id_of(search)
            except tickets.InvalidTicketCode:
                coded = None
        stmt = stmt.where(or_(person, Registration.id == coded) if coded else person)
    result = Keyset(Registration.id).page(uow.session, stmt, page)
    if coded is None:
        return result
    # A code matches only when it is the registration's own (the MAC): a forged one finds none.
    return Page([r for r in result.items if _code_matches(r, search, ticket_key)], result.after)


def _code_matches(registration: Registration, search: str, key: bytes | None) -> bool:
    if key is None or tickets.registration_id_of(search)[0] != registration.id:
        return True  # matched by name or e-mail
    try:
        tickets.verify(key, search, registration.id, registration.ticket_secret)
    except tickets.InvalidTicketCode:
        return False
    return True


def list_mine(uow: UnitOfWork, user_id: uuid.UUID, page: PageRequest) -> Page[Registration]:
    """The user's registrations across every organization, newest first."""
    stmt = select(Registration).where(Registration.user_id == user_id)
    return Keyset(desc(Registration.id)).page(uow.session, stmt, page)
