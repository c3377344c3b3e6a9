"""E-mail verification: an account's address is confirmed by a link e-mailed to it, and a paid
registration needs a confirmed address (domain/registration/service.py, ``require_verified``).

- Sign-up with e-mail, a change of the address (PATCH /users/me) and POST
  /users/me/email-verification emit ``user.email_verification_requested`` with the account, the
  address and an expiry; the notifications agent derives the link's token from those with the
  platform's key and e-mails it. The event carries no credential.
- The token is stateless: ``user id | expiry | HMAC-SHA256(key, user id | expiry | address)``,
  URL-safe base64. It confirms the address it was issued for only: once the account's address
  changes, the links sent to the old one stop working. Confirming twice is harmless (the first
  confirmation's time stays). The key is derived from the ticket signing key, domain-separated
  from it and from the password reset key.
- Accounts without an e-mail (Telegram sign-in) are verified by Telegram's signature and may pay.
- Requests for one account are spaced (``REQUEST_SPACING_S``): a request within it answers alike
  and sends nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import select

from domain.errors import InvalidState, PermissionDenied, ValidationFailed
from domain.identity.events import EmailVerificationRequested, EmailVerified
from domain.identity.models import User
from domain.uow import UnitOfWork

REQUEST_SPACING_S = 60
_KEY_LABEL = b"aqstream/email-verification/v1"
_PAYLOAD = struct.Struct(">16sQ")  # user id, expiry (Unix seconds)
_MAC_BYTES = 32


def signing_key(ticket_signing_key: str) -> bytes:
    """The verification tokens' key, derived from the platform's ticket signing key."""
    return hmac.new(ticket_signing_key.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, payload: bytes, email: str) -> bytes:
    return hmac.new(key, payload + email.encode(), hashlib.sha256).digest()


def token_for(key: bytes, user_id: uuid.UUID, email: str, expires_at: datetime) -> str:
    """The token confirming ``email`` for ``user_id`` until ``expires_at`` (75 characters)."""
    payload = _PAYLOAD.pack(user_id.bytes, int(expires_at.timestamp()))
    raw = payload + _mac(key, payload, email)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _invalid() -> ValidationFailed:
    return ValidationFailed(
        "The verification link is invalid or expired, or the address has changed since; "
        "ask for a new one",
        code="invalid_verification_token",
    )


def _read(token: str) -> tuple[uuid.UUID, datetime, bytes, bytes]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _invalid() from None
    if len(raw) != _PAYLOAD.size + _MAC_BYTES:
        raise _invalid()
    payload, mac = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    user_bytes, expires = _PAYLOAD.unpack(payload)
    return uuid.UUID(bytes=user_bytes), datetime.fromtimestamp(expires, UTC), payload, mac


def needs_verification(user: User) -> bool:
    """Whether the account has an address it has not confirmed."""
    return user.email is not None and user.email_verified_at is None


def require_verified(user: User) -> None:
    """Refuse what needs a confirmed address (a paid registration) with a stable code."""
    if needs_verification(user):
        raise PermissionDenied(
            "Confirm your e-mail address before buying a paid ticket: open the link we sent, or "
            "ask for a new one (POST /users/me/email-verification)",
            code="email_not_verified",
        )


def request(
    uow: UnitOfWork,
    user: User,
    *,
    ttl_s: int,
    now: datetime,
    spacing: redis.Redis | None = None,
) -> bool:
    """Emit the request for the account's current address (the caller commits); with
    ``spacing``, at most one per account in ``REQUEST_SPACING_S``. True when one was emitted."""
    if user.email is None:
        raise InvalidState("The account has no e-mail address", code="no_email")
    if user.email_verified_at is not None:
        raise InvalidState("The e-mail address is already confirmed", code="email_already_verified")
    if spacing is not None and not spacing.set(
        f"aq:emailverify:sent:{user.id}", "1", nx=True, ex=REQUEST_SPACING_S
    ):
        return False
    expires_at = (now + timedelta(seconds=ttl_s)).replace(microsecond=0)
    uow.emit(EmailVerificationRequested.of(user, expires_at=expires_at))
    return True


def confirm(uow: UnitOfWork, token: str, key: bytes, *, now: datetime) -> User:
    """Confirm the address the token was issued for, if it is still the account's."""
    user_id, expires_at, payload, mac = _read(token)
    if expires_at <= now:
        raise _invalid()
    uow.act_as(user_id)  # the link may be opened signed out, on another device
    user = uow.session.scalar(
        select(User).where(User.id == user_id, User.deleted_at.is_(None)).with_for_update()
    )
    if user is None or user.email is None:
        raise _invalid()
    if not hmac.compare_digest(mac, _mac(key, payload, user.email)):
        raise _invalid()
    if user.email_verified_at is None:
        user.email_verified_at = now
        uow.session.flush()
        uow.emit(EmailVerified.of(user))
    return user
