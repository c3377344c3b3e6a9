"""A record is handled once by the notifications agent (its inbox row commits with the messages
it queued): a private event's publication redelivered after someone joined the group sends them
nothing, and the first member nothing more."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import text

from streams.notification import notification_handler
from streams.processor import Deps
from streams.records import Record
from tests.factories import V1, Organizer
from tests.notification.conftest import outbox_events


def _agent_sees(deps: Deps, row: dict) -> None:
    record = Record(
        topic="aqstream.event.v1",
        partition=0,
        offset=0,
        key=None,
        value=json.dumps(row["payload"]).encode(),
        headers={"event_id": str(row["id"]), "event_type": row["event_type"]},
    )
    asyncio.run(notification_handler(deps, record))


def _join(client, api, group_id: str, owner: dict) -> dict:
    code = client.post(f"{V1}/groups/{group_id}/invite", headers=owner["headers"])
    assert code.status_code == 201, code.text
    user = api.register("late-member")
    joined = client.post(
        f"{V1}/group-invites/accept", json={"code": code.json()["code"]}, headers=user["headers"]
    )
    assert joined.status_code == 200, joined.text
    return user


def test_a_redelivered_publication_is_not_handled_again(
    client, api, admin, owner_engine, sessions, channels, smtp, notify_settings
) -> None:
    deps = Deps(settings=notify_settings, sessions=sessions, providers=None, channels=channels)
    org = Organizer(client, api, admin)
    group, member = org.group_with_member()
    event = org.event(visibility="private", group_id=group["id"], title="Members Only")
    org.ticket_type(event["id"], capacity=3)
    org.publish(event["id"])
    [published] = outbox_events(owner_engine, event["id"], "event.published")
    subject = f"New in {group['name']}: Members Only"

    _agent_sees(deps, published)
    assert [m["Subject"] for m in smtp.to(member["email"])].count(subject) == 1

    late = _join(client, api, group["id"], org.owner)
    _agent_sees(deps, published)  # delivered again (at least once)
    assert [m["Subject"] for m in smtp.to(member["email"])].count(subject) == 1
    assert subject not in [m["Subject"] for m in smtp.to(late["email"])]
    with owner_engine.connect() as conn:
        handled = conn.execute(
            text(
                "SELECT count(*) FROM inbox WHERE consumer = 'worker.notifications' AND event_id = :e"
            ),
            {"e": published["id"]},
        ).scalar()
    assert handled == 1
