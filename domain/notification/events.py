"""Events of the notification capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class EventReminderDue(DomainEvent):
    """An event starts within the reminder lead time; emitted once per event by the scheduler
    (domain.notification.service.emit_due_reminders). The notification worker answers it with a
    reminder to every confirmed participant."""

    event_type = "event.reminder"
    aggregate_type = "event"

    event_id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    starts_at: str
    lead_hours: float
