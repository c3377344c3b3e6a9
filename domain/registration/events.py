"""Events of reservations and registrations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class ReservationCreated(DomainEvent):
    event_type = "reservation.created"
    aggregate_type = "reservation"

    reservation_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    expires_at: str
    from_waitlist: bool = False


@dataclass(frozen=True, kw_only=True)
class ReservationExpired(DomainEvent):
    event_type = "reservation.expired"
    aggregate_type = "reservation"

    reservation_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int


@dataclass(frozen=True, kw_only=True)
class RegistrationCreated(DomainEvent):
    event_type = "registration.created"
    aggregate_type = "registration"

    registration_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    status: str
    payment_mode: str
    currency: str
    amount_total: int
    amount_due_now: int
    reservation_id: uuid.UUID | None = None


@dataclass(frozen=True, kw_only=True)
class RegistrationConfirmed(DomainEvent):
    event_type = "registration.confirmed"
    aggregate_type = "registration"

    registration_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    # added to v1 (analytics by ticket type): absent in records written before it
    ticket_type_id: uuid.UUID | None = field(default=None, metadata={"added": True})


@dataclass(frozen=True, kw_only=True)
class RegistrationCancelled(DomainEvent):
    event_type = "registration.cancelled"
    aggregate_type = "registration"

    registration_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    reason: str
    amount_paid: int
    currency: str
