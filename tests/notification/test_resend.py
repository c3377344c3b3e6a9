"""A ticket an organizer resends (POST /registrations/{id}/resend-ticket): the outbox's
``registration.ticket_resent`` goes through the notifications agent's own entry point (as the
stream worker calls it for a consumed record) and is delivered again with the same QR code, once
per request, even though the first ticket was already sent; none for a registration cancelled
since the request."""

from __future__ import annotations

import asyncio
import json

from core.settings import Settings
from streams.notification import NOTIFICATION_EVENT_TYPES, notification_handler
from streams.processor import Deps
from streams.records import Record
from streams.worker import AGENTS
from tests.factories import V1, Organizer, cancel_registration
from tests.notification.conftest import log_rows, outbox_events
from tests.notification.test_handler import _parts, consume, expected_qr, send


def agent_sees(deps: Deps, row: dict) -> None:
    """What the worker does with the consumed record of an outbox row."""
    record = Record(
        topic="aqstream.registration.v1",
        partition=0,
        offset=0,
        key=None,
        value=json.dumps(row["payload"]).encode(),
        headers={"event_id": str(row["id"]), "event_type": row["event_type"]},
    )
    asyncio.run(notification_handler(deps, record))


def resend(client, registration_id: str, organizer: dict) -> None:
    response = client.post(
        f"{V1}/registrations/{registration_id}/resend-ticket", headers=organizer["headers"]
    )
    assert response.status_code == 202, response.text


def test_a_resent_ticket_is_delivered_again_with_its_qr_code(
    client, api, admin, owner_engine, sessions, channels, smtp, notify_settings: Settings
) -> None:
    deps = Deps(settings=notify_settings, sessions=sessions, providers=None, channels=channels)
    assert "registration.ticket_resent" in NOTIFICATION_EVENT_TYPES
    handler, types = AGENTS["notifications"]
    assert handler is notification_handler and types == NOTIFICATION_EVENT_TYPES
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(title="Resent Gala")
    user, registration = org.participant(event["id"], ticket_type["id"])
    created, _ = outbox_events(owner_engine, registration["id"])
    assert send(sessions, channels, consume(sessions, created)).sent == 1  # the first ticket

    resend(client, registration["id"], org.owner)
    resend(client, registration["id"], org.member("moderator"))
    requests = outbox_events(owner_engine, registration["id"], "registration.ticket_resent")
    assert len(requests) == 2
    for row in requests:
        agent_sees(deps, row)
    agent_sees(deps, requests[0])  # a redelivered record sends nothing more

    first, *again = smtp.to(user["email"])
    assert first["Subject"] == "Your ticket: Resent Gala"
    assert [m["Subject"] for m in again] == ["Your ticket again: Resent Gala"] * 2
    parts = _parts(again[0])
    assert "here is your ticket for Resent Gala once more: 1 ×" in parts["text"]
    assert parts["ticket.png"] == (
        "image/png",
        expected_qr(owner_engine, notify_settings, registration["id"]),
    )
    logged = log_rows(owner_engine, registration_id=registration["id"], template="ticket_resent")
    assert [(r["status"], r["source_event_id"]) for r in logged] == [
        ("sent", requests[0]["id"]),
        ("sent", requests[1]["id"]),
    ]

    # Cancelled after the request, before the worker got to it: no ticket.
    resend(client, registration["id"], org.owner)
    late = outbox_events(owner_engine, registration["id"], "registration.ticket_resent")[-1]
    assert cancel_registration(client, registration["id"], user).status_code == 200
    agent_sees(deps, late)
    assert len(smtp.to(user["email"])) == 3
    assert len(log_rows(owner_engine, registration_id=registration["id"])) == 3
