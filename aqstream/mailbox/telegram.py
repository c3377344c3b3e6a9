"""A local stand-in for the Telegram Bot API (https://core.telegram.org/bots/api): the methods the
platform's Telegram channel calls, as documented.

``POST|GET /bot<token>/<method>`` with parameters in the query string, as JSON, form-urlencoded
or multipart (files); answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code":
..., "description": ...}`` with the same HTTP status. Methods: ``getMe``, ``sendMessage``
(``chat_id``, ``text`` of 1-4096 characters) and ``sendPhoto`` (``chat_id``, ``photo`` uploaded
as a file, ``caption`` of at most 1024 characters). Every chat is reachable: what is sent lands
in the mailbox.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aqstream.mailbox.store import Attachment, Store
from core.logging import get_logger

log = get_logger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
BOT_ID = 7_000_000_001
BOT = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "AqStream (local)",
    "username": "aqstream_local_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": code, "description": description}, code)


async def _parameters(request: Request) -> dict[str, Any] | None:
    """The call's parameters from every place the Bot API takes them; None: unreadable."""
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if request.method != "POST" or not await request.body():
        return params
    if content_type.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        return params | body
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return params | dict(form.items())
    return None


def _chat_id(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class BotApi:
    """The routes of the stand-in; ``token``: the bot's (None: any token is this bot's)."""

    def __init__(self, store: Store, token: str | None) -> None:
        self.store = store
        self.token = token
        self._message_ids = iter(range(1, 2**62))

    def routes(self) -> list[Route]:
        return [Route("/bot{token}/{method}", self.call, methods=["GET", "POST"])]

    async def call(self, request: Request) -> JSONResponse:
        token, method = request.path_params["token"], request.path_params["method"]
        if self.token is not None and not secrets.compare_digest(token, self.token):
            log.warning("telegram_unauthorized", method=method)
            return _error(401, "Unauthorized")
        params = await _parameters(request)
        if params is None:
            return _error(400, "Bad Request: can't parse request body")
        handler = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
        }.get(method.lower())
        if handler is None:
            return _error(404, "Not Found")
        return await handler(params)

    async def _get_me(self, _params: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"ok": True, "result": BOT})

    def _message(self, chat_id: int) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "from": {k: BOT[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": {"id": chat_id, "type": "private"},
            "date": int(self.store.clock().timestamp()),
        }

    async def _send_message(self, params: dict[str, Any]) -> JSONResponse:
        chat_id = _chat_id(params.get("chat_id"))
        text = params.get("text")
        if chat_id is None:
            return _error(400, "Bad Request: chat not found")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            return _error(400, "Bad Request: message is too long")
        result = self._message(chat_id) | {"text": text}
        self.store.add(
            channel="telegram", sender=f"@{BOT['username']}", recipients=(str(chat_id),),
            subject="", text=text, method="sendMessage",
        )  # fmt: skip
        return JSONResponse({"ok": True, "result": result})

    async def _send_photo(self, params: dict[str, Any]) -> JSONResponse:
        chat_id = _chat_id(params.get("chat_id"))
        photo = params.get("photo")
        caption = params.get("caption") or ""
        if chat_id is None:
            return _error(400, "Bad Request: chat not found")
        if not isinstance(photo, UploadFile):
            # A file_id or a URL of a photo on the internet: nothing this stand-in can show.
            return _error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        if len(caption) > CAPTION_LIMIT:
            return _error(400, "Bad Request: message caption is too long")
        data = await photo.read()
        if not data:
            return _error(400, "Bad Request: file must be non-empty")
        result = self._message(chat_id) | {
            "photo": [{"file_id": secrets.token_hex(16), "file_unique_id": secrets.token_hex(8),
                       "width": 0, "height": 0, "file_size": len(data)}],
        }  # fmt: skip
        if caption:
            result["caption"] = caption
        self.store.add(
            channel="telegram", sender=f"@{BOT['username']}", recipients=(str(chat_id),),
            subject="", text=caption, method="sendPhoto",
            attachments=(Attachment(photo.filename or "photo", photo.content_type or
                                    "application/octet-stream", data),),
        )  # fmt: skip
        return JSONResponse({"ok": True, "result": result})
