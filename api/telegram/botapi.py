"""The two Bot API calls the API itself makes: getMe (the bot's username for deep links) and
setWebhook (at start-up, when ``AQSTREAM_TELEGRAM_WEBHOOK_URL`` is set). Messages to users go
through the notifications agent, and replies to the bot's chats in the webhook's answer."""

from __future__ import annotations

from typing import Any

import httpx

from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)

TIMEOUT_S = 10.0
# The updates the bot handles: asking Telegram for these only spares it the rest.
ALLOWED_UPDATES = ["message"]


class BotApiError(RuntimeError):
    """The Bot API refused or could not be reached (the bot token never appears here)."""


def _call(settings: Settings, method: str, params: dict[str, Any] | None = None) -> Any:
    if settings.telegram_bot_token is None:
        raise BotApiError("no bot token is configured")
    token = settings.telegram_bot_token.get_secret_value()
    url = f"{settings.telegram_api_base.rstrip('/')}/bot{token}/{method}"
    try:
        response = httpx.post(url, json=params or {}, timeout=TIMEOUT_S)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise BotApiError(f"{method}: {type(exc).__name__}") from None
    if not isinstance(body, dict) or not body.get("ok"):
        description = body.get("description") if isinstance(body, dict) else None
        raise BotApiError(f"{method}: {response.status_code} {description or ''}".strip())
    return body.get("result")


def bot_username(settings: Settings) -> str:
    """The configured username, else the Bot API's (getMe)."""
    if settings.telegram_bot_username:
        return settings.telegram_bot_username.removeprefix("@")
    result = _call(settings, "getMe")
    if not isinstance(result, dict) or not result.get("username"):
        raise BotApiError("getMe: no username")
    return str(result["username"])


def set_webhook(settings: Settings) -> None:
    """Point the bot's updates at ``AQSTREAM_TELEGRAM_WEBHOOK_URL`` with the webhook secret."""
    if settings.telegram_webhook_url is None or settings.telegram_webhook_secret is None:
        raise BotApiError("AQSTREAM_TELEGRAM_WEBHOOK_URL and _SECRET must both be set")
    _call(
        settings,
        "setWebhook",
        {
            "url": settings.telegram_webhook_url,
            "secret_token": settings.telegram_webhook_secret.get_secret_value(),
            "allowed_updates": ALLOWED_UPDATES,
        },
    )
    log.info("telegram_webhook_set", url=settings.telegram_webhook_url)


def register_at_start(settings: Settings) -> None:
    """At the API's start-up: set the webhook when configured; a failure is logged, and the API
    starts anyway (Telegram keeps no update for a webhook it does not have: nothing is lost but
    the bot's answers until the next start)."""
    if settings.telegram_webhook_url is None or settings.telegram_bot_token is None:
        return
    try:
        set_webhook(settings)
    except BotApiError as exc:
        log.warning("telegram_webhook_not_set", error=str(exc))
