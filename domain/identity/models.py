"""Users: platform-wide accounts (not tenant data): e-mail/password and/or Telegram."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"

    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    telegram_username: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(120))
    locale: Mapped[str] = mapped_column(String(16), server_default=text("'en'"))
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Raised by a password change: access tokens carry the version they were issued at, and one
    # that is not the user's current version is refused (api/deps.py).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # When the account confirmed its current e-mail address (domain/identity/email_verification.py);
    # cleared by a change of address. A paid registration needs it (or no e-mail at all).
    email_verified_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        Index("uq_users_email", "email", unique=True, postgresql_where=text("deleted_at IS NULL")),
        Index(
            "uq_users_telegram_id",
            "telegram_id",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
