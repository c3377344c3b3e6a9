"""Events and ticket types: creation, editing, lifecycle, public listing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, text, update

from domain.db.base import uuid7
from domain.errors import Conflict, InvalidState, NotFound, Unauthenticated, ValidationFailed
from domain.event.events import (
    EventCancelled,
    EventCompleted,
    EventCreated,
    EventPublished,
    EventUnpublished,
    EventUpdated,
)
from domain.event.models import Event, EventStatus, TicketType, Visibility
from domain.group.models import Group, GroupMember
from domain.media.service import usable_image
from domain.pagination import Keyset, Page, PageRequest
from domain.timezones import check_timezone
from domain.uow import UnitOfWork
from domain.waitlist.models import WaitlistEntry, WaitlistStatus

# The lifecycle, exactly as seed 001 draws it.
TRANSITIONS: dict[EventStatus, set[EventStatus]] = {
    EventStatus.DRAFT: {EventStatus.PUBLISHED, EventStatus.CANCELLED},
    EventStatus.PUBLISHED: {EventStatus.DRAFT, EventStatus.CANCELLED, EventStatus.COMPLETED},
    EventStatus.CANCELLED: set(),
    EventStatus.COMPLETED: set(),
}

# What may change once an event is published: nothing participants relied on when they signed up.
SAFE_WHEN_PUBLISHED = {
    "title",
    "description",
    "venue",
    "online_url",
    "capacity",
    "registration_closes_at",
    "participants_visibility",
    "hold_minutes",
    "max_holds_per_account",
    "max_held_seats_per_account",
    "remainder_due_at",
    "cover_media_id",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _check_times(event: Event) -> None:
    if event.ends_at <= event.starts_at:
        raise ValidationFailed("The event must end after it starts", code="invalid_schedule")
    opens, closes = event.registration_opens_at, event.registration_closes_at
    if opens and closes and closes <= opens:
        raise ValidationFailed("Registration must close after it opens", code="invalid_schedule")
    if event.remainder_due_at and event.remainder_due_at > event.starts_at:
        raise ValidationFailed(
            "The remainder of a deposit must be due by the start", code="invalid_schedule"
        )


def _check_refund_policy(event: Event) -> None:
    """A participant's own cancellation refunds per this (domain/payment/refund_policy.py)."""
    if event.refund_fee_percent is not None and event.refund_fee_amount is not None:
        raise ValidationFailed(
            "Give the refund fee as a percent or as an amount, not both",
            code="invalid_refund_policy",
            details={"fields": ["refund_fee_percent", "refund_fee_amount"]},
        )
    fee = event.refund_fee_percent is not None or event.refund_fee_amount is not None
    if fee and event.refund_days_before_start is None:
        raise ValidationFailed(
            "A refund fee needs refund_days_before_start: without it nothing is refunded",
            code="invalid_refund_policy",
            details={"fields": ["refund_days_before_start"]},
        )


def _check_group(uow: UnitOfWork, event: Event) -> None:
    if event.visibility == Visibility.PRIVATE:
        if event.group_id is None:
            raise ValidationFailed("A private event needs a group", code="group_required")
        group = uow.session.get(Group, event.group_id)
        if group is None or group.deleted_at is not None or group.tenant_id != event.tenant_id:
            raise ValidationFailed("Unknown group", code="unknown_group")
    else:
        event.group_id = None


def _check_cover(uow: UnitOfWork, event: Event) -> None:
    if event.cover_media_id is not None:
        usable_image(uow, event.cover_media_id, event.tenant_id)


def create_event(
    uow: UnitOfWork, tenant_id: uuid.UUID, actor: uuid.UUID, fields: Mapping[str, Any]
) -> Event:
    event = Event(id=uuid7(), tenant_id=tenant_id, created_by=actor, **fields)
    event.timezone = check_timezone(event.timezone)
    _check_times(event)
    _check_refund_policy(event)
    _check_group(uow, event)
    _check_cover(uow, event)
    uow.session.add(event)
    uow.session.flush()
    uow.emit(EventCreated.of(event))
    return event


