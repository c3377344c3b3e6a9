"""The notification API: preferences, the template catalog, and organizers' messages (who may
send, to whom, how often; refusals write nothing)."""

from __future__ import annotations

import uuid

import pytest

from domain.notification import catalog
from tests.factories import V1, Organizer, assert_error, cancelled_registration
from tests.notification.conftest import link_telegram, log_rows
from tests.notification.test_handler import send

PREFS = f"{V1}/notifications/preferences"
SEND = f"{V1}/notifications/send"


def test_default_preferences_follow_the_account(client, api, owner_engine) -> None:
    user = api.register("defaults")
    response = client.get(PREFS, headers=user["headers"])
    assert response.status_code == 200, response.text
    assert response.json() == {"channel": None, "effective_channel": "email", "quiet_hours": None}
    link_telegram(owner_engine, user)
    assert client.get(PREFS, headers=user["headers"]).json()["effective_channel"] == "telegram"


def test_preferences_are_replaced_and_read_back(client, api, owner_engine) -> None:
    user = api.register("prefs")
    body = {
        "channel": "email",
        "quiet_hours": {"start": "22:30", "end": "07:00", "timezone": "Europe/Moscow"},
    }
    response = client.put(PREFS, json=body, headers=user["headers"])
    assert response.status_code == 200, response.text
    expected = {**body, "effective_channel": "email"}
    assert response.json() == expected
    assert client.get(PREFS, headers=user["headers"]).json() == expected
    cleared = client.put(PREFS, json={"channel": "none"}, headers=user["headers"])
    assert cleared.json() == {"channel": "none", "effective_channel": "none", "quiet_hours": None}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"channel": "pigeon"}, "validation_error"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00", "timezone": "UTC"}}, "validation_error"),
        ({"quiet_hours": {"start": "7:00", "end": "08:00", "timezone": "UTC"}}, "validation_error"),
        ({"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}}, "invalid_timezone"),
        ({"quiet_hours": {"start": "22:00", "end": "07:00"}}, "validation_error"),
        ({"channel": "email", "surprise": 1}, "validation_error"),
    ],
)  # fmt: skip
def test_bad_preferences_are_refused_and_change_nothing(client, api, body, code) -> None:
    user = api.register("bad-prefs")
    before = client.put(PREFS, json={"channel": "email"}, headers=user["headers"]).json()
    response = client.put(PREFS, json=body, headers=user["headers"])
    assert_error(response, 422, code)
    assert client.get(PREFS, headers=user["headers"]).json() == before


def test_quiet_hours_that_end_when_they_start_are_an_empty_window(client, api) -> None:
    user = api.register("empty-window")
    body = {
        "channel": "email",
        "quiet_hours": {"start": "22:00", "end": "22:00", "timezone": "UTC"},
    }
    response = client.put(PREFS, json=body, headers=user["headers"])
    assert response.status_code == 200, response.text
    assert response.json()["quiet_hours"] is None
    assert client.get(PREFS, headers=user["headers"]).json()["quiet_hours"] is None


def test_a_channel_the_account_lacks_is_a_conflict_and_changes_nothing(client, api) -> None:
    user = api.register("no-telegram")
    before = client.put(PREFS, json={"channel": "email"}, headers=user["headers"]).json()
    response = client.put(PREFS, json={"channel": "telegram"}, headers=user["headers"])
    assert_error(response, 409, "channel_unavailable")
    assert response.json()["error"]["details"] == {"channel": "telegram"}
    assert client.get(PREFS, headers=user["headers"]).json() == before


def test_preferences_need_a_signed_in_user(client) -> None:
    assert_error(client.get(PREFS), 401, "unauthorized")
    assert_error(client.put(PREFS, json={"channel": "none"}), 401, "unauthorized")


def test_the_template_catalog(client, api) -> None:
    user = api.register("catalog")
    response = client.get(f"{V1}/notifications/templates", headers=user["headers"])
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None  # a fixed catalog, answered whole
    templates = {t["template"]: t for t in response.json()["items"]}
    assert set(templates) == set(catalog.TEMPLATES)  # every one (others' included)
    assert {
        "welcome",
        "ticket",
        "ticket_resent",
        "receipt",
        "payment_failed",
        "refund_completed",
        "registration_unpaid",
        "reservation_expired",
        "waitlist_offered",
        "group_event_published",
        "event_changed",
        "event_cancelled",
        "event_reminder",
        "organizer_message",
        "organization_invite",
    } <= set(templates)
    assert templates["event_changed"]["event_types"] == ["event.updated"]
    assert templates["organization_invite"]["languages"] == ["en", "ru"]
    ticket = templates["ticket"]
    assert ticket["event_types"] == ["registration.created", "registration.confirmed"]
    assert ticket["languages"] == ["en", "ru"]
    assert {"event_title", "starts_at", "registration_id"} <= set(ticket["variables"])
    assert_error(client.get(f"{V1}/notifications/templates"), 401, "unauthorized")


