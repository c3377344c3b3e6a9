"""Request and response bodies of the identity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.types import Email, RequestModel


class RegisterRequest(RequestModel):
    email: Email
    password: str = Field(min_length=8, max_length=256)
    display_name: str | None = Field(default=None, min_length=1, max_length=120)


class LoginRequest(RequestModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class TelegramLoginRequest(BaseModel):
    """The fields the Telegram Login Widget hands to the page, unchanged."""

    id: int = Field(gt=0)
    auth_date: int = Field(gt=0)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex HMAC-SHA256 from Telegram")
    first_name: str | None = Field(default=None, max_length=256)
    last_name: str | None = Field(default=None, max_length=256)
    username: str | None = Field(default=None, max_length=64)
    photo_url: str | None = Field(default=None, max_length=1024)


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str | None
    display_name: str
    telegram_username: str | None
    locale: str
    is_platform_admin: bool
    email_verified_at: datetime | None = Field(
        description="When the current e-mail address was confirmed by its e-mailed link; null "
        "until then (a paid registration needs it, unless the account has no e-mail)."
    )
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Access token lifetime in seconds")
    refresh_token: str
    user: UserOut


class UserUpdate(RequestModel):
    # The schema says what the server does: a new e-mail or password comes with the current one.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "dependentRequired": {"email": ["current_password"], "password": ["current_password"]}
        },
    )

    display_name: str | None = Field(default=None, min_length=1, max_length=120)
    locale: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    # Omitted: unchanged; null is refused (the schema says what the server does).
    email: Email = Field(  # type: ignore[assignment]
        default=None, description="A new sign-in e-mail; takes `current_password`."
    )
    password: str = Field(  # type: ignore[assignment]
        default=None,
        min_length=8,
        max_length=256,
        description="A new password; takes `current_password`, and signs out every session "
        "(access tokens issued before stop working at once, refresh tokens are revoked).",
    )
    current_password: str = Field(  # type: ignore[assignment]
        default=None,
        max_length=256,
        description="Required to change `email` or `password` (422 `current_password_required`; "
        "403 `invalid_current_password` when wrong; counted by the per-account sign-in "
        "throttle).",
    )


class Jwks(BaseModel):
    keys: list[dict[str, str]]


class PasswordResetRequest(RequestModel):
    email: Email


class EmailVerificationConfirm(RequestModel):
    token: str = Field(
        min_length=1, max_length=128, description="The token of the e-mailed verification link."
    )


class PasswordResetConfirm(RequestModel):
    token: str = Field(min_length=1, max_length=128, description="The token of the e-mailed link.")
    new_password: str = Field(min_length=8, max_length=256)
