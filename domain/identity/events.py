"""Events of the identity capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.identity.models import User


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

    @classmethod
    def of(cls, user: User, *, method: str) -> Self:
        """``method``: how the account was made ("email" | "telegram"); a new account's locale is
        always the default."""
        return cls(
            aggregate_id=user.id,
            user_id=user.id,
            method=method,
            display_name=user.display_name,
            email=user.email,
            telegram_id=user.telegram_id,
        )


@dataclass(frozen=True, kw_only=True)
class UserUpdated(DomainEvent):
    event_type = "user.updated"
    aggregate_type = "user"

    user_id: uuid.UUID
    changed: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, user: User, *, changed: list[str]) -> Self:
        return cls(aggregate_id=user.id, user_id=user.id, changed=changed)
