"""The mailbox of `aqstream run`: a real SMTP server and a Telegram Bot API stand-in on real
ports, and the page that shows what they received. The platform's own channels deliver into it."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import pytest
from pydantic import SecretStr

from aqstream.mailbox import Mailbox
from aqstream.stack.servers import free_port
from core.settings import Settings
from domain.notification.channels import ChannelError, Channels, Outgoing
from domain.notification.models import Channel

TOKEN = "123456:local-test-token"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


class Ticks:
    """An injected clock: each reading one minute after the last."""

    def __init__(self) -> None:
        self.now = datetime(2030, 5, 17, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(
        "127.0.0.1", free_port(), free_port(), telegram_token=TOKEN, keep=3, clock=Ticks()
    )
    box.start()
    yield box
    box.stop()


def _bot(mailbox: Mailbox, method: str, token: str = TOKEN, **kwargs) -> httpx.Response:
    return httpx.post(f"{mailbox.url}/bot{token}/{method}", timeout=5, **kwargs)


def test_an_smtp_client_sends_and_the_page_lists_and_renders_it(mailbox: Mailbox) -> None:
    mail = EmailMessage()
    mail["From"] = "AqStream <no-reply@aqstream.example>"
    mail["To"] = "ann@example.org"
    mail["Subject"] = "Your ticket: PyData Riga"
    mail.set_content("See you there.")
    mail.add_alternative("<p>See you <b>there</b>.</p>", subtype="html")
    mail.add_attachment(PNG, maintype="image", subtype="png", filename="ticket.png")
    with smtplib.SMTP("127.0.0.1", mailbox.smtp_port, timeout=5) as smtp:
        smtp.send_message(mail)

    (listed,) = httpx.get(f"{mailbox.url}/api/messages", timeout=5).json()
    assert listed["channel"] == "email" and listed["recipients"] == ["ann@example.org"]
    assert listed["subject"] == "Your ticket: PyData Riga"
    assert listed["received_at"] == "2030-05-17T09:01:00+00:00"  # the injected clock
    page = httpx.get(f"{mailbox.url}/", timeout=5)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for shown in ("Your ticket: PyData Riga", "ann@example.org", "2030-05-17 09:01:00 UTC",
                  "See you there.", f"/messages/{listed['id']}/html", "/api/latest"):  # fmt: skip
        assert shown in page.text
    body = httpx.get(f"{mailbox.url}/messages/{listed['id']}/html", timeout=5)
    assert body.text.strip() == "<p>See you <b>there</b>.</p>"
    assert body.headers["content-security-policy"].startswith("sandbox")  # no scripts run
    qr = httpx.get(f"{mailbox.url}/messages/{listed['id']}/attachments/1", timeout=5)
    assert qr.headers["content-type"] == "image/png" and qr.content == PNG
    assert httpx.get(f"{mailbox.url}/messages/{listed['id']}/attachments/2").status_code == 404


def test_the_telegram_stand_in_answers_the_bot_api_and_the_page_shows_it(
    mailbox: Mailbox,
) -> None:
    me = _bot(mailbox, "getMe").json()
    assert me["ok"] is True and me["result"]["is_bot"] is True
    sent = _bot(mailbox, "sendMessage", json={"chat_id": 4242, "text": "Seats are <free>"})
    assert sent.status_code == 200
    result = sent.json()["result"]
    assert (
        result["chat"] == {"id": 4242, "type": "private"} and result["text"] == "Seats are <free>"
    )
    photo = _bot(
        mailbox, "sendPhoto", data={"chat_id": "4242", "caption": "Your ticket"},
        files={"photo": ("ticket.png", PNG, "image/png")},
    )  # fmt: skip
    assert photo.status_code == 200 and photo.json()["result"]["caption"] == "Your ticket"
    # The Bot API's documented errors, with the same HTTP status.
    wrong = _bot(mailbox, "sendMessage", token="1:other", json={"chat_id": 1, "text": "x"})
    assert (wrong.status_code, wrong.json()) == (
        401, {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )  # fmt: skip
    empty = _bot(mailbox, "sendMessage", json={"chat_id": 1, "text": ""})
    assert empty.status_code == 400 and empty.json()["description"].startswith("Bad Request")
    too_long = _bot(mailbox, "sendMessage", data={"chat_id": 1, "text": "x" * 4097})
    assert too_long.json()["description"] == "Bad Request: message is too long"
    assert _bot(mailbox, "noSuchMethod").status_code == 404

    newest, older = httpx.get(f"{mailbox.url}/api/messages", timeout=5).json()
    assert (newest["method"], older["method"]) == ("sendPhoto", "sendMessage")  # newest first
    assert (
        newest["recipients"] == ["4242"] and newest["attachments"][0]["content_type"] == "image/png"
    )
    page = httpx.get(f"{mailbox.url}/?id={older['id']}", timeout=5).text
    assert "Seats are &lt;free&gt;" in page and "chat 4242" in page and "telegram" in page
    shown = httpx.get(f"{mailbox.url}/?id={newest['id']}", timeout=5).text
    assert f"/messages/{newest['id']}/attachments/1" in shown


def test_the_platform_s_channels_deliver_into_the_mailbox(mailbox: Mailbox) -> None:
    """domain.notification.channels, configured as `aqstream run` configures its children."""
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=mailbox.smtp_port, telegram_api_base=mailbox.url,
        telegram_bot_token=SecretStr(TOKEN),
    )  # fmt: skip
    ticket = Outgoing("ann@example.org", "Your ticket", "Show this code", "<p>Show it</p>", PNG)

    async def send() -> tuple[str, str, str]:
        async with Channels(settings).open() as senders:
            mailed = await senders[Channel.EMAIL].send(ticket)
            photo = await senders[Channel.TELEGRAM].send(
                Outgoing("777", "Your ticket", "Show this code", "", PNG)
            )
            text = await senders[Channel.TELEGRAM].send(Outgoing("777", "Hi", "Welcome!", ""))
            return mailed, photo, text

    mailed, photo, text = asyncio.run(send())
    assert mailed.startswith("<") and photo.isdigit() and text.isdigit()
    text_msg, photo_msg, email_msg = httpx.get(f"{mailbox.url}/api/messages", timeout=5).json()
    assert email_msg["subject"] == "Your ticket" and email_msg["html"] is True
    assert email_msg["attachments"] == [
        {"filename": "ticket.png", "content_type": "image/png", "size": len(PNG)}
    ]
    assert photo_msg["text"] == "Show this code" and photo_msg["recipients"] == ["777"]
    assert text_msg["text"] == "Welcome!"

    async def unknown_chat() -> None:
        async with Channels(settings).open() as senders:
            await senders[Channel.TELEGRAM].send(Outgoing("@nobody", "x", "x", ""))

    with pytest.raises(ChannelError) as refused:  # a permanent failure, as Telegram's 400
        asyncio.run(unknown_chat())
    assert not refused.value.transient


def test_the_mailbox_keeps_the_newest_messages_only(mailbox: Mailbox) -> None:
    for n in range(5):
        assert _bot(mailbox, "sendMessage", json={"chat_id": 1, "text": f"m{n}"}).status_code == 200
    kept = httpx.get(f"{mailbox.url}/api/messages", timeout=5).json()
    assert [m["text"] for m in kept] == ["m4", "m3", "m2"]  # keep=3
    assert httpx.get(f"{mailbox.url}/api/latest", timeout=5).json() == {"id": kept[0]["id"]}


def test_the_telegram_stand_in_delivers_a_user_s_message_to_the_webhook_as_telegram_does(
    mailbox: Mailbox,
) -> None:
    """setWebhook with a secret, then a user writes: the webhook gets an Update with the secret
    header, and the sendMessage in its answer is made."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.live import served

    received: list[tuple[dict, str | None]] = []

    async def hook(request: Request) -> JSONResponse:
        update = await request.json()
        received.append((update, request.headers.get("x-telegram-bot-api-secret-token")))
        if update["message"]["text"] == "/ignored":
            return JSONResponse({})
        chat = update["message"]["chat"]["id"]
        return JSONResponse({"method": "sendMessage", "chat_id": chat, "text": "pong"})

    no_hook = httpx.post(f"{mailbox.url}/stand-in/users/55/messages", json={"text": "hi"})
    assert no_hook.status_code == 409
    with served(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        bad = _bot(mailbox, "setWebhook", json={"url": f"{base}/hook", "secret_token": "no way!"})
        assert bad.status_code == 400
        assert _bot(mailbox, "setWebhook",
                    json={"url": f"{base}/hook", "secret_token": "s3cret_-X"}).json()["ok"]  # fmt: skip
        info = _bot(mailbox, "getWebhookInfo").json()["result"]
        assert info["url"] == f"{base}/hook"
        answer = httpx.post(
            f"{mailbox.url}/stand-in/users/55/messages",
            json={"text": "/start abc", "username": "ann"},
            timeout=10,
        ).json()
        silent = httpx.post(
            f"{mailbox.url}/stand-in/users/55/messages", json={"text": "/ignored"}, timeout=10
        ).json()
    (first, secret), (second, _) = received
    assert secret == "s3cret_-X"
    assert first["update_id"] + 1 == second["update_id"]
    message = first["message"]
    assert message["from"] == {
        "id": 55, "is_bot": False, "first_name": "ann", "username": "ann", "language_code": "en",
    }  # fmt: skip
    assert message["chat"]["id"] == 55 and message["chat"]["type"] == "private"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert answer["status"] == 200 and answer["reply"]["text"] == "pong"
    assert answer["reply"]["chat"]["id"] == 55
    assert silent["status"] == 200 and silent["reply"] is None
    # The page shows the user's message and the bot's reply (keep=3: the last three).
    kept = httpx.get(f"{mailbox.url}/api/messages", timeout=5).json()
    assert [(m["method"], m["text"]) for m in kept] == [
        ("update", "/ignored"), ("sendMessage", "pong"), ("update", "/start abc"),
    ]  # fmt: skip
    assert _bot(mailbox, "deleteWebhook").json()["ok"]
    gone = httpx.post(f"{mailbox.url}/stand-in/users/55/messages", json={"text": "x"})
    assert gone.status_code == 409
