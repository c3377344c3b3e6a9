"""Events of the identity capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass(frozen=True, kw_only=True)
class UserTelegramLinked(DomainEvent):
    """The account was linked to a Telegram account through the bot (``/start <token>``)."""

    event_type = "user.telegram_linked"
    aggregate_type = "user"

    user_id: uuid.UUID
    telegram_id: int
    telegram_username: str | None = None
    previous_telegram_id: int | None = None  # the account was linked to another one before

    @classmethod
    def of(cls, user: User, *, previous: int | None) -> Self:
        assert user.telegram_id is not None
        return cls(
            aggregate_id=user.id,
            user_id=user.id,
            telegram_id=user.telegram_id,
            telegram_username=user.telegram_username,
            previous_telegram_id=previous,
        )


@dataclass(frozen=True, kw_only=True)
class UserTelegramUnlinked(DomainEvent):
    """The account's Telegram link was removed (``via``: "api" or "bot", the ``/stop`` command)."""

    event_type = "user.telegram_unlinked"
    aggregate_type = "user"

    user_id: uuid.UUID
    telegram_id: int
    via: str

    @classmethod
    def of(cls, user: User, *, telegram_id: int, via: str) -> Self:
        return cls(aggregate_id=user.id, user_id=user.id, telegram_id=telegram_id, via=via)


@dataclass(frozen=True, kw_only=True)
class PasswordResetRequested(DomainEvent):
    """Someone asked to reset the account's password; the notifications agent e-mails the link.

    The token is not in the event: the agent derives it from ``reset_id`` with the platform's key
    (domain/identity/password_reset.py), so the outbox and the topic never carry a credential."""

    event_type = "user.password_reset_requested"
    aggregate_type = "user"

    user_id: uuid.UUID
    reset_id: uuid.UUID
    email: str
    expires_at: datetime

    @classmethod
    def of(cls, user: User, *, reset_id: uuid.UUID, expires_at: datetime) -> Self:
        assert user.email is not None
        return cls(
            aggregate_id=user.id,
            user_id=user.id,
            reset_id=reset_id,
            email=user.email,
            expires_at=expires_at,
        )


@dataclass(frozen=True, kw_only=True)
class EmailVerificationRequested(DomainEvent):
    """The account's address is to be confirmed (sign-up, a new address, or asked again); the
    notifications agent e-mails the link to ``email``.

    The token is not in the event: the agent derives it from the account, the address and the
    expiry with the platform's key (domain/identity/email_verification.py)."""

    event_type = "user.email_verification_requested"
    aggregate_type = "user"

    user_id: uuid.UUID
    email: str
    expires_at: datetime

    @classmethod
    def of(cls, user: User, *, expires_at: datetime) -> Self:
        assert user.email is not None
        return cls(aggregate_id=user.id, user_id=user.id, email=user.email, expires_at=expires_at)


@dataclass(frozen=True, kw_only=True)
class EmailVerified(DomainEvent):
    """The account confirmed its address by the e-mailed link: paid registrations are open to it."""

    event_type = "user.email_verified"
    aggregate_type = "user"

    user_id: uuid.UUID
    email: str

    @classmethod
    def of(cls, user: User) -> Self:
        assert user.email is not None
        return cls(aggregate_id=user.id, user_id=user.id, email=user.email)


@dataclass(frozen=True, kw_only=True)
class UserPasswordReset(DomainEvent):
    """The password was set with a reset token; every session of the account was revoked."""

    event_type = "user.password_reset"
    aggregate_type = "user"

    user_id: uuid.UUID
    reset_id: uuid.UUID

    @classmethod
    def of(cls, user: User, *, reset_id: uuid.UUID) -> Self:
        return cls(aggregate_id=user.id, user_id=user.id, reset_id=reset_id)
