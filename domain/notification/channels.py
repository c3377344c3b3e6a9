"""Delivery channels: the Telegram Bot API over httpx and SMTP with aiosmtplib.

A channel sends one ``Outgoing`` message and answers the provider's id for it, or raises
``ChannelError``: ``transient`` ones (network, timeouts, 5xx, Telegram's 429, SMTP 4xx) are worth
retrying, the others (a blocked bot, an unknown chat, a refused address) are not.
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from core.settings import Settings
from domain.notification.models import Channel

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class Outgoing:
    address: str  # a Telegram chat id, or an e-mail address
    subject: str
    text: str
    html: str
    image_png: bytes | None = None  # the ticket's QR code


class ChannelError(Exception):
    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


class Sender(Protocol):
    async def send(self, message: Outgoing) -> str: ...


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TelegramSender:
    """``sendMessage`` for text (no parse mode: nothing in a message is markup), ``sendPhoto``
    with the PNG as multipart upload and the text as its caption for tickets."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str) -> None:
        self._client = client
        self._base = f"{base_url.rstrip('/')}/bot{token}"
        self._token = token

    async def send(self, message: Outgoing) -> str:
        chat_id = message.address
        try:
            if message.image_png is not None:
                response = await self._client.post(
                    f"{self._base}/sendPhoto",
                    data={
                        "chat_id": chat_id,
                        "caption": _clip(message.text, TELEGRAM_CAPTION_LIMIT),
                    },
                    files={"photo": ("ticket.png", message.image_png, "image/png")},
                )
            else:
                response = await self._client.post(
                    f"{self._base}/sendMessage",
                    json={
                        "chat_id": chat_id,
                        "text": _clip(message.text, TELEGRAM_TEXT_LIMIT),
                        "link_preview_options": {"is_disabled": True},
                    },
                )
        except httpx.HTTPError as exc:
            raise ChannelError(
                self._scrub(f"telegram: {type(exc).__name__}: {exc}"), transient=True
            ) from None
        return self._result(response)

    def _scrub(self, text: str) -> str:
        """Errors are stored in the log: never with the bot token in them."""
        return text.replace(self._token, "<token>")

    def _result(self, response: httpx.Response) -> str:
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok") is True:
            return str(body.get("result", {}).get("message_id", ""))
        code = int(body.get("error_code") or response.status_code)
        description = self._scrub(str(body.get("description") or response.reason_phrase))
        retry_after = (body.get("parameters") or {}).get("retry_after")
        raise ChannelError(
            f"telegram {code}: {description}",
            transient=code == 429 or code >= 500,
            retry_after=float(retry_after) if retry_after is not None else None,
        )


class EmailSender:
    """One SMTP transaction per message: text and HTML alternatives, the ticket's QR attached."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def build(self, message: Outgoing) -> EmailMessage:
        s = self._settings
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate(localtime=False)
        domain = email.utils.parseaddr(s.smtp_from)[1].rpartition("@")[2] or "aqstream"
        mail["Message-ID"] = email.utils.make_msgid(domain=domain)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        if message.image_png is not None:
            mail.add_attachment(
                message.image_png, maintype="image", subtype="png", filename="ticket.png"
            )
        return mail

    async def send(self, message: Outgoing) -> str:
        s = self._settings
        mail = self.build(message)
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                timeout=s.notification_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise ChannelError(
                f"smtp: recipient refused {codes}", transient=all(400 <= c < 500 for c in codes)
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ChannelError(
                f"smtp {exc.code}: {exc.message}", transient=400 <= exc.code < 500
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ChannelError(f"smtp: {type(exc).__name__}: {exc}", transient=True) from None
        return str(mail["Message-ID"])


class _Unconfigured:
    def __init__(self, what: str) -> None:
        self._what = what

    async def send(self, message: Outgoing) -> str:
        raise ChannelError(f"{self._what} is not configured", transient=False)


class Channels:
    """The senders of every channel, built from settings; ``open()`` per delivery pass (the HTTP
    client lives in the running event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[dict[Channel, Sender]]:
        s = self.settings
        async with httpx.AsyncClient(timeout=s.notification_timeout_s) as client:
            token = s.telegram_bot_token.get_secret_value() if s.telegram_bot_token else None
            yield {
                Channel.TELEGRAM: TelegramSender(client, s.telegram_api_base, token)
                if token
                else _Unconfigured("Telegram (AQSTREAM_TELEGRAM_BOT_TOKEN)"),
                Channel.EMAIL: EmailSender(s)
                if s.smtp_host
                else _Unconfigured("e-mail (AQSTREAM_SMTP_HOST)"),
            }
