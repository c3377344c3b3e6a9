"""Password reset by e-mail: a single-use token, valid for a while, stored only as its SHA-256.

- ``request_reset`` answers nothing either way (the API says 202 whether the address names an
  account or not) and, for an account with that e-mail, keeps the token's hash in Redis with a
  TTL and emits ``user.password_reset_requested``; the notifications agent e-mails the link.
- The token is ``HMAC-SHA256(key, reset_id)``: the event carries ``reset_id`` only, and the agent,
  holding the same key, derives the token to put in the link. Neither the outbox nor the topic
  carries a credential. The key is derived from the ticket signing key (both processes have it),
  domain-separated so that one never stands in for the other.
- ``confirm_reset`` spends the token (``GETDEL``: once, whatever the number of racing requests),
  sets the password and raises the account's token version: every access token issued before
  stops working, and the caller revokes every refresh token. A token issued before the password
  last changed (a reset or a change) is refused.
- Requests for one account are spaced (``REQUEST_SPACING_S``) so nobody floods a mailbox through
  the endpoint; a refused request also answers 202 and sends nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import select

from domain.db.base import uuid7
from domain.errors import ValidationFailed
from domain.identity import passwords
from domain.identity.events import PasswordResetRequested, UserPasswordReset
from domain.identity.models import User
from domain.uow import UnitOfWork

_PREFIX = "aq:pwreset"
REQUEST_SPACING_S = 60
_KEY_LABEL = b"aqstream/password-reset/v1"


def signing_key(ticket_signing_key: str) -> bytes:
    """The reset tokens' key, derived from the platform's ticket signing key."""
    return hmac.new(ticket_signing_key.encode(), _KEY_LABEL, hashlib.sha256).digest()


def token_for(key: bytes, reset_id: uuid.UUID) -> str:
    """The token of ``reset_id`` (43 URL-safe characters)."""
    digest = hmac.new(key, reset_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ResetGrant:
    user_id: uuid.UUID
    reset_id: uuid.UUID
    version: int  # the account's token_version when the reset was asked for


class ResetTokens:
    """The hashes of live reset tokens in Redis, each with its TTL."""

    def __init__(self, client: redis.Redis, key: bytes, ttl_s: int) -> None:
        self.client = client
        self.key = key
        self.ttl_s = ttl_s

    def issue(self, user: User, reset_id: uuid.UUID) -> str:
        token = token_for(self.key, reset_id)
        record = {"user": str(user.id), "reset": str(reset_id), "ver": user.token_version}
        self.client.set(f"{_PREFIX}:{_hash(token)}", json.dumps(record), ex=self.ttl_s)
        return token

    def spaced(self, user_id: uuid.UUID) -> bool:
        """True for the first request of the account in ``REQUEST_SPACING_S``."""
        return bool(
            self.client.set(f"{_PREFIX}:sent:{user_id}", "1", nx=True, ex=REQUEST_SPACING_S)
        )

    def consume(self, token: str) -> ResetGrant | None:
        raw = self.client.getdel(f"{_PREFIX}:{_hash(token)}")
        if raw is None:
            return None
        record = json.loads(raw)
        return ResetGrant(uuid.UUID(record["user"]), uuid.UUID(record["reset"]), int(record["ver"]))


def _invalid() -> ValidationFailed:
    return ValidationFailed(
        "The reset link is invalid, expired or already used; ask for a new one",
        code="invalid_reset_token",
    )


def request_reset(uow: UnitOfWork, email: str, tokens: ResetTokens, *, now: datetime) -> None:
    """Start a reset for the account with ``email`` (normalised) if there is one; silent either
    way."""
    uow.set_capability("login_email", email)
    user = uow.session.scalar(select(User).where(User.email == email, User.deleted_at.is_(None)))
    if user is None or not tokens.spaced(user.id):
        return
    uow.act_as(user.id)
    reset_id = uuid7()
    tokens.issue(user, reset_id)
    expires_at = now + timedelta(seconds=tokens.ttl_s)
    uow.emit(PasswordResetRequested.of(user, reset_id=reset_id, expires_at=expires_at))


def confirm_reset(
    uow: UnitOfWork, token: str, new_password: str, tokens: ResetTokens, *, min_length: int
) -> User:
    """Set the password of the token's account and spend the token. The caller revokes the
    account's refresh tokens once this commits."""
    if len(new_password) < min_length:
        # Checked before the token is spent: a refused password leaves the link usable.
        raise ValidationFailed(
            f"Password must have at least {min_length} characters", code="weak_password"
        )
    grant = tokens.consume(token)
    if grant is None:
        raise _invalid()
    uow.act_as(grant.user_id)
    user = uow.session.get(User, grant.user_id)
    if user is None or user.deleted_at is not None or user.token_version != grant.version:
        raise _invalid()
    user.password_hash = passwords.hash_password(new_password)
    user.token_version = User.token_version + 1
    uow.session.flush()
    uow.emit(UserPasswordReset.of(user, reset_id=grant.reset_id))
    return user
