"""Telegram Login Widget verification, as Telegram documents it: the data-check-string (every
field but ``hash``, sorted, ``key=value`` joined by newlines) HMAC-SHA256'd with SHA256(bot token)
must equal ``hash``, and ``auth_date`` must be recent."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from domain.errors import Unauthenticated


def data_check_string(fields: Mapping[str, Any]) -> str:
    return "\n".join(
        f"{k}={fields[k]}" for k in sorted(fields) if k != "hash" and fields[k] is not None
    )


def sign(fields: Mapping[str, Any], bot_token: str) -> str:
    secret = hashlib.sha256(bot_token.encode()).digest()
    return hmac.new(secret, data_check_string(fields).encode(), hashlib.sha256).hexdigest()


def verify_login(
    fields: Mapping[str, Any], bot_token: str, max_age_s: int, now: float | None = None
) -> None:
    expected = sign(fields, bot_token)
    if not hmac.compare_digest(expected.encode(), str(fields.get("hash", "")).encode()):
        raise Unauthenticated("Telegram signature mismatch", code="invalid_telegram_signature")
    age = (now if now is not None else time.time()) - int(fields["auth_date"])
    if age > max_age_s or age < -60:
        raise Unauthenticated("Telegram login data is too old", code="telegram_auth_expired")
