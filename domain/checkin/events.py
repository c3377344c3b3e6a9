"""Events of check-ins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class CheckInCompleted(DomainEvent):
    """A participant was let in; raised once per registration (never for a retried scan)."""

    event_type = "checkin.completed"
    aggregate_type = "registration"

    registration_id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    quantity: int
    checked_in_by: uuid.UUID
    checked_in_at: datetime
