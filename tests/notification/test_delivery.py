"""Delivery: retries with backoff and their count, failures with the error, quiet hours that
defer (never drop) a message, the dispatcher's pass over every due message, preferences."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from domain.notification.delivery import deliver, deliver_due, deliver_due_blocking
from domain.notification.models import NotificationStatus
from tests.factories import Organizer
from tests.notification.conftest import link_telegram, log_rows, outbox_events
from tests.notification.test_handler import consume, send


def _welcome(
    api, owner_engine: Engine, sessions, *, telegram: bool = True
) -> tuple[dict, int | None, list]:
    """A new user (linked to Telegram unless told otherwise) and their queued welcome."""
    user = api.register("Ada")
    chat_id = link_telegram(owner_engine, user) if telegram else None
    [row] = outbox_events(owner_engine, user["user"]["id"], "user.registered")
    return user, chat_id, consume(sessions, row)


def _quiet(client, user: dict, start: datetime, end: datetime, tz: str = "UTC") -> None:
    """Quiet hours from ``start`` to ``end`` (aware), written as wall-clock times of ``tz``."""
    start, end = start.astimezone(ZoneInfo(tz)), end.astimezone(ZoneInfo(tz))
    response = client.put(
        "/api/v1/notifications/preferences",
        json={"quiet_hours": {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}", "timezone": tz}},
        headers=user["headers"],
    )
    assert response.status_code == 200, response.text


def test_transient_errors_are_retried_with_backoff_and_counted(
    api, owner_engine, sessions, channels, telegram
) -> None:
    _user, chat_id, queued = _welcome(api, owner_engine, sessions)
    telegram.fail_next = 2  # two 500s, then Telegram answers
    assert send(sessions, channels, queued).sent == 1
    [logged] = log_rows(owner_engine, id=queued[0].id)
    assert (logged["status"], logged["attempts"], logged["last_error"]) == ("sent", 3, None)
    assert len(telegram.to(chat_id)) == 1


def test_after_the_last_attempt_the_message_is_failed_with_its_error(
    api, owner_engine, sessions, channels, telegram, notify_settings
) -> None:
    _user, chat_id, queued = _welcome(api, owner_engine, sessions)
    telegram.fail_next = 100
    telegram.failure = (429, {"ok": False, "error_code": 429,
                              "description": "Too Many Requests: retry after 0",
                              "parameters": {"retry_after": 0}})  # fmt: skip
    try:
        result = send(sessions, channels, queued)
    finally:
        telegram.failure = (500, {"ok": False, "error_code": 500, "description": "Internal"})
    assert (result.sent, result.failed) == (0, 1)
    [logged] = log_rows(owner_engine, id=queued[0].id)
    assert logged["status"] == "failed"
    assert logged["attempts"] == notify_settings.notification_attempts == 3
    assert logged["last_error"] == "telegram 429: Too Many Requests: retry after 0"
    assert telegram.to(chat_id) == []
    # A failed message is not picked up again by the dispatcher.
    telegram.fail_next = 0
    assert send(sessions, channels, queued).sent == 0


def test_a_permanent_error_is_not_retried(api, owner_engine, sessions, channels, telegram) -> None:
    _user, chat_id, queued = _welcome(api, owner_engine, sessions)
    telegram.blocked_chats.add(str(chat_id))
    assert send(sessions, channels, queued).failed == 1
    [logged] = log_rows(owner_engine, id=queued[0].id)
    assert (logged["status"], logged["attempts"]) == ("failed", 1)
    assert logged["last_error"] == "telegram 403: Forbidden: bot was blocked by the user"


def test_a_refused_mail_recipient_fails_at_once(
    api, owner_engine, sessions, channels, smtp
) -> None:
    user, _, queued = _welcome(api, owner_engine, sessions, telegram=False)
    smtp.refused.add(user["email"])
    assert send(sessions, channels, queued).failed == 1
    [logged] = log_rows(owner_engine, id=queued[0].id)
    assert (logged["status"], logged["attempts"], logged["channel"]) == ("failed", 1, "email")
    assert "550" in logged["last_error"]
    assert smtp.to(user["email"]) == []


def test_a_wrong_bot_token_fails_without_leaking_it(
    api, owner_engine, sessions, channels, telegram, notify_settings
) -> None:
    from pydantic import SecretStr

    from domain.notification.channels import Channels

    _user, chat_id, queued = _welcome(api, owner_engine, sessions)
    wrong = Channels(
        notify_settings.model_copy(update={"telegram_bot_token": SecretStr("1:WRONG")})
    )
    assert asyncio.run(deliver(sessions, wrong, queued)).failed == 1
    [logged] = log_rows(owner_engine, id=queued[0].id)
    assert logged["last_error"] == "telegram 401: Unauthorized"
    assert telegram.to(chat_id) == []


def test_unreachable_telegram_is_retried_then_failed(
    api, owner_engine, sessions, notify_settings
) -> None:
    from domain.notification.channels import Channels

    _user, _, queued = _welcome(api, owner_engine, sessions)
    down = Channels(notify_settings.model_copy(update={"telegram_api_base": "http://127.0.0.1:9"}))
    assert asyncio.run(deliver(sessions, down, queued)).failed == 1
    [logged] = log_rows(owner_engine, id=queued[0].id)
    assert (logged["status"], logged["attempts"]) == ("failed", 3)
    assert logged["last_error"].startswith("telegram: ConnectError")
    assert notify_settings.telegram_bot_token.get_secret_value() not in logged["last_error"]


def test_a_message_due_in_quiet_hours_is_deferred_to_their_end_not_dropped(
    client, api, owner_engine, sessions, channels, telegram
) -> None:
    user = api.register("night-owl")
    chat_id = link_telegram(owner_engine, user)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _quiet(client, user, now - timedelta(hours=1), now + timedelta(hours=2))
    [row] = outbox_events(owner_engine, user["user"]["id"], "user.registered")
    [queued] = consume(sessions, row)
    end = now + timedelta(hours=2)
    assert queued.status == NotificationStatus.DEFERRED and queued.due_at == end

    before = asyncio.run(deliver_due(sessions, channels))
    assert telegram.to(chat_id) == [] and before.sent >= 0
    [logged] = log_rows(owner_engine, id=queued.id)
    assert (logged["status"], logged["attempts"]) == ("deferred", 0)

    at_end = asyncio.run(deliver(sessions, channels, [queued], now=end))
    assert at_end.sent == 1
    assert len(telegram.to(chat_id)) == 1
    [logged] = log_rows(owner_engine, id=queued.id)
    assert logged["status"] == "sent"


def test_a_queued_message_meeting_new_quiet_hours_waits_for_their_end(
    client, api, owner_engine, sessions, channels, telegram
) -> None:
    user, chat_id, [queued] = _welcome(api, owner_engine, sessions)
    assert queued.status == NotificationStatus.QUEUED
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _quiet(client, user, now - timedelta(minutes=30), now + timedelta(hours=1), "Europe/Moscow")
    result = send(sessions, channels, [queued])
    assert (result.sent, result.deferred) == (0, 1)
    [logged] = log_rows(owner_engine, id=queued.id)
    assert logged["status"] == "deferred" and logged["due_at"] == now + timedelta(hours=1)
    assert telegram.to(chat_id) == []


def test_the_dispatcher_sends_every_due_message_once(
    client, api, admin, owner_engine, sessions, channels, telegram, smtp
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event()
    people = []
    for n in range(3):
        user, registration = org.participant(event["id"], ticket_type["id"], name=f"p{n}")
        if n == 0:
            link_telegram(owner_engine, user)
        [created, _] = outbox_events(owner_engine, registration["id"])
        consume(sessions, created)
        people.append(user)
    first = deliver_due_blocking(sessions, channels)
    assert first.sent >= 3  # (and whatever else earlier tests left due)
    second = deliver_due_blocking(sessions, channels)
    assert second.sent == 0
    rows = log_rows(owner_engine, event_id=event["id"])
    assert sorted(r["status"] for r in rows) == ["sent"] * 3
    arrived = sum(len(smtp.to(p["email"])) for p in people) + len(telegram.received)
    assert arrived >= 3


@pytest.mark.parametrize("choice", ["none", "email"])
def test_preferences_choose_the_channel(
    client, api, owner_engine, sessions, channels, telegram, smtp, choice: str
) -> None:
    user = api.register("chooser")
    chat_id = link_telegram(owner_engine, user)
    response = client.put(
        "/api/v1/notifications/preferences", json={"channel": choice}, headers=user["headers"]
    )
    assert response.status_code == 200, response.text
    [row] = outbox_events(owner_engine, user["user"]["id"], "user.registered")
    queued = consume(sessions, row)
    send(sessions, channels, queued)
    assert telegram.to(chat_id) == []
    if choice == "none":
        assert queued == [] and log_rows(owner_engine, user_id=user["user"]["id"]) == []
        assert smtp.to(user["email"]) == []
    else:
        assert [m["Subject"] for m in smtp.to(user["email"])] == ["Welcome to AqStream, chooser"]


def test_a_ticket_whose_registration_was_cancelled_before_sending_is_not_sent(
    client, api, admin, owner_engine, sessions, channels, smtp
) -> None:
    from tests.factories import cancelled_registration

    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event()
    user, registration = org.participant(event["id"], ticket_type["id"])
    [created, _] = outbox_events(owner_engine, registration["id"])
    queued = consume(sessions, created)
    cancelled_registration(client, registration["id"], user)
    assert send(sessions, channels, queued).failed == 1
    [logged] = log_rows(owner_engine, id=queued[0].id)
    assert logged["status"] == "failed" and "cancelled" in logged["last_error"]
    assert smtp.to(user["email"]) == []


def test_two_dispatchers_racing_send_once(api, owner_engine, sessions, channels, telegram) -> None:
    _user, chat_id, queued = _welcome(api, owner_engine, sessions)

    async def both():
        return await asyncio.gather(
            deliver(sessions, channels, queued), deliver(sessions, channels, queued)
        )

    results = asyncio.run(both())
    assert sum(r.sent for r in results) == 1
    assert len(telegram.to(chat_id)) == 1


def test_null_tenant_rows_stay_invisible_to_the_dispatchers_discovery_context(
    app_engine, api, owner_engine, sessions
) -> None:
    """due_notifications() hands out ids only; the rows themselves still need their context."""
    _user, _, [queued] = _welcome(api, owner_engine, sessions)
    with app_engine.connect() as conn:
        ids = (
            conn.execute(
                text("SELECT id FROM due_notifications(now() + interval '1 minute', 100000)")
            )
            .scalars()
            .all()
        )
        assert queued.id in ids
        assert (
            conn.execute(
                text("SELECT count(*) FROM notifications WHERE id = :id"), {"id": queued.id}
            ).scalar()
            == 0
        )
