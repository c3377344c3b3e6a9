"""The waitlist: enrol when sold out; when seats free, the next entry (priority, then arrival)
gets an offer, a reservation with its own timer; an unused offer passes to the next."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from domain.db.base import add_unique, uuid7
from domain.errors import Conflict, InvalidState, NotFound
from domain.event.models import EventStatus, TicketType
from domain.event.service import get_event, get_ticket_type
from domain.pagination import Keyset, Page, PageRequest, desc
from domain.registration.models import Registration, RegistrationStatus, Reservation
from domain.registration.service import reserve
from domain.uow import UnitOfWork
from domain.waitlist.events import WaitlistJoined, WaitlistLeft, WaitlistOffered
from domain.waitlist.models import WaitlistEntry, WaitlistStatus


def join(
    uow: UnitOfWork, event_id: uuid.UUID, ticket_type_id: uuid.UUID, *, user_id: uuid.UUID
) -> tuple[WaitlistEntry, int]:
    """Enrol on a sold-out ticket type's waitlist; returns the entry and its position."""
    event = get_event(uow, event_id)
    if event.status != EventStatus.PUBLISHED:
        raise InvalidState("The event is not open", code="registration_closed")
    tt = get_ticket_type(uow, event_id, ticket_type_id)
    # The database's own verdict (it sees the whole queue, the caller only their own entries).
    verdict = uow.session.scalar(select(func.seats_verdict(tt.id, 1)))
    if verdict == "ok":
        raise Conflict("Seats are still available; reserve one instead", code="not_sold_out")
    if verdict in ("not_found", "not_open"):
        raise InvalidState("The event is not open", code="registration_closed")
    registered = uow.session.scalar(
        select(func.count())
        .select_from(Registration)
        .where(
            Registration.event_id == event.id,
            Registration.user_id == user_id,
            Registration.status != RegistrationStatus.CANCELLED,
        )
    )
    if registered:
        raise Conflict("You are already registered for this event", code="already_registered")
    entry = WaitlistEntry(
        id=uuid7(),
        tenant_id=event.tenant_id,
        event_id=event.id,
        ticket_type_id=tt.id,
        user_id=user_id,
    )
    add_unique(
        uow.session, entry, Conflict("You are already on this waitlist", code="already_waitlisted")
    )
    uow.emit(WaitlistJoined.of(entry))
    return entry, position(uow, entry)


def position(uow: UnitOfWork, entry: WaitlistEntry) -> int:
    """1-based place in the queue (0 once no longer waiting). The entries ahead are other
    people's rows, so the database counts them (waitlist_position) and only the number leaves."""
    if entry.status != WaitlistStatus.WAITING:
        return 0
    return int(uow.session.scalar(select(func.waitlist_position(entry.id))))


def get_entry(uow: UnitOfWork, entry_id: uuid.UUID) -> WaitlistEntry:
    entry = uow.session.get(WaitlistEntry, entry_id)
    if entry is None:
        raise NotFound("Waitlist entry not found")
    return entry


def leave(
    uow: UnitOfWork, entry_id: uuid.UUID, user_id: uuid.UUID, *, organizer: bool = False
) -> WaitlistEntry:
    """Take a waiting entry off its waitlist: the participant's own, or (``organizer``: an owner
    or moderator of its organization, whose tenant the caller entered) anyone's."""
    entry = get_entry(uow, entry_id)
    if entry.user_id != user_id and not organizer:
        raise NotFound("Waitlist entry not found")
    if entry.status != WaitlistStatus.WAITING:
        raise InvalidState(
            f"The entry is {entry.status.value}", details={"status": entry.status.value}
        )
    entry.status = WaitlistStatus.CANCELLED
    uow.session.flush()
    uow.emit(WaitlistLeft.of(entry))
    return entry


@dataclass(frozen=True)
class Standing:
    """Where an entry stands: its place while waiting, its offer's deadline while offered."""

    position: int | None
    offer_expires_at: datetime | None


def standings(uow: UnitOfWork, entries: list[WaitlistEntry]) -> dict[uuid.UUID, Standing]:
    """Each entry's standing, in two statements whatever their number (organizers' list)."""
    waiting = [e.id for e in entries if e.status == WaitlistStatus.WAITING]
    holds = [e.reservation_id for e in entries if e.status == WaitlistStatus.OFFERED]
    places = dict(
        uow.session.execute(
            select(WaitlistEntry.id, func.waitlist_position(WaitlistEntry.id)).where(
                WaitlistEntry.id.in_(waiting)
            )
        ).all()
        if waiting
        else []
    )
    deadlines = dict(
        uow.session.execute(
            select(Reservation.id, Reservation.expires_at).where(Reservation.id.in_(holds))
        ).all()
        if holds
        else []
    )
    return {
        e.id: Standing(
            position=int(places[e.id]) if e.id in places else None,
            offer_expires_at=deadlines.get(e.reservation_id)
            if e.status == WaitlistStatus.OFFERED
            else None,
        )
        for e in entries
    }


def offer_next(uow: UnitOfWork, ticket_type_id: uuid.UUID) -> bool:
    """Offer one free seat of a ticket type to the first in its waitlist (the sweeper, in the
    tenant's context); whether an offer was made. One offer per transaction: the offer's claim
    locks seat counter shards until the commit, and a transaction that went on to claim more
    would hold some shards while waiting for others, against buyers who lock them in another
    order (a deadlock)."""
    tt = uow.session.get(TicketType, ticket_type_id, populate_existing=True)
    if tt is None or tt.sold >= tt.capacity:
        return False
    entry = uow.session.scalar(
        select(WaitlistEntry)
        .where(
            WaitlistEntry.ticket_type_id == ticket_type_id,
            WaitlistEntry.status == WaitlistStatus.WAITING,
        )
        .order_by(WaitlistEntry.priority.desc(), WaitlistEntry.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if entry is None:
        return False
    try:
        with uow.session.begin_nested():
            reservation = reserve(
                uow, tt.event_id, tt.id, 1, user_id=entry.user_id, waitlist_entry_id=entry.id
            )
    except Conflict:
        return False  # someone else took the seat meanwhile
    entry.offer(reservation.id)
    uow.session.flush()
    uow.emit(WaitlistOffered.of(entry, reservation))
    return True


# Offer order within each ticket type: priority, then arrival (seq is unique).
OFFER_ORDER = Keyset(WaitlistEntry.ticket_type_id, desc(WaitlistEntry.priority), WaitlistEntry.seq)


def list_for_event(uow: UnitOfWork, event_id: uuid.UUID, page: PageRequest) -> Page[WaitlistEntry]:
    """The event's waitlist entries by ticket type, each in offer order."""
    stmt = select(WaitlistEntry).where(WaitlistEntry.event_id == event_id)
    return OFFER_ORDER.page(uow.session, stmt, page)
