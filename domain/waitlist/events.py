"""Events of the waitlist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.registration.models import Reservation
    from domain.waitlist.models import WaitlistEntry


@dataclass(frozen=True, kw_only=True)
class WaitlistJoined(DomainEvent):
    event_type = "waitlist.joined"
    aggregate_type = "waitlist_entry"

    entry_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID

    @classmethod
    def of(cls, entry: WaitlistEntry) -> Self:
        return cls(
            aggregate_id=entry.id,
            tenant_id=entry.tenant_id,
            entry_id=entry.id,
            event_id=entry.event_id,
            ticket_type_id=entry.ticket_type_id,
            user_id=entry.user_id,
        )


@dataclass(frozen=True, kw_only=True)
class WaitlistOffered(DomainEvent):
    event_type = "waitlist.offered"
    aggregate_type = "waitlist_entry"

    entry_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    reservation_id: uuid.UUID
    expires_at: str

    @classmethod
    def of(cls, entry: WaitlistEntry, reservation: Reservation) -> Self:
        return cls(
            aggregate_id=entry.id,
            tenant_id=entry.tenant_id,
            entry_id=entry.id,
            event_id=entry.event_id,
            ticket_type_id=entry.ticket_type_id,
            user_id=entry.user_id,
            reservation_id=reservation.id,
            expires_at=reservation.expires_at.isoformat(),
        )


@dataclass(frozen=True, kw_only=True)
class WaitlistLeft(DomainEvent):
    """The participant left the waiting list (an offered entry is no longer waiting either: see
    waitlist.offered)."""

    event_type = "waitlist.left"
    aggregate_type = "waitlist_entry"

    entry_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID

    @classmethod
    def of(cls, entry: WaitlistEntry) -> Self:
        return cls(
            aggregate_id=entry.id,
            tenant_id=entry.tenant_id,
            entry_id=entry.id,
            event_id=entry.event_id,
            ticket_type_id=entry.ticket_type_id,
            user_id=entry.user_id,
        )
