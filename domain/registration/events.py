"""Events of reservations and registrations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.registration.models import Registration, Reservation


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
    # the tracking visitor, for the analytics' attribution; added to v1, so optional
    visitor_id: str | None = field(default=None, metadata={"added": True})

    @classmethod
    def of(cls, reservation: Reservation) -> Self:
        return cls(
            aggregate_id=reservation.id,
            tenant_id=reservation.tenant_id,
            reservation_id=reservation.id,
            event_id=reservation.event_id,
            ticket_type_id=reservation.ticket_type_id,
            user_id=reservation.user_id,
            quantity=reservation.quantity,
            expires_at=reservation.expires_at.isoformat(),
            from_waitlist=reservation.waitlist_entry_id is not None,
            visitor_id=reservation.visitor_id,
        )


@dataclass(frozen=True, kw_only=True)
class ReservationExpired(DomainEvent):
    event_type = "reservation.expired"
    aggregate_type = "reservation"

    reservation_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int

    @classmethod
    def of(cls, reservation: Reservation) -> Self:
        return cls(
            aggregate_id=reservation.id,
            tenant_id=reservation.tenant_id,
            reservation_id=reservation.id,
            event_id=reservation.event_id,
            ticket_type_id=reservation.ticket_type_id,
            user_id=reservation.user_id,
            quantity=reservation.quantity,
        )


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
    # the tracking visitor, for the analytics' attribution; added to v1, so optional
    visitor_id: str | None = field(default=None, metadata={"added": True})

    @classmethod
    def of(cls, registration: Registration) -> Self:
        return cls(
            aggregate_id=registration.id,
            tenant_id=registration.tenant_id,
            registration_id=registration.id,
            event_id=registration.event_id,
            ticket_type_id=registration.ticket_type_id,
            user_id=registration.user_id,
            quantity=registration.quantity,
            status=registration.status.value,
            payment_mode=registration.payment_mode.value,
            currency=registration.currency,
            amount_total=registration.amount_total,
            amount_due_now=registration.amount_due_now,
            reservation_id=registration.reservation_id,
            visitor_id=registration.visitor_id,
        )


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

    @classmethod
    def of(cls, registration: Registration) -> Self:
        return cls(
            aggregate_id=registration.id,
            tenant_id=registration.tenant_id,
            registration_id=registration.id,
            event_id=registration.event_id,
            user_id=registration.user_id,
            quantity=registration.quantity,
            ticket_type_id=registration.ticket_type_id,
        )


@dataclass(frozen=True, kw_only=True)
class RegistrationTicketResent(DomainEvent):
    """An organizer asked for a confirmed registration's ticket to be sent again (the
    notifications send the ticket message once more)."""

    event_type = "registration.ticket_resent"
    aggregate_type = "registration"

    registration_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    requested_by: uuid.UUID

    @classmethod
    def of(cls, registration: Registration, *, requested_by: uuid.UUID) -> Self:
        return cls(
            aggregate_id=registration.id,
            tenant_id=registration.tenant_id,
            registration_id=registration.id,
            event_id=registration.event_id,
            user_id=registration.user_id,
            requested_by=requested_by,
        )


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
    # what the event's refund policy gives back on a participant's own cancellation (the
    # payment saga asks for it); null for other cancellations. Added to v1, so optional.
    refund_due: int | None = field(default=None, metadata={"added": True})

    @classmethod
    def of(cls, registration: Registration, *, reason: str) -> Self:
        return cls(
            aggregate_id=registration.id,
            tenant_id=registration.tenant_id,
            registration_id=registration.id,
            event_id=registration.event_id,
            ticket_type_id=registration.ticket_type_id,
            user_id=registration.user_id,
            quantity=registration.quantity,
            reason=reason,
            amount_paid=registration.amount_paid,
            currency=registration.currency,
            refund_due=registration.refund_due,
        )
