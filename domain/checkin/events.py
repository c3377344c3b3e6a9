"""Events of check-ins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.checkin.models import CheckIn
    from domain.registration.models import Registration


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

    @classmethod
    def of(cls, registration: Registration, check_in: CheckIn) -> Self:
        return cls(
            aggregate_id=registration.id,
            tenant_id=registration.tenant_id,
            registration_id=registration.id,
            event_id=registration.event_id,
            ticket_type_id=registration.ticket_type_id,
            user_id=registration.user_id,
            quantity=registration.quantity,
            checked_in_by=check_in.checked_in_by,
            checked_in_at=registration.checked_in_at,
        )