def _event_with_participants(client, api, admin) -> tuple[Organizer, dict, list[dict], dict]:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(title="Meetup")
    people = [org.participant(event["id"], ticket_type["id"], name=f"p{n}") for n in range(3)]
    gone_user, gone_registration = people.pop()
    cancelled_registration(client, gone_registration["id"], gone_user)
    return org, event, [user for user, _ in people], gone_user


def test_an_organizer_messages_the_participants_of_an_event(
    client, api, admin, owner_engine, sessions, channels, smtp, telegram
) -> None:
    org, event, people, gone = _event_with_participants(client, api, admin)
    chat_id = link_telegram(owner_engine, people[0], locale="ru")
    body = {"event_id": event["id"], "subject": "Room change", "text": "We moved to <Hall B> & up"}
    response = client.post(SEND, json=body, headers=org.owner["headers"])
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["count"], answer["deferred"]) == (2, 0)

    rows = log_rows(owner_engine, source_event_id=answer["message_id"])
    assert sorted(str(r["user_id"]) for r in rows) == sorted(p["user"]["id"] for p in people)
    assert {r["tenant_id"] for r in rows} == {uuid.UUID(org.org["id"])}
    assert {r["template"] for r in rows} == {"organizer_message"}
    from domain.notification.delivery import Pending

    pending = [Pending(r["id"], r["tenant_id"], r["user_id"]) for r in rows]
    assert send(sessions, channels, pending).sent == 2

    [mail] = smtp.to(people[1]["email"])
    assert mail["Subject"] == "Room change"
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html").get_content()
    assert "We moved to &lt;Hall B&gt; &amp; up" in html
    [message] = telegram.to(chat_id)
    assert "We moved to <Hall B> & up" in message["text"]
    assert "о событии «Meetup»" in message["text"]
    assert smtp.to(gone["email"]) == []


def test_a_status_filter_chooses_the_recipients(client, api, admin, owner_engine) -> None:
    org, event, _people, gone = _event_with_participants(client, api, admin)
    moderator = org.member("moderator")
    body = {"event_id": event["id"], "subject": "Sorry", "text": "x", "statuses": ["cancelled"]}
    response = client.post(SEND, json=body, headers=moderator["headers"])
    assert response.status_code == 202, response.text
    [row] = log_rows(owner_engine, source_event_id=response.json()["message_id"])
    assert str(row["user_id"]) == gone["user"]["id"]


def test_only_owners_and_moderators_of_the_events_organization_may_send(
    client, api, admin, owner_engine
) -> None:
    org, event, people, _ = _event_with_participants(client, api, admin)
    other = org.another()
    body = {"event_id": event["id"], "subject": "Hi", "text": "x"}
    assert_error(client.post(SEND, json=body, headers=org.member("analyst")["headers"]), 403,
                 "insufficient_role")  # fmt: skip
    for outsider in (people[0], other.owner):
        assert_error(client.post(SEND, json=body, headers=outsider["headers"]), 404, "not_found")
    random = {**body, "event_id": str(uuid.uuid4())}
    assert_error(client.post(SEND, json=random, headers=org.owner["headers"]), 404, "not_found")
    assert_error(client.post(SEND, json=body), 401, "unauthorized")
    assert log_rows(owner_engine, event_id=event["id"]) == []


@pytest.mark.parametrize(
    "change",
    [
        {"subject": ""},
        {"subject": "s" * 201},
        {"text": ""},
        {"text": "t" * 3501},
        {"statuses": []},
        {"statuses": ["maybe"]},
        {"event_id": "not-a-uuid"},
        {"text": "nul\x00"},
        {"cc": "everyone"},
    ],
)
def test_bad_messages_are_refused_and_nothing_is_queued(
    client, api, admin, owner_engine, change
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event()
    org.participant(event["id"], ticket_type["id"])
    body = {"event_id": event["id"], "subject": "Hi", "text": "x", **change}
    response = client.post(SEND, json=body, headers=org.owner["headers"])
    assert response.status_code == 422, response.text
    assert log_rows(owner_engine, event_id=event["id"]) == []


def test_sending_is_rate_limited_per_organizer(client, api, admin, owner_engine, settings) -> None:
    from limits import parse

    limit = parse(settings.notification_send_rate).amount
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event()
    org.participant(event["id"], ticket_type["id"])
    body = {"event_id": event["id"], "subject": "Hi", "text": "x"}
    for _ in range(limit):
        assert client.post(SEND, json=body, headers=org.owner["headers"]).status_code == 202
    refused = client.post(SEND, json=body, headers=org.owner["headers"])
    error = assert_error(refused, 429, "rate_limited")
    assert error["details"]["scope"] == "notifications"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 3600 and error["details"]["retry_after_s"] == retry_after
    assert len(log_rows(owner_engine, event_id=event["id"])) == limit  # the refused one: none
    # Per organizer: a moderator of the same organization still may.
    moderator = org.member("moderator")
    assert client.post(SEND, json=body, headers=moderator["headers"]).status_code == 202