def get_event(uow: UnitOfWork, event_id: uuid.UUID, *, lock: bool = False) -> Event:
    event = uow.session.get(Event, event_id, with_for_update=lock or None)
    if event is None or event.deleted_at is not None:
        raise NotFound("Event not found")
    return event


def update_event(uow: UnitOfWork, event_id: uuid.UUID, changes: Mapping[str, Any]) -> Event:
    """Edit an event; once published only safe fields, and capacity never below what is sold."""
    event = get_event(uow, event_id, lock=True)
    if event.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
        raise InvalidState(
            f"A {event.status.value} event cannot be edited", details={"status": event.status.value}
        )
    if event.status == EventStatus.PUBLISHED:
        unsafe = sorted(set(changes) - SAFE_WHEN_PUBLISHED)
        if unsafe:
            raise InvalidState(
                "These fields cannot change while the event is published",
                code="field_locked",
                details={"fields": unsafe, "status": event.status.value},
            )
    before = {name: getattr(event, name) for name in changes}
    if "capacity" in changes:
        _set_capacity(uow, event, changes["capacity"])
    for name, value in changes.items():
        if name != "capacity":
            setattr(event, name, value)
    event.timezone = check_timezone(event.timezone)
    _check_times(event)
    _check_refund_policy(event)
    _check_group(uow, event)
    if "cover_media_id" in changes:
        _check_cover(uow, event)
    uow.session.flush()
    if "capacity" in changes:
        uow.session.expire(event, ["sold"])  # the counter changed with the capacity
    changed = [name for name, value in before.items() if getattr(event, name) != value]
    if changed:
        uow.emit(EventUpdated.of(event, changed=changed))
    return event


_LOCK_SEATS = text("SELECT lock_seats(:event, :tt)")


def _seats_taken(uow: UnitOfWork, event_id: uuid.UUID, ticket_type_id: uuid.UUID | None) -> int:
    """Seats taken of a ticket type, or of the event as its capacity counts them, with their
    counter shards locked until the commit: claims in flight finish before we count, and none
    starts before the new capacity is written (a trigger then spreads its room; migration
    0023)."""
    return int(uow.session.scalar(_LOCK_SEATS, {"event": event_id, "tt": ticket_type_id}))


def _set_capacity(uow: UnitOfWork, event: Event, capacity: int | None) -> None:
    if capacity is None:
        event.capacity = None
        return
    sold = _seats_taken(uow, event.id, None)
    if capacity < sold:
        raise Conflict(
            f"Capacity cannot go below the {sold} seats already taken",
            code="capacity_below_sold",
            details={"sold": sold},
        )
    event.capacity = capacity


def transition(
    uow: UnitOfWork, event_id: uuid.UUID, target: EventStatus, reason: str | None = None
) -> Event:
    event = get_event(uow, event_id, lock=True)
    if target not in TRANSITIONS[event.status]:
        raise InvalidState(
            f"Cannot move from {event.status.value} to {target.value}",
            details={"status": event.status.value, "requested": target.value},
        )
    now = _now()
    if target == EventStatus.PUBLISHED:
        if not uow.session.scalar(
            select(func.count()).where(
                TicketType.event_id == event.id,
                TicketType.deleted_at.is_(None),
                TicketType.is_active.is_(True),
            )
        ):
            raise InvalidState(
                "Add at least one active ticket type before publishing",
                code="no_ticket_types",
                details={"status": event.status.value},
            )
        event.published_at = now
    elif target == EventStatus.CANCELLED:
        event.cancelled_at = now
    elif target == EventStatus.COMPLETED:
        event.completed_at = now
    if target in (EventStatus.CANCELLED, EventStatus.COMPLETED):
        # Nobody will be offered a seat any more.
        uow.session.execute(
            update(WaitlistEntry)
            .where(
                WaitlistEntry.event_id == event.id,
                WaitlistEntry.status == WaitlistStatus.WAITING,
            )
            .values(status=WaitlistStatus.CANCELLED, updated_at=func.now())
        )
    event.status = target
    uow.session.flush()
    if target == EventStatus.CANCELLED:
        uow.emit(EventCancelled.of(event, reason=reason))
    else:
        fact = {
            EventStatus.PUBLISHED: EventPublished,
            EventStatus.DRAFT: EventUnpublished,
            EventStatus.COMPLETED: EventCompleted,
        }[target]
        uow.emit(fact.of(event))
    return event


