"""Sign-up, sign-in and profile services. They flush, never commit: the unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from domain.db.base import add_unique, uuid7
from domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from domain.identity import passwords, telegram
from domain.identity.events import UserRegistered, UserUpdated
from domain.identity.models import User
from domain.identity.throttle import SignInThrottle
from domain.uow import UnitOfWork

MIN_PASSWORD_LENGTH = 8
# Changing these takes the current password: a stolen access token must not be enough to take the
# account over for good (sign in elsewhere with a password or an address the thief chose).
CONFIRMED_FIELDS = ("email", "password")


def normalize_email(raw: str) -> str:
    """Canonical form for uniqueness: syntax checked, domain IDNA-normalised, lower-cased."""
    try:
        checked = validate_email(raw, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(str(exc), code="invalid_email") from None
    return checked.normalized.lower()


def register(uow: UnitOfWork, *, email: str, password: str, display_name: str | None) -> User:
    """Create an e-mail/password account."""
    email = normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"Password must have at least {MIN_PASSWORD_LENGTH} characters", code="weak_password"
        )
    user = User(
        email=email,
        password_hash=passwords.hash_password(password),
        display_name=((display_name or "").strip() or email.split("@", 1)[0])[:120],
    )
    _insert_unique(uow, user, "email_taken", "An account with this e-mail already exists")
    uow.emit(UserRegistered.of(user, method="email"))
    return user


def _insert_unique(uow: UnitOfWork, user: User, code: str, message: str) -> None:
    user.id = uuid7()
    uow.act_as(user.id)  # the new account may read back its own row (INSERT ... RETURNING)
    add_unique(uow.session, user, Conflict(message, code=code))


def authenticate(
    uow: UnitOfWork,
    *,
    email: str,
    password: str,
    throttle: SignInThrottle | None = None,
    address: str = "",
) -> User:
    """Check e-mail and password; the same answer for an unknown e-mail and a wrong password.
    With a ``throttle``, the attempt is counted (or refused) for the account first."""
    try:
        email = normalize_email(email)
    except ValidationFailed:
        email = ""
    # Not an e-mail at all names no account: nothing to throttle (the per-address limit applies).
    attempt = throttle.admit(email, address) if throttle and email else None
    uow.set_capability("login_email", email)
    user = uow.session.scalar(select(User).where(User.email == email, User.deleted_at.is_(None)))
    if not passwords.verify_password(user.password_hash if user else None, password):
        raise Unauthenticated("Wrong e-mail or password", code="invalid_credentials")
    assert user is not None
    if attempt is not None and throttle is not None:
        throttle.succeeded(attempt)
    uow.act_as(user.id)
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


def telegram_login(
    uow: UnitOfWork, fields: Mapping[str, Any], *, bot_token: str, max_age_s: int
) -> User:
    """Sign in (signing up on first use) with verified Telegram Login Widget data."""
    telegram.verify_login(fields, bot_token, max_age_s)
    telegram_id = int(fields["id"])
    uow.set_capability("login_telegram", str(telegram_id))
    user = uow.session.scalar(
        select(User).where(User.telegram_id == telegram_id, User.deleted_at.is_(None))
    )
    name = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p)
    if user is not None:
        uow.act_as(user.id)
        if fields.get("username") and user.telegram_username != fields["username"]:
            user.telegram_username = fields["username"]
        return user
    user = User(
        telegram_id=telegram_id,
        telegram_username=fields.get("username"),
        display_name=(name or fields.get("username") or f"tg{telegram_id}")[:120],
    )
    _insert_unique(uow, user, "telegram_taken", "This Telegram account is already registered")
    uow.emit(UserRegistered.of(user, method="telegram"))
    return user


def get_user(uow: UnitOfWork, user_id: uuid.UUID) -> User:
    user = uow.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("User not found")
    return user


def needs_current_password(changes: Mapping[str, Any]) -> bool:
    return any(changes.get(name) is not None for name in CONFIRMED_FIELDS)


def confirm_password(
    user: User,
    current_password: str | None,
    *,
    throttle: SignInThrottle | None = None,
    address: str = "",
) -> None:
    """The caller proves to know the account's password (an account without one cannot); a
    guess counts against the account like a sign-in's."""
    if current_password is None:
        raise ValidationFailed(
            "Changing the e-mail or the password takes the current password (current_password)",
            code="current_password_required",
        )
    attempt = throttle.admit(user.email or str(user.id), address) if throttle else None
    if not passwords.verify_password(user.password_hash, current_password):
        raise PermissionDenied("The current password is wrong", code="invalid_current_password")
    if attempt is not None and throttle is not None:
        throttle.succeeded(attempt)


def update_profile(
    uow: UnitOfWork,
    user_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    current_password: str | None = None,
    throttle: SignInThrottle | None = None,
    address: str = "",
) -> User:
    """Change the caller's own profile; the e-mail and the password only with the current
    password. A new password raises the token version: every access token issued before stops
    working (the caller revokes the refresh tokens)."""
    user = get_user(uow, user_id)
    if needs_current_password(changes):
        confirm_password(user, current_password, throttle=throttle, address=address)
    changed = []
    for name in ("display_name", "locale"):
        if name in changes and changes[name] is not None and getattr(user, name) != changes[name]:
            setattr(user, name, changes[name])
            changed.append(name)
    if changes.get("email") is not None:
        email = normalize_email(changes["email"])
        if email != user.email:
            user.email = email
            user.email_verified_at = None  # the new address is confirmed by a link sent to it
            changed.append("email")
            taken = Conflict("An account with this e-mail already exists", code="email_taken")
            add_unique(uow.session, user, taken)
    if changes.get("password") is not None:
        if len(changes["password"]) < MIN_PASSWORD_LENGTH:
            raise ValidationFailed("Password too short", code="weak_password")
        user.password_hash = passwords.hash_password(changes["password"])
        user.token_version = User.token_version + 1
        changed.append("password")
    if changed:
        uow.session.flush()
        uow.emit(UserUpdated.of(user, changed=changed))
    return user
