"""Local stand-ins for the two third-party services notifications talk to: a real HTTP server that
speaks the Telegram Bot API (token in the path, ``{"ok": ..., "result"|"error_code"}`` answers,
multipart photo uploads) and a real SMTP server (aiosmtpd). Tests assert what arrived there."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, text

from core.settings import Settings
from domain.notification.channels import Channels

# --- Telegram Bot API ---------------------------------------------------------------------------


@dataclass
class TelegramStandIn:
    token: str
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    # Failure injection: the next N calls answer this (status, body) instead.
    fail_next: int = 0
    failure: tuple[int, dict[str, Any]] = (500, {"ok": False, "error_code": 500,
                                                 "description": "Internal Server Error"})  # fmt: skip
    blocked_chats: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.requests = 0
            self.fail_next = 0
            self.blocked_chats.clear()

    def to(self, chat_id: int | str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["chat_id"] == str(chat_id)]


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename():
            fields[name] = {
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "data": payload,
            }
        else:
            fields[name] = payload.decode()
    return fields


def _telegram_handler(stand_in: TelegramStandIn):
    message_ids = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            _, _, rest = self.path.partition("/bot")
            token, _, method = rest.rpartition("/")
            with stand_in.lock:
                stand_in.requests += 1
                if not self.path.startswith("/bot") or token != stand_in.token:
                    return self._answer(
                        401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
                    )
                if stand_in.fail_next > 0:
                    stand_in.fail_next -= 1
                    return self._answer(*stand_in.failure)
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("application/json"):
                    params = json.loads(raw)
                elif content_type.startswith("multipart/form-data"):
                    params = _multipart(content_type, raw)
                else:
                    return self._answer(
                        400, {"ok": False, "error_code": 400, "description": "Bad Request"}
                    )
                chat_id = str(params.get("chat_id", ""))
                if chat_id in stand_in.blocked_chats:
                    return self._answer(
                        403,
                        {
                            "ok": False,
                            "error_code": 403,
                            "description": "Forbidden: bot was blocked by the user",
                        },
                    )
                result: dict[str, Any] = {
                    "message_id": next(message_ids),
                    "chat": {"id": int(chat_id), "type": "private"},
                    "date": int(time.time()),
                }
                if method == "sendMessage" and params.get("text"):
                    result["text"] = params["text"]
                    stand_in.received.append(
                        {"method": method, "chat_id": chat_id, "text": params["text"]}
                    )
                elif method == "sendPhoto" and isinstance(params.get("photo"), dict):
                    photo = params["photo"]
                    result["photo"] = [{"file_id": uuid.uuid4().hex, "width": 1, "height": 1}]
                    result["caption"] = params.get("caption", "")
                    stand_in.received.append(
                        {
                            "method": method,
                            "chat_id": chat_id,
                            "caption": params.get("caption", ""),
                            "photo": photo["data"],
                            "photo_type": photo["content_type"],
                        }
                    )
                else:
                    return self._answer(
                        400,
                        {"ok": False, "error_code": 400, "description": "Bad Request: no text"},
                    )
                return self._answer(200, {"ok": True, "result": result})

    return Handler


@pytest.fixture(scope="session")
def telegram(settings: Settings) -> Iterator[TelegramStandIn]:
    stand_in = TelegramStandIn(token=settings.telegram_bot_token.get_secret_value())
    server = ThreadingHTTPServer(("127.0.0.1", 0), _telegram_handler(stand_in))
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()


# --- SMTP -----------------------------------------------------------------------------------------


@dataclass
class SmtpStandIn:
    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    def reset(self) -> None:
        self.received.clear()
        self.refused.clear()

    def to(self, address: str) -> list[EmailMessage]:
        wanted = address.lower()
        return [m["message"] for m in self.received if wanted in map(str.lower, m["rcpt_tos"])]


class _SmtpHandler:
    def __init__(self, stand_in: SmtpStandIn) -> None:
        self.stand_in = stand_in

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in {a.lower() for a in self.stand_in.refused}:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.stand_in.received.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(envelope.content, policy=email.policy.default),
            }
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpStandIn]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    stand_in = SmtpStandIn(port=_free_port())
    controller = Controller(_SmtpHandler(stand_in), hostname="127.0.0.1", port=stand_in.port)
    controller.start()
    yield stand_in
    controller.stop()


# --- wiring ---------------------------------------------------------------------------------------


@pytest.fixture
def notify_settings(settings: Settings, telegram: TelegramStandIn, smtp: SmtpStandIn) -> Settings:
    telegram.reset()
    smtp.reset()
    return settings.model_copy(
        update={
            "telegram_api_base": telegram.url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_from": "AqStream <no-reply@aqstream.example>",
            "notification_retry_base_s": 0.01,
            "notification_retry_max_s": 0.05,
            "notification_attempts": 3,
        }
    )


@pytest.fixture
def channels(notify_settings: Settings) -> Channels:
    return Channels(notify_settings)


@pytest.fixture
def sessions(client):
    """The API's own sessionmaker: the application role, under row level security."""
    return client.app.state.aq.sessionmaker


def link_telegram(owner_engine: Engine, user: dict, *, locale: str | None = None) -> int:
    """Give ``user`` a Telegram id (as signing in with Telegram would) and maybe a locale."""
    telegram_id = int(uuid.uuid4().int % 9_000_000_000) + 1_000_000_000
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET telegram_id = :t, locale = coalesce(:l, locale) WHERE id = :id"),
            {"t": telegram_id, "l": locale, "id": user["user"]["id"]},
        )
    return telegram_id


def set_locale(owner_engine: Engine, user: dict, locale: str) -> None:
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET locale = :l WHERE id = :id"),
            {"l": locale, "id": user["user"]["id"]},
        )


def outbox_events(engine: Engine, aggregate_id: str, event_type: str | None = None) -> list[dict]:
    """Outbox rows of an aggregate as a consumer receives them: id, type and payload."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, event_type, payload FROM outbox WHERE aggregate_id = :id "
                "ORDER BY occurred_at, id"
            ),
            {"id": aggregate_id},
        ).mappings()
        return [dict(r) for r in rows if event_type in (None, r["event_type"])]


def log_rows(engine: Engine, **where: Any) -> list[dict]:
    """Notification log rows (read as the owner), filtered by column equality."""
    clause = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text(f"SELECT * FROM notifications WHERE {clause} ORDER BY created_at, id"),
                where,
            ).mappings()
        ]