EVENT_ORDER = Keyset(Event.starts_at, Event.id)  # soonest first


def list_public(
    uow: UnitOfWork,
    *,
    organization_id: uuid.UUID | None,
    starts_after: datetime | None,
    starts_before: datetime | None,
    query: str | None,
    page: PageRequest,
    visibility: str = "public",
    group_id: uuid.UUID | None = None,
) -> Page[Event]:
    """Published events by start time (keyset pagination: stable under inserts): public ones,
    the private ones of the caller's groups (``visibility="private"``), or both (``"all"``);
    ``group_id`` keeps one group's. Private events need a signed-in caller."""
    stmt = select(Event).where(Event.status == EventStatus.PUBLISHED, Event.deleted_at.is_(None))
    if visibility != "public" or group_id is not None:
        if uow.user_id is None:
            raise Unauthenticated("Sign in to see the private events of your groups")
        mine = select(GroupMember.group_id).where(
            GroupMember.user_id == uow.user_id, GroupMember.deleted_at.is_(None)
        )
        private = (Event.visibility == Visibility.PRIVATE) & Event.group_id.in_(mine)
        if group_id is not None and visibility == "public":
            visibility = "private"  # a group's events are its private ones
        shown = {
            "public": Event.visibility == Visibility.PUBLIC,
            "private": private,
            "all": or_(Event.visibility == Visibility.PUBLIC, private),
        }[visibility]
        stmt = stmt.where(shown)
        if group_id is not None:
            stmt = stmt.where(Event.group_id == group_id)
    else:
        stmt = stmt.where(Event.visibility == Visibility.PUBLIC)
    if organization_id:
        stmt = stmt.where(Event.tenant_id == organization_id)
    if starts_after:
        stmt = stmt.where(Event.starts_at >= starts_after)
    if starts_before:
        stmt = stmt.where(Event.starts_at < starts_before)
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(Event.title.ilike(pattern), Event.description.ilike(pattern)))
    return EVENT_ORDER.page(uow.session, stmt, page)


def list_for_tenant(
    uow: UnitOfWork,
    tenant_id: uuid.UUID,
    status: EventStatus | None,
    page: PageRequest,
    group_id: uuid.UUID | None = None,
) -> Page[Event]:
    """The organization's events in every state, by start time; with ``group_id``, the private
    events of that group."""
    stmt = select(Event).where(Event.tenant_id == tenant_id, Event.deleted_at.is_(None))
    if status:
        stmt = stmt.where(Event.status == status)
    if group_id:
        stmt = stmt.where(Event.group_id == group_id)
    return EVENT_ORDER.page(uow.session, stmt, page)


# --- ticket types -------------------------------------------------------------------------------------


def _check_ticket_type(tt: TicketType) -> None:
    if tt.deposit_amount is not None and tt.deposit_percent is not None:
        raise ValidationFailed(
            "Give a deposit amount or a percent, not both", code="invalid_deposit"
        )
    if (tt.deposit_amount is not None or tt.deposit_percent is not None) and tt.price_amount == 0:
        raise ValidationFailed("A free ticket takes no deposit", code="invalid_deposit")
    if tt.deposit_amount is not None and not 0 < tt.deposit_amount < tt.price_amount:
        raise ValidationFailed("The deposit must be below the price", code="invalid_deposit")
    if tt.sales_starts_at and tt.sales_ends_at and tt.sales_ends_at <= tt.sales_starts_at:
        raise ValidationFailed("Sales must end after they start", code="invalid_sales_window")
    _check_capacity(tt.capacity, tt.sold)


