"""The e-mail verification message (``user.email_verification_requested``: sign-up, a new
address, or POST /users/me/email-verification).

It goes by e-mail to the address being confirmed, whatever channel the user chose for
notifications (the point is to prove that address works), and never once the link has expired,
the address has changed since or is already confirmed. The link's token is derived here from the
event's account, address and expiry (domain/identity/email_verification.py): the event carries no
credential."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.identity import email_verification
from domain.notification import catalog, service
from domain.notification.models import Notification
from domain.uow import UnitOfWork

EVENT_TYPE = "user.email_verification_requested"
TEMPLATE = "email_verification"


def handle(
    uow: UnitOfWork,
    payload: Mapping[str, Any],
    event_id: uuid.UUID,
    *,
    key: bytes,
    link: str,
    now: datetime | None = None,
) -> list[Notification]:
    """Queue the verification e-mail; ``link`` has ``{token}`` where the token goes. The caller
    commits."""
    now = now or datetime.now(UTC)
    found = service.account_addressee(uow, payload, now)
    if found is None or found[0].email_verified_at is not None:
        return []
    user, expires_at = found
    token = email_verification.token_for(key, user.id, user.email, expires_at)
    variables = {
        "email": user.email,
        "verify_url": link.replace("{token}", token),
        "expires_at": catalog.when(expires_at, "UTC"),
    }
    source = service.Source(id=event_id, type=EVENT_TYPE, tenant_id=None)
    return service.enqueue_account_email(uow, user, source, TEMPLATE, variables, now)
