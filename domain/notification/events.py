"""Events of the notification capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.events import DomainEvent


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
