"""Events of the identity capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class UserRegistered(DomainEvent):
    event_type = "user.registered"
    aggregate_type = "user"

    user_id: uuid.UUID
    method: str  # "email" | "telegram"
    display_name: str
    email: str | None = None
    telegram_id: int | None = None
    locale: str = "en"


@dataclass(frozen=True, kw_only=True)
class UserUpdated(DomainEvent):
    event_type = "user.updated"
    aggregate_type = "user"

    user_id: uuid.UUID
    changed: list[str] = field(default_factory=list)
