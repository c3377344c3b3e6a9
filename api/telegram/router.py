"""Telegram for every account (docs/telegram.md): a deep link to the bot that links the account,
unlinking, and the bot's webhook (the updates Telegram sends to the bot)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, status

from api.deps import AnonymousUowDep, StateDep, UowDep
from api.errors import ApiError, responses
from api.identity.router import IdentityRoute
from api.telegram.botapi import BotApiError, bot_username
from api.telegram.schemas import TelegramLinkOut, TelegramUpdate, WebhookAnswer
from core.logging import get_logger
from domain.identity import service, telegram_link

log = get_logger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def verified(
    state: StateDep,
    secret: Annotated[str | None, Header(alias=SECRET_HEADER, include_in_schema=False)] = None,
) -> None:
    """The update comes from Telegram: it carries the secret given to setWebhook (compared in
    constant time). Checked before the request's transaction begins: a refusal touches nothing."""
    expected = state.settings.telegram_webhook_secret
    if expected is None or state.settings.telegram_bot_token is None:
        raise ApiError(404, "telegram_disabled", "The Telegram bot is not configured")
    if secret is None or not secrets.compare_digest(
        secret.encode(), expected.get_secret_value().encode()
    ):
        raise ApiError(401, "invalid_webhook_secret", f"Missing or wrong {SECRET_HEADER}")


router = APIRouter(tags=["telegram"], route_class=IdentityRoute)
users = APIRouter(tags=["users"], route_class=IdentityRoute)


@router.post(
    "/telegram/webhook",
    response_model=WebhookAnswer,
    response_model_exclude_none=True,
    responses=responses(401, 404),
    dependencies=[Depends(verified)],
)
def webhook(update: TelegramUpdate, uow: AnonymousUowDep, state: StateDep) -> dict[str, Any]:
    """Telegram's updates to the bot: ``/start <token>`` links the sender to an account,
    ``/stop`` unlinks; handled once per ``update_id``. A reply is answered as a sendMessage."""
    tokens = telegram_link.LinkTokens(state.redis, state.settings.telegram_link_ttl_s)
    bot_token = state.settings.telegram_bot_token
    assert bot_token is not None  # verified() answered 404 otherwise
    bot_id = bot_token.get_secret_value().split(":", 1)[0]
    reply = telegram_link.handle_update(uow, update.model_dump(), tokens, bot_id=bot_id)
    if reply is None:
        return {}
    return {"method": "sendMessage", "chat_id": reply.chat_id, "text": reply.text}


@users.post(
    "/users/me/telegram/link", response_model=TelegramLinkOut, responses=responses(401, 404, 503)
)
def telegram_link_offer(uow: UowDep, state: StateDep, request: Request) -> TelegramLinkOut:
    """A one-time deep link to the bot (`AQSTREAM_TELEGRAM_LINK_TTL_S`, 10 min): pressing Start
    in the chat it opens links the Telegram account to this one (docs/telegram.md)."""
    settings = state.settings
    if settings.telegram_bot_token is None or settings.telegram_webhook_secret is None:
        raise ApiError(404, "telegram_disabled", "The Telegram bot is not configured")
    user = service.get_user(uow, uow.user_id)
    username = getattr(request.app.state, "telegram_bot_username", None)
    if username is None:
        try:
            username = bot_username(settings)
        except BotApiError as exc:
            log.warning("telegram_unavailable", error=str(exc))
            raise ApiError(
                503, "telegram_unavailable", "Telegram cannot be reached; retry shortly"
            ) from None
        request.app.state.telegram_bot_username = username
    tokens = telegram_link.LinkTokens(state.redis, settings.telegram_link_ttl_s)
    offer = telegram_link.issue_link(user, tokens, bot_username=username, now=datetime.now(UTC))
    return TelegramLinkOut(url=offer.url, expires_at=offer.expires_at)


@users.delete(
    "/users/me/telegram", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401, 409)
)
def telegram_unlink(uow: UowDep) -> None:
    """Unlink the account's Telegram (409 `telegram_not_linked`; 409 `telegram_only_sign_in`
    when the account has no e-mail and password to sign in with instead)."""
    telegram_link.unlink(uow, service.get_user(uow, uow.user_id), via="api")
