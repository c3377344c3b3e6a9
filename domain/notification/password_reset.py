"""The password reset e-mail (``user.password_reset_requested``, from POST /auth/password-reset).

It goes by e-mail to the address the reset was asked for, whatever channel the user chose for
notifications (a reset asked for by Telegram would hand the account to whoever holds the chat),
and never after the link has expired or when the account's e-mail has changed since. The link's
token is derived here from the event's ``reset_id`` (domain/identity/password_reset.py): the event
carries no credential."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.identity import password_reset
from domain.notification import service
from domain.notification.models import Notification
from domain.uow import UnitOfWork

EVENT_TYPE = "user.password_reset_requested"
TEMPLATE = "password_reset"


def handle(
    uow: UnitOfWork,
    payload: Mapping[str, Any],
    event_id: uuid.UUID,
    *,
    key: bytes,
    link: str,
    now: datetime | None = None,
) -> list[Notification]:
    """Queue the reset e-mail; ``link`` has ``{token}`` where the token goes. The caller
    commits."""
    now = now or datetime.now(UTC)
    found = service.account_addressee(uow, payload, now)
    if found is None:
        return []
    user, expires_at = found
    token = password_reset.token_for(key, uuid.UUID(str(payload["reset_id"])))
    variables = {
        "reset_url": link.replace("{token}", token),
        "valid_minutes": minutes_left(expires_at, now),
    }
    source = service.Source(id=event_id, type=EVENT_TYPE, tenant_id=None)
    return service.enqueue_account_email(uow, user, source, TEMPLATE, variables, now)


def minutes_left(expires_at: datetime, now: datetime) -> int:
    """Whole minutes until ``expires_at``, rounded down (at least 1): the e-mail never promises
    more time than the link has."""
    return max(1, int((expires_at - now).total_seconds() // 60))
