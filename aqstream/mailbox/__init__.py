"""`aqstream mailbox`: local stand-ins for the two third-party services notifications go to, so
that what the platform sends can be seen on a laptop (docs/notifications.md, "Locally").

- a real SMTP server (aiosmtpd) that accepts every message (`AQSTREAM_SMTP_HOST`/`_PORT`);
- a stand-in of the Telegram Bot API (``telegram``) on the HTTP port
  (`AQSTREAM_TELEGRAM_API_BASE`), webhooks included: a simulated user's message reaches the
  registered webhook as an Update (docs/telegram.md);
- on the same HTTP port, a web page listing what both received (``page``).

Messages are kept in memory, the last ``keep`` of them (``store``). `aqstream run` starts it as a
supervised child and points the API, the worker and the jobs at it.
"""

from __future__ import annotations

import threading
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette

from aqstream.mailbox.page import Page
from aqstream.mailbox.store import Clock, Message, Store, utc_now
from aqstream.mailbox.telegram import BotApi
from core.logging import get_logger

log = get_logger(__name__)

__all__ = ["Mailbox", "Message", "Store", "app"]


class _SmtpHandler:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = self.store.add_email(
            envelope.mail_from, list(envelope.rcpt_tos), envelope.content
        )
        log.info("mailbox_email", id=message.id, to=list(message.recipients))
        return "250 Message accepted for delivery"


def app(store: Store, telegram_token: str | None) -> Starlette:
    return Starlette(routes=[*BotApi(store, telegram_token).routes(), *Page(store).routes()])


class Mailbox:
    """The SMTP server and the HTTP server (page and Bot API) over one store."""

    def __init__(
        self,
        host: str,
        http_port: int,
        smtp_port: int,
        *,
        telegram_token: str | None = None,
        keep: int = 500,
        clock: Clock = utc_now,
    ) -> None:
        self.store = Store(keep=keep, clock=clock)
        self.host, self.http_port, self.smtp_port = host, http_port, smtp_port
        self.smtp = Controller(_SmtpHandler(self.store), hostname=host, port=smtp_port)
        self.http = uvicorn.Server(
            uvicorn.Config(
                app(self.store, telegram_token), host=host, port=http_port, log_config=None,
                access_log=False, lifespan="off",
            )
        )  # fmt: skip
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def serve(self) -> None:
        """Until SIGINT or SIGTERM (uvicorn's handlers), in this thread."""
        self.smtp.start()
        try:
            log.info("mailbox_started", url=self.url, smtp_port=self.smtp_port)
            self.http.run()
        finally:
            self.smtp.stop()

    def start(self) -> Mailbox:
        """In the background (tests): returns once both servers answer."""
        self.smtp.start()
        self._thread = threading.Thread(target=self.http.run, name="mailbox-http", daemon=True)
        self._thread.start()
        while not self.http.started:
            if not self._thread.is_alive():
                self.smtp.stop()
                raise RuntimeError(f"the mailbox could not listen on {self.url}")
            self._thread.join(0.02)
        return self

    def stop(self) -> None:
        self.http.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.smtp.stop()
