"""Events of the notification capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.event.models import Event


@dataclass(frozen=True, kw_only=True)
class EventReminderDue(DomainEvent):
    """Once per event, `lead_hours` before it starts (emit_due_reminders): remind its people."""

    event_type = "event.reminder"
    aggregate_type = "event"

    event_id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    starts_at: str
    lead_hours: float

    @classmethod
    def of(cls, event: Event, *, lead_hours: float) -> Self:
        return cls(
            aggregate_id=event.id,
            tenant_id=event.tenant_id,
            event_id=event.id,
            organization_id=event.tenant_id,
            title=event.title,
            starts_at=event.starts_at.isoformat(),
            lead_hours=float(lead_hours),
        )
