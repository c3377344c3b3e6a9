"""A tracked visitor's hold and registration are credited to the visitor's visit end to end: the
`visitor_id` sent with POST /events/{id}/reservations and /registrations goes through the
outbox, the real relay, broker and worker to the warehouse's facts, and the dashboard's funnel,
conversion and by-source attribution count it (docs/tracking.md, "Registrations and their
visitor"; docs/analytics.md, "Funnel and attribution")."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.analytics.conftest import CHROME
from tests.factories import V1, Organizer, registered
from tests.worker.conftest import wait_for

TRACK = f"{V1}/analytics/track"


def visited_facts(engine: Engine, event_id: str) -> dict[str, list[str | None]]:
    """The event's hold and registration facts in the warehouse: kind -> their visitor ids."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, visitor_id FROM warehouse.facts WHERE event_id = :e"
                " AND kind IN ('reservation', 'registration') ORDER BY kind, visitor_id"
            ),
            {"e": event_id},
        ).all()
    out: dict[str, list[str | None]] = {}
    for kind, visitor in rows:
        out.setdefault(kind, []).append(visitor)
    return out


@pytest.mark.slow
def test_a_visitor_id_sent_with_a_hold_and_a_registration_is_credited_to_its_visit(
    client, api, admin, owner_engine, worker_settings, relays, analytics_workers
) -> None:
    from api.app import create_app

    org = Organizer(client, api, admin)
    event, free = org.published_event(capacity=10)
    e = event["id"]
    relays(worker_settings, "relay-attribution")
    analytics_workers(worker_settings)
    # Three visitors view the page (times are the server's: no clock here): a from telegram,
    # c from vk, b from the newsletter (b only looks).
    a, b, c = (f"v-{name}-{uuid.uuid4().hex[:8]}" for name in "abc")
    views = [(a, "telegram"), (b, "newsletter"), (c, "vk")]
    batch = [
        {"id": str(uuid.uuid4()), "type": "page_view", "event_id": e, "visitor_id": visitor,
         "session_id": f"s-{visitor}", "utm_source": source}
        for visitor, source in views
    ]  # fmt: skip
    api_settings = worker_settings.model_copy(update={"analytics_track_rate": "1000/minute"})
    with TestClient(create_app(api_settings), headers={"User-Agent": CHROME}) as tracker:
        assert tracker.post(TRACK, json={"events": batch}).status_code == 202
    wait_for(
        lambda: _scalar(owner_engine, "SELECT count(*) FROM warehouse.facts WHERE event_id = :e"
                        " AND kind = 'page_view'", e) == 3,
        60, "the page views in the warehouse",
    )  # fmt: skip

    # a holds a seat with its visitor id and registers from the hold (the hold's id carries
    # over); c registers directly with its own; someone registers through the API only.
    holder = api.register("holder")
    hold = client.post(
        f"{V1}/events/{e}/reservations",
        json={"ticket_type_id": free["id"], "visitor_id": a},
        headers=holder["headers"],
    )
    assert hold.status_code == 201, hold.text
    registered(client, e, holder, reservation_id=hold.json()["id"])
    registered(client, e, api.register("direct"), ticket_type_id=free["id"], visitor_id=c)
    registered(client, e, api.register("api-only"), ticket_type_id=free["id"])
    with owner_engine.connect() as conn:
        stored = dict(
            conn.execute(
                text(
                    "SELECT 'reservation', visitor_id FROM reservations WHERE event_id = :e"
                    " UNION ALL SELECT 'registration:' || coalesce(visitor_id, '-'), visitor_id"
                    " FROM registrations WHERE event_id = :e"
                ),
                {"e": e},
            ).all()
        )
    assert stored == {"reservation": a, f"registration:{a}": a, f"registration:{c}": c,
                      "registration:-": None}  # fmt: skip

    # through the outbox, the relay, the broker and the worker to the warehouse's facts
    want = {"registration": [*sorted([a, c]), None], "reservation": [a]}
    wait_for(lambda: visited_facts(owner_engine, e) == want, 60, "the facts with their visitor")

    response = client.get(f"{V1}/analytics/events/{e}/dashboard", headers=org.owner["headers"])
    assert response.status_code == 200, response.text
    body = response.json()
    kpis = body["kpis"]
    assert (kpis["visits"], kpis["converted_visits"], kpis["registrations_without_visit"]) == (
        3, 2, 1,
    )  # fmt: skip
    assert kpis["registrations"] == 3
    assert kpis["conversion_rate"] == round(2 / 3, 6)
    # a: view -> (no tracked selection or checkout: passed) hold -> registration; c: registration
    # without a hold; free tickets, nobody checked in: nobody reaches the payment stage
    assert [(f["stage"], f["count"]) for f in body["funnel"]] == [
        ("view", 3), ("ticket_selected", 2), ("checkout_started", 2), ("reservation", 2),
        ("registration", 2), ("payment", 0), ("checkin", 0),
    ]  # fmt: skip
    sources = {
        s["source"]: (s["visits"], s["converted_visits"], s["registrations"], s["conversion_rate"])
        for s in body["sources"]
    }
    assert sources == {
        "telegram": (1, 1, 1, 1.0),
        "vk": (1, 1, 1, 1.0),
        "newsletter": (1, 0, 0, 0.0),
    }


def _scalar(engine: Engine, sql: str, event_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), {"e": event_id}).scalar_one()
