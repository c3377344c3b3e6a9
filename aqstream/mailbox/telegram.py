"""A local stand-in for the Telegram Bot API (https://core.telegram.org/bots/api): the methods the
platform's Telegram channel calls, as documented.

``POST|GET /bot<token>/<method>`` with parameters in the query string, as JSON, form-urlencoded
or multipart (files); answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code":
..., "description": ...}`` with the same HTTP status. Methods: ``getMe``, ``sendMessage``
(``chat_id``, ``text`` of 1-4096 characters) and ``sendPhoto`` (``chat_id``, ``photo`` uploaded
as a file, ``caption`` of at most 1024 characters). Every chat is reachable: what is sent lands
in the mailbox.

Webhooks, as Telegram runs them: ``setWebhook`` (``url``, ``secret_token`` of 1-256 characters
``A-Z a-z 0-9 _ -``), ``deleteWebhook``, ``getWebhookInfo``. A user of the stand-in writes to the
bot with ``POST /stand-in/users/{telegram_user_id}/messages`` ``{"text", "username"?,
"first_name"?}``: the message becomes an Update (a new ``update_id``) POSTed as JSON to the
webhook with ``X-Telegram-Bot-Api-Secret-Token``, and a Bot API call in the webhook's answer
(``{"method": "sendMessage", ...}``) is made as Telegram makes it. The hook answers what happened:
``{"update_id", "status"`` (the webhook's HTTP status)``, "reply"`` (the message sent back, or
null)``}``; 409 when no webhook is set, 502 when it cannot be reached.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from typing import Any

import httpx
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aqstream.mailbox.store import Attachment, Store
from core.logging import get_logger

log = get_logger(__name__)

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_TIMEOUT_S = 10.0
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
        # Telegram's update ids start at some positive number and grow by one.
        self._update_ids = itertools.count(secrets.randbelow(2**31) + 1)
        self.webhook: dict[str, Any] | None = None  # {"url", "secret_token"} once set

    def routes(self) -> list[Route]:
        return [
            Route("/bot{token}/{method}", self.call, methods=["GET", "POST"]),
            Route(
                "/stand-in/users/{telegram_user_id:int}/messages",
                self.user_writes,
                methods=["POST"],
            ),
        ]

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
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
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

    # --- webhooks ---------------------------------------------------------------------------

    async def _set_webhook(self, params: dict[str, Any]) -> JSONResponse:
        url = params.get("url")
        secret = params.get("secret_token")
        if not isinstance(url, str) or not url:
            return await self._delete_webhook(params)  # an empty url removes it, as documented
        if not url.startswith(("http://", "https://")):
            return _error(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if secret is not None and not (isinstance(secret, str) and SECRET_TOKEN.fullmatch(secret)):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret}
        log.info("telegram_webhook_set", url=url)
        return JSONResponse({"ok": True, "result": True, "description": "Webhook was set"})

    async def _delete_webhook(self, _params: dict[str, Any]) -> JSONResponse:
        self.webhook = None
        return JSONResponse({"ok": True, "result": True, "description": "Webhook was deleted"})

    async def _get_webhook_info(self, _params: dict[str, Any]) -> JSONResponse:
        url = self.webhook["url"] if self.webhook else ""
        return JSONResponse({"ok": True, "result": {"url": url, "pending_update_count": 0}})

    async def user_writes(self, request: Request) -> JSONResponse:
        """A user sends the bot a message: delivered to the webhook as Telegram would."""
        user_id = request.path_params["telegram_user_id"]
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
            return JSONResponse({"detail": "a JSON body with a non-empty text"}, 422)
        if self.webhook is None:
            return JSONResponse({"detail": "no webhook is set (setWebhook)"}, 409)
        sender: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": str(body.get("first_name") or body.get("username") or f"user{user_id}"),
            "language_code": "en",
        }
        if body.get("username"):
            sender["username"] = str(body["username"])
        text = body["text"]
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": sender,
            "chat": {"id": user_id, "type": "private", "first_name": sender["first_name"]}
            | ({"username": sender["username"]} if "username" in sender else {}),
            "date": int(self.store.clock().timestamp()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(" ", 1)[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        update = {"update_id": next(self._update_ids), "message": message}
        self.store.add(
            channel="telegram", sender=f"@{sender.get('username') or user_id}",
            recipients=(f"@{BOT['username']}",), subject="", text=text, method="update",
        )  # fmt: skip
        headers = {}
        if self.webhook["secret_token"]:
            headers[SECRET_HEADER] = self.webhook["secret_token"]
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
                answer = await client.post(self.webhook["url"], json=update, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("telegram_webhook_unreachable", error=type(exc).__name__)
            return JSONResponse(
                {"update_id": update["update_id"], "status": None, "reply": None}, 502
            )
        reply = None
        if answer.is_success:
            reply = await self._answer_method(answer)
        return JSONResponse(
            {"update_id": update["update_id"], "status": answer.status_code, "reply": reply}
        )

    async def _answer_method(self, answer: httpx.Response) -> dict[str, Any] | None:
        """The Bot API call a webhook may put in its answer (sendMessage here), made."""
        try:
            params = answer.json()
        except ValueError:
            return None
        if not isinstance(params, dict) or str(params.get("method", "")).lower() != "sendmessage":
            return None
        sent = await self._send_message(params)
        body = json.loads(sent.body)
        return body.get("result") if body.get("ok") else None
