"""Organizers' messages: the audience (ticket type, checked in or not), the preview in the
recipients' languages, and the delivery log (messages with counts per state, each delivery)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from domain.notification.delivery import Pending
from tests.factories import V1, Organizer, assert_error
from tests.notification.conftest import link_telegram, log_rows, set_locale
from tests.notification.test_handler import send

SEND = f"{V1}/notifications/send"
PREVIEW = f"{V1}/notifications/preview"
MESSAGES = f"{V1}/notifications/messages"


@pytest.fixture
def meetup(client, api, admin, owner_engine):
    """An event with two ticket types: a Russian reader and an English one on "Standard" (the
    Russian one checked in), and one more English reader on "VIP"."""
    org = Organizer(client, api, admin)
    event, standard = org.published_event(title="Meetup")
    vip = org.ticket_type(event["id"], name="VIP", capacity=10)
    ru, ru_reg = org.participant(event["id"], standard["id"], name="Ivan")
    en, _ = org.participant(event["id"], standard["id"], name="Jane")
    vip_user, _ = org.participant(event["id"], vip["id"], name="Vic")
    set_locale(owner_engine, ru, "ru")
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE registrations SET checked_in_at = now() WHERE id = :id"),
            {"id": ru_reg["id"]},
        )
    return {"org": org, "event": event, "standard": standard, "vip": vip,
            "ru": ru, "en": en, "vip_user": vip_user}  # fmt: skip


def _body(meetup, **extra) -> dict:
    return {"event_id": meetup["event"]["id"], "subject": "Doors", "text": "Open at 6", **extra}


def _recipients(owner_engine, message_id: str) -> set[str]:
    return {str(r["user_id"]) for r in log_rows(owner_engine, source_event_id=message_id)}


@pytest.mark.parametrize(
    ("audience", "who"),
    [
        ({}, {"ru", "en", "vip_user"}),
        ({"ticket_type": "standard"}, {"ru", "en"}),
        ({"ticket_type": "vip"}, {"vip_user"}),
        ({"checked_in": True}, {"ru"}),
        ({"checked_in": False}, {"en", "vip_user"}),
        ({"ticket_type": "standard", "checked_in": False}, {"en"}),
    ],
)
def test_the_audience_chooses_the_recipients(client, meetup, owner_engine, audience, who) -> None:
    extra = {}
    if "ticket_type" in audience:
        extra["ticket_type_id"] = meetup[audience["ticket_type"]]["id"]
    if "checked_in" in audience:
        extra["checked_in"] = audience["checked_in"]
    headers = meetup["org"].owner["headers"]
    preview = client.post(PREVIEW, json=_body(meetup, **extra), headers=headers)
    assert preview.status_code == 200, preview.text
    assert preview.json()["recipients"] == len(who)
    sent = client.post(SEND, json=_body(meetup, **extra), headers=headers)
    assert sent.status_code == 202, sent.text
    assert sent.json()["count"] == len(who)
    expected = {meetup[name]["user"]["id"] for name in who}
    assert _recipients(owner_engine, sent.json()["message_id"]) == expected


def test_the_preview_renders_each_language_and_queues_nothing(client, meetup, owner_engine):
    body = _body(meetup, ticket_type_id=meetup["standard"]["id"])
    response = client.post(PREVIEW, json=body, headers=meetup["org"].owner["headers"])
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["recipients"], answer["deferred"]) == (2, 0)
    [en, ru] = answer["languages"]
    assert (en["language"], en["recipients"], en["subject"]) == ("en", 1, "Doors")
    assert (ru["language"], ru["recipients"], ru["subject"]) == ("ru", 1, "Doors")
    assert "Open at 6" in en["text"] and "about Meetup" in en["text"]
    assert "Open at 6" in ru["text"] and "о событии «Meetup»" in ru["text"]
    assert (
        log_rows(owner_engine, event_id=meetup["event"]["id"], template="organizer_message") == []
    )


def test_a_ticket_type_of_another_event_is_refused(client, meetup, owner_engine) -> None:
    _other_event, other_type = meetup["org"].published_event()
    headers = meetup["org"].owner["headers"]
    for path in (PREVIEW, SEND):
        for ticket_type_id in (other_type["id"], str(uuid.uuid4())):
            body = _body(meetup, ticket_type_id=ticket_type_id)
            error = assert_error(client.post(path, json=body, headers=headers), 422,
                                 "unknown_ticket_type")  # fmt: skip
            assert error["details"] == {"loc": ["body", "ticket_type_id"]}
        bad = client.post(path, json=_body(meetup, checked_in="maybe"), headers=headers)
        assert bad.status_code == 422, bad.text
    assert (
        log_rows(owner_engine, event_id=meetup["event"]["id"], template="organizer_message") == []
    )


def test_the_delivery_log(client, meetup, owner_engine, sessions, channels, smtp, telegram):
    org = meetup["org"]
    chat_id = link_telegram(owner_engine, meetup["ru"])
    first = client.post(SEND, json=_body(meetup), headers=org.owner["headers"]).json()
    body = _body(meetup, subject="VIP lounge", ticket_type_id=meetup["vip"]["id"])
    second = client.post(SEND, json=body, headers=org.owner["headers"]).json()
    rows = log_rows(owner_engine, source_event_id=first["message_id"])
    pending = [Pending(r["id"], r["tenant_id"], r["user_id"]) for r in rows]
    smtp.refused.add(meetup["en"]["email"])
    assert send(sessions, channels, pending).sent == 2

    analyst = org.member("analyst")
    response = client.get(MESSAGES, params={"event_id": meetup["event"]["id"]},
                          headers=analyst["headers"])  # fmt: skip
    assert response.status_code == 200, response.text
    newest, oldest = response.json()["items"]
    assert (newest["message_id"], newest["subject"], newest["recipients"]) == (
        second["message_id"], "VIP lounge", 1,
    )  # fmt: skip
    assert newest["states"] == {"queued": 1, "deferred": 0, "sent": 0, "failed": 0}
    assert oldest["message_id"] == first["message_id"] and oldest["recipients"] == 3
    assert oldest["states"]["sent"] == 2
    assert oldest["states"]["sent"] + oldest["states"]["failed"] + oldest["states"]["queued"] == 3
    page = client.get(MESSAGES, params={"event_id": meetup["event"]["id"], "limit": 1},
                      headers=org.owner["headers"]).json()  # fmt: skip
    assert [m["message_id"] for m in page["items"]] == [second["message_id"]]
    rest = client.get(MESSAGES, params={"event_id": meetup["event"]["id"], "limit": 1,
                                        "cursor": page["next_cursor"]},
                      headers=org.owner["headers"]).json()  # fmt: skip
    assert [m["message_id"] for m in rest["items"]] == [first["message_id"]]

    url = f"{MESSAGES}/{first['message_id']}/deliveries"
    params = {"event_id": meetup["event"]["id"]}
    deliveries = client.get(url, params=params, headers=org.owner["headers"])
    assert deliveries.status_code == 200, deliveries.text
    by_user = {d["user_id"]: d for d in deliveries.json()["items"]}
    ru = by_user[meetup["ru"]["user"]["id"]]
    assert (ru["channel"], ru["address"], ru["language"], ru["status"]) == (
        "telegram", str(chat_id), "ru", "sent",
    )  # fmt: skip
    assert ru["display_name"] == "Ivan" and ru["sent_at"] is not None
    assert by_user[meetup["en"]["user"]["id"]]["channel"] == "email"
    assert by_user[meetup["en"]["user"]["id"]]["status"] in {"queued", "failed"}
    assert [m for m in telegram.to(chat_id) if "Open at 6" in m["text"]]
    assert_error(client.get(url, params=params, headers=analyst["headers"]), 403,
                 "insufficient_role")  # fmt: skip
    # Another message id, or this one under another event: not found.
    unknown = f"{MESSAGES}/{uuid.uuid4()}/deliveries"
    assert_error(client.get(unknown, params=params, headers=org.owner["headers"]), 404, "not_found")
    other_event, _ = org.published_event()
    elsewhere = {"event_id": other_event["id"]}
    assert_error(client.get(url, params=elsewhere, headers=org.owner["headers"]), 404, "not_found")


def test_outsiders_see_no_messages(client, meetup) -> None:
    org = meetup["org"]
    client.post(SEND, json=_body(meetup), headers=org.owner["headers"])
    params = {"event_id": meetup["event"]["id"]}
    for outsider in (meetup["en"], org.another().owner):
        assert_error(client.get(MESSAGES, params=params, headers=outsider["headers"]), 404,
                     "not_found")  # fmt: skip
        assert_error(client.post(PREVIEW, json=_body(meetup), headers=outsider["headers"]), 404,
                     "not_found")  # fmt: skip
    assert_error(client.post(PREVIEW, json=_body(meetup), headers=org.member("analyst")["headers"]),
                 403, "insufficient_role")  # fmt: skip
    assert_error(client.get(MESSAGES, params=params), 401, "unauthorized")
