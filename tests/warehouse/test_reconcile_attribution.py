"""`aqstream warehouse reconcile` gives a lost hold's or registration's fact back its tracking
visitor id, from the outbox record while there is one and from `reservations.visitor_id` /
`registrations.visitor_id` once the outbox is pruned, so the dashboard credits the registration
to the visitor's visit again (docs/analytics.md, "Funnel and attribution")."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from domain.analytics.facts import FactKind
from tests.factories import V1, Organizer, registered
from tests.warehouse.conftest import fact
from tests.warehouse.test_reconcile import (  # noqa: F401  (writer: a fixture)
    delete_facts,
    published,
    store,
    writer,
)
from warehouse.reconcile import SETTLE, reconcile
from warehouse.visits import FORGET_EVENT, RECOMPUTE_EVENT


def lose(owner: Engine, tenant: uuid.UUID, event_id: str, fact_ids: list[uuid.UUID]) -> None:
    """The facts were never stored: gone, and the visits the sink keeps as it would have kept
    them without them (the rollups still count them, as in test_reconcile)."""
    delete_facts(owner, tenant, fact_ids)
    with owner.begin() as conn:
        pg = conn.connection.driver_connection
        pg.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        pg.execute(FORGET_EVENT, {"event": event_id})
        pg.execute(RECOMPUTE_EVENT, {"event": event_id})


def visitors(owner: Engine, event_id: str) -> dict[str, list[str | None]]:
    """The event's hold and registration facts: kind -> their visitor ids."""
    with owner.connect() as conn:
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


def attribution(client: TestClient, org: Organizer, event_id: str) -> tuple:
    response = client.get(
        f"{V1}/analytics/events/{event_id}/dashboard", headers=org.owner["headers"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    k = body["kpis"]
    sources = {s["source"]: (s["visits"], s["converted_visits"]) for s in body["sources"]}
    return k["visits"], k["converted_visits"], k["registrations_without_visit"], sources


def test_reconcile_re_derives_the_visitor_id_of_lost_holds_and_registrations(
    client: TestClient,
    api,
    admin: dict,
    owner_engine: Engine,
    writer: Engine,  # noqa: F811
) -> None:
    org = Organizer(client, api, admin)
    event, free = org.published_event(capacity=10)
    e = event["id"]
    visitor = f"v-{uuid.uuid4().hex[:8]}"
    holder = api.register("holder")
    hold = client.post(
        f"{V1}/events/{e}/reservations",
        json={"ticket_type_id": free["id"], "visitor_id": visitor},
        headers=holder["headers"],
    )
    assert hold.status_code == 201, hold.text
    registered(client, e, holder, reservation_id=hold.json()["id"])  # the hold's visitor
    registered(client, e, api.register("api-only"), ticket_type_id=free["id"])
    tenant = uuid.UUID(org.org["id"])
    with owner_engine.connect() as conn:
        held_at, last = conn.execute(
            text(
                "SELECT (SELECT created_at FROM reservations WHERE event_id = :e),"
                " (SELECT max(created_at) FROM registrations WHERE event_id = :e)"
            ),
            {"e": e},
        ).one()
    clock = last + SETTLE + timedelta(minutes=1)  # everything made is settled (no wall clock)
    # the visit: the visitor's page view (tracked: never in the outbox) before the hold
    view = fact(FactKind.PAGE_VIEW, tenant, uuid.UUID(e), held_at - timedelta(minutes=5),
                visitor_id=visitor, source="telegram")  # fmt: skip
    facts = [f for _, f in published(owner_engine, tenant)]
    store(writer, [view, *facts])
    want = {"registration": [visitor, None], "reservation": [visitor]}
    assert visitors(owner_engine, e) == want
    credited = (1, 1, 1, {"telegram": (1, 1)})
    assert attribution(client, org, e) == credited

    # lost while the outbox still holds them: back from the outbox records
    lost = [f.fact_id for f in facts if f.kind in (FactKind.RESERVATION, FactKind.REGISTRATION)]
    lose(owner_engine, tenant, e, lost)
    assert visitors(owner_engine, e) == {}
    assert attribution(client, org, e) == (1, 0, 0, {"telegram": (1, 0)})
    result = reconcile(owner_engine, writer, now=clock, tenant_id=tenant)
    assert (result.from_outbox, result.derived) == (3, 0)
    assert visitors(owner_engine, e) == want
    assert attribution(client, org, e) == credited

    # lost again after the relay pruned the outbox: derived from the tables' visitor ids
    with owner_engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox WHERE tenant_id = :t"), {"t": tenant})
    lose(owner_engine, tenant, e, lost)
    result = reconcile(owner_engine, writer, now=clock, tenant_id=tenant)
    assert (result.from_outbox, result.derived) == (0, 3)
    assert visitors(owner_engine, e) == want
    assert attribution(client, org, e) == credited
