"""Telegram for every account: an e-mail account links Telegram through a deep link to the bot,
and the bot's webhook hears `/start <token>` from Telegram (here the mailbox's Bot API stand-in,
which delivers a user's message to the webhook as Telegram does). Notifications then arrive on
Telegram through the real pipeline; unlinking sends them back to e-mail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from api.app import create_app
from aqstream.mailbox import Mailbox
from aqstream.mailbox.telegram import BOT
from aqstream.stack.servers import free_port
from tests.factories import V1, Organizer, assert_error, registered
from tests.live import served
from tests.notification.conftest import outbox_events
from tests.worker.conftest import wait_for

TOKEN = "424242:link-test-token"
SECRET = "webhook-Secret_0123456789"
WEBHOOK = f"{V1}/telegram/webhook"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox("127.0.0.1", free_port(), free_port(), telegram_token=TOKEN).start()
    yield box
    box.stop()


def _telegram_settings(settings, mailbox: Mailbox, port: int | None = None):
    return settings.model_copy(
        update={
            "telegram_api_base": mailbox.url,
            "telegram_bot_token": SecretStr(TOKEN),
            "telegram_webhook_secret": SecretStr(SECRET),
            "telegram_webhook_url": f"http://127.0.0.1:{port}{WEBHOOK}" if port else None,
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox.smtp_port,
        }
    )


@pytest.fixture
def bot_api(settings, mailbox) -> Iterator[TestClient]:
    """An API with the bot configured (its Bot API: the mailbox), in process."""
    with TestClient(create_app(_telegram_settings(settings, mailbox))) as client:
        yield client


def _tg_id() -> int:
    return int(uuid.uuid4().int % 9_000_000_000) + 1_000_000_000


def _user_row(owner_engine, user_id: str) -> dict:
    with owner_engine.connect() as conn:
        return dict(
            conn.execute(
                text("SELECT telegram_id, telegram_username FROM users WHERE id = :id"),
                {"id": user_id},
            )
            .mappings()
            .one()
        )


def _update(update_id: int, telegram_id: int, message_text: str, **sender) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "from": {"id": telegram_id, "is_bot": False, "first_name": "A", **sender},
            "chat": {"id": telegram_id, "type": "private"},
            "text": message_text,
        },
    }


def _token(link: dict) -> str:
    prefix = f"https://t.me/{BOT['username']}?start="
    assert link["url"].startswith(prefix)
    return link["url"].removeprefix(prefix)


def _link(client: TestClient, user: dict) -> dict:
    answer = client.post(f"{V1}/users/me/telegram/link", headers=user["headers"])
    assert answer.status_code == 200, answer.text
    return answer.json()


def _hook(client: TestClient, update: dict, secret: str | None = SECRET) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return client.post(WEBHOOK, json=update, headers=headers)


@pytest.mark.slow
def test_an_email_account_links_telegram_hears_there_and_unlinks(
    client, api, admin, owner_engine, settings, mailbox, worker_settings, pipeline
) -> None:
    port = free_port()
    live_settings = _telegram_settings(settings, mailbox, port)
    on_mailbox = _telegram_settings(worker_settings, mailbox, port)
    pipeline(on_mailbox, "relay-telegram-link")
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(capacity=5)
    telegram_id = _tg_id()

    with served(create_app(live_settings), port=port) as base:
        # Started with AQSTREAM_TELEGRAM_WEBHOOK_URL: the API registered its webhook.
        info = httpx.post(f"{mailbox.url}/bot{TOKEN}/getWebhookInfo").json()["result"]
        assert info["url"] == f"{base}{WEBHOOK}"
        live = httpx.Client(base_url=base, timeout=30)
        user = api.register("linker")
        link = live.post(f"{V1}/users/me/telegram/link", headers=user["headers"])
        assert link.status_code == 200, link.text
        token = _token(link.json())  # the bot's username came from getMe

        def write(message_text: str) -> dict:
            answer = httpx.post(
                f"{mailbox.url}/stand-in/users/{telegram_id}/messages",
                json={"text": message_text, "username": "ann_tg"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["status"] == 200, body
            return body["reply"]

        assert write(f"/start {token}")["text"].startswith("Linked to the AqStream account")
        me = live.get(f"{V1}/users/me", headers=user["headers"]).json()
        assert me["telegram_username"] == "ann_tg"
        assert _user_row(owner_engine, user["user"]["id"])["telegram_id"] == telegram_id
        assert "linked to the AqStream account “linker”" in write("/start")["text"]
        assert "/stop" in write("hello there")["text"]
        again = write(f"/start {token}")  # single use
        assert again["text"].startswith("This link has expired")

        # A notification after linking goes to Telegram (the default channel when linked).
        registered(client, event["id"], user, ticket_type_id=ticket_type["id"])
        ticket = wait_for(
            lambda: [
                m for m in mailbox.store.messages()
                if m.recipients == (str(telegram_id),) and m.method == "sendPhoto"
            ],
            60,
            "the ticket on Telegram",
        )  # fmt: skip
        assert event["title"] in ticket[0].text

        unlinked = live.delete(f"{V1}/users/me/telegram", headers=user["headers"])
        assert unlinked.status_code == 204, unlinked.text
        assert_error(live.delete(f"{V1}/users/me/telegram", headers=user["headers"]), 409,
                     "telegram_not_linked")  # fmt: skip
        assert (
            live.get(f"{V1}/users/me", headers=user["headers"]).json()["telegram_username"] is None
        )
        assert "not linked" in write("/stop")["text"]
        # Unlinked, the next ticket goes by e-mail again.
        later, later_type = org.published_event(capacity=5)
        registered(client, later["id"], user, ticket_type_id=later_type["id"])
        wait_for(
            lambda: [
                m for m in mailbox.store.messages()
                if m.channel == "email" and m.recipients == (user["email"],)
                and later["title"] in m.subject
            ],
            60,
            "the next ticket by e-mail",
        )  # fmt: skip
        assert not [
            m for m in mailbox.store.messages()
            if m.recipients == (str(telegram_id),) and later["title"] in m.text
        ]  # fmt: skip
    types = [e["event_type"] for e in outbox_events(owner_engine, user["user"]["id"])]
    assert types[-2:] == ["user.telegram_linked", "user.telegram_unlinked"]
    [linked] = outbox_events(owner_engine, user["user"]["id"], "user.telegram_linked")
    assert linked["payload"]["telegram_id"] == telegram_id
    assert linked["payload"]["telegram_username"] == "ann_tg"


def test_the_webhook_takes_only_telegram_s_secret_and_touches_nothing_otherwise(
    bot_api, api, owner_engine
) -> None:
    user = api.register("guarded")
    token = _token(_link(bot_api, user))
    telegram_id = _tg_id()
    update = _update(900_000_001 + telegram_id % 1000, telegram_id, f"/start {token}")
    for wrong in (None, "", "webhook-Secret_012345678", SECRET + "x"):
        assert_error(_hook(bot_api, update, wrong), 401, "invalid_webhook_secret")
    assert _user_row(owner_engine, user["user"]["id"])["telegram_id"] is None
    # Nothing was spent either: the right secret links with the same update.
    linked = _hook(bot_api, update)
    assert linked.status_code == 200 and linked.json()["method"] == "sendMessage"
    assert linked.json()["chat_id"] == telegram_id
    assert _user_row(owner_engine, user["user"]["id"])["telegram_id"] == telegram_id


def test_updates_are_handled_once_per_update_id(bot_api, api, owner_engine) -> None:
    user = api.register("retried")
    telegram_id = _tg_id()
    token = _token(_link(bot_api, user))
    update = _update(telegram_id, telegram_id, f"/start {token}")
    first = _hook(bot_api, update)
    assert first.json()["text"].startswith("Linked")
    # Telegram redelivers the same update: answered 200 with nothing, nothing done twice.
    redelivered = _hook(bot_api, update)
    assert redelivered.status_code == 200 and redelivered.json() == {}
    assert len(outbox_events(owner_engine, user["user"]["id"], "user.telegram_linked")) == 1


def test_a_telegram_account_linked_elsewhere_is_refused_and_nothing_changes(
    bot_api, api, owner_engine
) -> None:
    first, second = api.register("first"), api.register("second")
    telegram_id = _tg_id()
    n = telegram_id * 10
    _hook(bot_api, _update(n, telegram_id, f"/start {_token(_link(bot_api, first))}"))
    token = _token(_link(bot_api, second))
    refused = _hook(bot_api, _update(n + 1, telegram_id, f"/start {token}")).json()
    assert refused["text"].startswith("This Telegram account is already linked to another")
    assert _user_row(owner_engine, second["user"]["id"])["telegram_id"] is None
    assert _user_row(owner_engine, first["user"]["id"])["telegram_id"] == telegram_id
    assert outbox_events(owner_engine, second["user"]["id"], "user.telegram_linked") == []
    # Unlinked there with /stop, the same link still works for the second account.
    stopped = _hook(bot_api, _update(n + 2, telegram_id, "/stop")).json()
    assert stopped["text"].startswith("Unlinked")
    assert (
        _hook(bot_api, _update(n + 3, telegram_id, f"/start {token}"))
        .json()["text"]
        .startswith("Linked")
    )
    assert _user_row(owner_engine, second["user"]["id"])["telegram_id"] == telegram_id
    [unlinked] = outbox_events(owner_engine, first["user"]["id"], "user.telegram_unlinked")
    assert unlinked["payload"]["via"] == "bot"


def test_a_telegram_only_account_cannot_unlink(bot_api, owner_engine) -> None:
    from domain.identity.telegram import sign

    telegram_id = _tg_id()
    fields = {"id": telegram_id, "first_name": "Tg", "auth_date": 1_900_000_000}
    # The Login Widget's data, signed as Telegram signs it (auth_date checked against now).
    import time

    fields["auth_date"] = int(time.time())
    fields["hash"] = sign(fields, TOKEN)
    signed_in = bot_api.post(f"{V1}/auth/telegram", json=fields)
    assert signed_in.status_code == 200, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    assert_error(bot_api.delete(f"{V1}/users/me/telegram", headers=headers), 409,
                 "telegram_only_sign_in")  # fmt: skip
    answer = _hook(bot_api, _update(telegram_id + 7, telegram_id, "/stop")).json()
    assert "cannot be unlinked" in answer["text"]
    user_id = signed_in.json()["user"]["id"]
    assert _user_row(owner_engine, user_id)["telegram_id"] == telegram_id


def test_without_a_configured_bot_linking_and_the_webhook_are_off(client, api) -> None:
    user = api.register("nobot")
    assert_error(client.post(f"{V1}/users/me/telegram/link", headers=user["headers"]), 404,
                 "telegram_disabled")  # fmt: skip
    assert_error(_hook(client, _update(1, 1, "/start")), 404, "telegram_disabled")


def test_link_offer_expires_and_the_bot_helps(bot_api, api, settings) -> None:
    import redis

    user = api.register("expiring")
    link = _link(bot_api, user)
    token = _token(link)
    client = redis.Redis.from_url(settings.redis_url)
    import hashlib

    key = f"aq:tglink:{hashlib.sha256(token.encode()).hexdigest()}"
    assert 590 <= client.ttl(key) <= 600  # AQSTREAM_TELEGRAM_LINK_TTL_S: 10 minutes
    client.delete(key)  # as the TTL would
    telegram_id = _tg_id()
    expired = _hook(bot_api, _update(telegram_id + 1, telegram_id, f"/start {token}")).json()
    assert expired["text"].startswith("This link has expired")
    helped = _hook(bot_api, _update(telegram_id + 2, telegram_id, "/start")).json()
    assert "Link Telegram" in helped["text"]
    group = _update(telegram_id + 3, telegram_id, "/start")
    group["message"]["chat"] = {"id": -100, "type": "group"}
    assert _hook(bot_api, group).json()["text"] == "Write to me in a private chat."
    # In the sender's Telegram language where the platform speaks it.
    russian = _update(telegram_id + 4, telegram_id, "/start", language_code="ru")
    assert "Привязать Telegram" in _hook(bot_api, russian).json()["text"]
    russian = _update(telegram_id + 5, telegram_id, f"/start {token}", language_code="ru-RU")
    assert _hook(bot_api, russian).json()["text"].startswith("Ссылка устарела")
    german = _update(telegram_id + 6, telegram_id, "/stop", language_code="de")
    assert _hook(bot_api, german).json()["text"].startswith("This Telegram account is not linked")


def test_linking_again_from_another_telegram_account_moves_the_link(
    bot_api, api, owner_engine
) -> None:
    user = api.register("mover")
    old, new = _tg_id(), _tg_id()
    _hook(bot_api, _update(old * 10 + 1, old, f"/start {_token(_link(bot_api, user))}"))
    moved = _hook(bot_api, _update(new * 10 + 1, new, f"/start {_token(_link(bot_api, user))}"))
    assert moved.json()["text"].startswith("Linked")
    assert _user_row(owner_engine, user["user"]["id"])["telegram_id"] == new
    first, second = outbox_events(owner_engine, user["user"]["id"], "user.telegram_linked")
    assert first["payload"]["previous_telegram_id"] is None
    assert second["payload"]["previous_telegram_id"] == old
    # The old Telegram account is free again: /stop there finds nothing to unlink.
    stopped = _hook(bot_api, _update(old * 10 + 2, old, "/stop")).json()
    assert stopped["text"] == "This Telegram account is not linked to any AqStream account."
