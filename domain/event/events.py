"""Events of the event capability (the domain events about organizers' events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.event.models import Event


@dataclass(frozen=True, kw_only=True)
class _EventFact(DomainEvent):
    aggregate_type = "event"

    event_id: uuid.UUID
    organization_id: uuid.UUID

    @classmethod
    def of(cls, event: Event) -> Self:
        return cls(**_about(event))


def _about(event: Event) -> dict[str, Any]:
    """The fields every event of an event has."""
    return {
        "aggregate_id": event.id,
        "tenant_id": event.tenant_id,
        "event_id": event.id,
        "organization_id": event.tenant_id,
    }


@dataclass(frozen=True, kw_only=True)
class EventCreated(_EventFact):
    event_type = "event.created"

    title: str
    starts_at: str
    ends_at: str
    timezone: str
    capacity: int | None
    visibility: str

    @classmethod
    def of(cls, event: Event) -> Self:
        return cls(
            **_about(event),
            title=event.title,
            starts_at=event.starts_at.isoformat(),
            ends_at=event.ends_at.isoformat(),
            timezone=event.timezone,
            capacity=event.capacity,
            visibility=event.visibility.value,
        )


@dataclass(frozen=True, kw_only=True)
class EventPublished(_EventFact):
    event_type = "event.published"

    title: str
    starts_at: str

    @classmethod
    def of(cls, event: Event) -> Self:
        return cls(**_about(event), title=event.title, starts_at=event.starts_at.isoformat())


@dataclass(frozen=True, kw_only=True)
class EventUnpublished(_EventFact):
    event_type = "event.unpublished"


@dataclass(frozen=True, kw_only=True)
class EventCancelled(_EventFact):
    event_type = "event.cancelled"

    reason: str | None = None

    @classmethod
    def of(cls, event: Event, *, reason: str | None = None) -> Self:
        return cls(**_about(event), reason=reason)


@dataclass(frozen=True, kw_only=True)
class EventCompleted(_EventFact):
    event_type = "event.completed"


@dataclass(frozen=True, kw_only=True)
class EventUpdated(_EventFact):
    """An organizer edited the event: ``changed`` names the fields whose value changed (none of
    their values: read the event); ``status`` is the event's when edited."""

    event_type = "event.updated"

    changed: list[str]
    status: str

    @classmethod
    def of(cls, event: Event, *, changed: list[str]) -> Self:
        return cls(**_about(event), changed=sorted(changed), status=event.status.value)
