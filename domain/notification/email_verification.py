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
from domain.identity.models import User
from domain.notification import catalog, service
from domain.notification.models import Channel, Notification
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
    user_id = uuid.UUID(str(payload["user_id"]))
    expires_at = datetime.fromisoformat(str(payload["expires_at"]))
    if expires_at <= now:
        return []
    uow.act_as(user_id)  # a platform message: the recipient's alone
    user = uow.session.get(User, user_id)
    if (
        user is None
        or user.deleted_at is not None
        or user.email != payload["email"]
        or user.email_verified_at is not None
    ):
        return []
    token = email_verification.token_for(key, user_id, user.email, expires_at)
    recipient = service.Recipient(
        user=user,
        channel=Channel.EMAIL,
        address=user.email,
        language=catalog.language_of(user.locale),
        deferred_until=None,  # asked for now: not held for quiet hours
    )
    variables = {
        "email": user.email,
        "verify_url": link.replace("{token}", token),
        "expires_at": catalog.when(expires_at, "UTC"),
    }
    source = service.Source(id=event_id, type=EVENT_TYPE, tenant_id=None)
    return service.enqueue(uow, source, TEMPLATE, [recipient], variables, now=now)
