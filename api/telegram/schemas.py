"""Request and response bodies of the Telegram endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TelegramUpdate(BaseModel):
    """An Update of the Bot API (https://core.telegram.org/bots/api#update); fields other than
    ``update_id`` are read as the bot needs them."""

    model_config = ConfigDict(extra="allow")

    update_id: int = Field(ge=0)


class WebhookAnswer(BaseModel):
    """Empty, or a Bot API call Telegram makes on the bot's behalf (``method`` sendMessage)."""

    model_config = ConfigDict(extra="allow")

    method: str | None = None
    chat_id: int | None = None
    text: str | None = None


class TelegramLinkOut(BaseModel):
    url: str = Field(
        description="`https://t.me/<bot>?start=<token>`: opening it and pressing Start in the "
        "bot's chat links the Telegram account that does so. Works once."
    )
    expires_at: datetime
