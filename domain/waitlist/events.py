"""Events of the waitlist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class WaitlistJoined(DomainEvent):
    event_type = "waitlist.joined"
    aggregate_type = "waitlist_entry"

    entry_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID


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