def _check_capacity(capacity: int, sold: int) -> None:
    if capacity < sold:
        raise Conflict(
            f"Capacity cannot go below the {sold} seats already taken",
            code="capacity_below_sold",
            details={"sold": sold},
        )


def create_ticket_type(
    uow: UnitOfWork, event_id: uuid.UUID, fields: Mapping[str, Any]
) -> TicketType:
    event = get_event(uow, event_id)
    if event.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
        raise InvalidState("The event is closed", details={"status": event.status.value})
    tt = TicketType(id=uuid7(), tenant_id=event.tenant_id, event_id=event.id, **fields)
    tt.sold = 0  # its counter opens with the insert (a trigger; migration 0023)
    _check_ticket_type(tt)
    uow.session.add(tt)
    uow.session.flush()
    return tt


def get_ticket_type(
    uow: UnitOfWork, event_id: uuid.UUID, ticket_type_id: uuid.UUID, *, lock: bool = False
) -> TicketType:
    tt = uow.session.get(TicketType, ticket_type_id, with_for_update=lock or None)
    if tt is None or tt.deleted_at is not None or tt.event_id != event_id:
        raise NotFound("Ticket type not found")
    return tt


def list_ticket_types(uow: UnitOfWork, event_id: uuid.UUID) -> list[TicketType]:
    return list(
        uow.session.scalars(
            select(TicketType)
            .where(TicketType.event_id == event_id, TicketType.deleted_at.is_(None))
            .order_by(TicketType.price_amount, TicketType.id)
        )
    )


def held_seats(uow: UnitOfWork, event_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Seats in the event's active holds per ticket type (they count in ``sold`` until the hold
    becomes a registration, is cancelled or expires and the sweeper gives the seats back).

    Read by table name: the registration package builds on this one, not the other way round."""
    rows = uow.session.execute(
        text(
            "SELECT ticket_type_id, sum(quantity) FROM reservations"
            " WHERE event_id = :event AND status = 'active' GROUP BY ticket_type_id"
        ),
        {"event": event_id},
    )
    return {tt: int(n) for tt, n in rows}


def update_ticket_type(
    uow: UnitOfWork, event_id: uuid.UUID, ticket_type_id: uuid.UUID, changes: Mapping[str, Any]
) -> TicketType:
    event = get_event(uow, event_id)
    tt = get_ticket_type(uow, event_id, ticket_type_id, lock=True)
    if event.status == EventStatus.PUBLISHED and tt.sold > 0:
        locked = sorted(
            {"price_amount", "currency", "deposit_amount", "deposit_percent"} & set(changes)
        )
        if locked:
            raise InvalidState(
                "Prices cannot change once seats are taken",
                code="field_locked",
                details={"fields": locked, "status": event.status.value},
            )
    for name, value in changes.items():
        setattr(tt, name, value)
    _check_ticket_type(tt)
    if "capacity" in changes:
        _check_capacity(tt.capacity, _seats_taken(uow, event_id, tt.id))
    uow.session.flush()
    if "capacity" in changes:
        uow.session.expire(tt, ["sold"])  # the counter changed with the capacity
    return tt


def delete_ticket_type(uow: UnitOfWork, event_id: uuid.UUID, ticket_type_id: uuid.UUID) -> None:
    tt = get_ticket_type(uow, event_id, ticket_type_id, lock=True)
    if tt.sold:
        raise Conflict(
            "Seats of this ticket type are taken; deactivate it instead", code="ticket_type_in_use"
        )
    tt.deleted_at = _now()
    uow.session.flush()
