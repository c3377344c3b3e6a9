"""Events of the event capability (the domain events about organizers' events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class _EventFact(DomainEvent):
    aggregate_type = "event"

    event_id: uuid.UUID
    organization_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class EventCreated(_EventFact):
    event_type = "event.created"

    title: str
    starts_at: str
    ends_at: str
    timezone: str
    capacity: int | None
    visibility: str


@dataclass(frozen=True, kw_only=True)
class EventPublished(_EventFact):
    event_type = "event.published"

    title: str
    starts_at: str


@dataclass(frozen=True, kw_only=True)
class EventUnpublished(_EventFact):
    event_type = "event.unpublished"


@dataclass(frozen=True, kw_only=True)
class EventCancelled(_EventFact):
    event_type = "event.cancelled"

    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class EventCompleted(_EventFact):
    event_type = "event.completed"
