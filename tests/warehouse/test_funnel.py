"""The funnel counts visits, each stage a subset of the one before, and traffic sources carry
first-touch conversion (docs/analytics.md, "Funnel and attribution"). Facts go in through the
sink, like the worker's; the answers are read through the API, as the dashboards read them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.analytics.facts import FactKind
from tests.factories import V1, Organizer
from tests.warehouse.conftest import T0, fact
from warehouse.sink import ingest

M = timedelta(minutes=1)


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def journeys(tenant: uuid.UUID, event: uuid.UUID, tt: uuid.UUID) -> list:
    """Three visits and registrations of every kind:

    - ``a``: telegram, then newsletter 10 minutes later (the same visit), registers directly
      (no hold), pays in full and checks in: credited to telegram;
    - ``b``: newsletter, selects a ticket, holds, registers, never pays;
    - ``c``: direct, only looks;
    - three registrations through the API only (no visitor): not in the funnel, reported apart;
    - ``d`` registers 2 days after its only view: outside the attribution window.
    """
    f = fact
    return [
        f(FactKind.PAGE_VIEW, tenant, event, T0, visitor_id="a", source="telegram"),
        f(FactKind.PAGE_VIEW, tenant, event, T0 + 10 * M, visitor_id="a", source="newsletter"),
        f(
            FactKind.REGISTRATION,
            tenant,
            event,
            T0 + 12 * M,
            ticket_type_id=tt,
            registration_id=(ra := uuid.uuid4()),
            visitor_id="a",
        ),
        f(FactKind.PAYMENT, tenant, event, T0 + 14 * M, registration_id=ra, amount=4900),
        f(FactKind.CHECKIN, tenant, event, T0 + 20 * M, registration_id=ra),
        f(FactKind.PAGE_VIEW, tenant, event, T0 + M, visitor_id="b", source="newsletter"),
        f(
            FactKind.TICKET_SELECTED,
            tenant,
            event,
            T0 + 2 * M,
            visitor_id="b",
            source="newsletter",
            ticket_type_id=tt,
        ),
        f(FactKind.RESERVATION, tenant, event, T0 + 3 * M, ticket_type_id=tt, visitor_id="b"),
        f(
            FactKind.REGISTRATION,
            tenant,
            event,
            T0 + 4 * M,
            ticket_type_id=tt,
            registration_id=uuid.uuid4(),
            visitor_id="b",
        ),
        f(FactKind.PAGE_VIEW, tenant, event, T0 + 2 * M, visitor_id="c", source="direct"),
        *(
            f(
                FactKind.REGISTRATION,
                tenant,
                event,
                T0 + (5 + i) * M,
                ticket_type_id=tt,
                registration_id=uuid.uuid4(),
            )
            for i in range(3)
        ),
        f(FactKind.PAGE_VIEW, tenant, event, T0 + 3 * M, visitor_id="d", source="vk"),
        f(
            FactKind.REGISTRATION,
            tenant,
            event,
            T0 + timedelta(days=2),
            ticket_type_id=tt,
            registration_id=uuid.uuid4(),
            visitor_id="d",
        ),
    ]


@pytest.fixture(scope="module")
def world(client: TestClient, api, admin: dict, warehouse_engine: Engine) -> dict:
    organizer = Organizer(client, api, admin)
    event, tt = organizer.published_event(capacity=10, price_amount=4900)
    tenant = uuid.UUID(organizer.org["id"])
    facts = journeys(tenant, uuid.UUID(event["id"]), uuid.UUID(tt["id"]))
    # Out of order, as two topics deliver them: the domain facts before the views.
    with Session(warehouse_engine) as session, session.begin():
        ingest(session, [f for f in facts if f.kind != FactKind.PAGE_VIEW])
    with Session(warehouse_engine) as session, session.begin():
        ingest(session, [f for f in facts if f.kind == FactKind.PAGE_VIEW])
    return {"organizer": organizer, "event": event}


def dashboard(client: TestClient, world: dict, **params) -> dict:
    response = client.get(
        f"{V1}/analytics/events/{world['event']['id']}/dashboard",
        params=params,
        headers=world["organizer"].owner["headers"],
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_funnel_narrows_at_every_stage(client: TestClient, world: dict) -> None:
    body = dashboard(client, world, **{"from": iso(T0), "to": iso(T0 + timedelta(days=3))})
    stages = {s["stage"]: s["count"] for s in body["funnel"]}
    assert stages == {
        "view": 4,  # visits a, b, c, d
        "ticket_selected": 2,  # b selected; a registered without selecting: passed it
        "checkout_started": 2,
        "reservation": 2,  # a registered without a hold: counted as having passed it
        "registration": 2,  # d's registration came two days after its visit: not credited
        "payment": 1,
        "checkin": 1,
    }
    for previous, stage in zip(body["funnel"], body["funnel"][1:], strict=False):
        assert stage["count"] <= previous["count"], body["funnel"]
        assert stage["drop_off"] == previous["count"] - stage["count"] >= 0
        assert stage["rate_from_previous"] is None or stage["rate_from_previous"] <= 1
    assert body["funnel"][0]["drop_off"] is None


def test_conversion_counts_visits_and_reports_registrations_without_a_visit(
    client: TestClient, world: dict
) -> None:
    body = dashboard(client, world, **{"from": iso(T0), "to": iso(T0 + timedelta(days=3))})
    kpis = body["kpis"]
    assert kpis["registrations"] == 6  # every registration fact
    assert kpis["visits"] == 4
    assert kpis["converted_visits"] == 2
    assert kpis["conversion_rate"] == 0.5  # not 6 / 4
    assert kpis["registrations_without_visit"] == 4  # the three API-only ones and d's


def test_first_touch_attribution_per_visit(client: TestClient, world: dict) -> None:
    body = dashboard(client, world, **{"from": iso(T0), "to": iso(T0 + timedelta(days=3))})
    sources = {s["source"]: s for s in body["sources"]}
    telegram, newsletter = sources["telegram"], sources["newsletter"]
    assert (telegram["visits"], telegram["converted_visits"], telegram["registrations"]) == (
        1, 1, 1,
    )  # fmt: skip
    assert telegram["conversion_rate"] == 1.0
    assert telegram["revenue"] == [{"currency": "EUR", "gross": 4900}]
    assert (newsletter["visits"], newsletter["converted_visits"]) == (1, 1)
    assert newsletter["revenue"] == []
    assert newsletter["views"] == 2  # the rollups' views still count every view
    assert (sources["direct"]["converted_visits"], sources["direct"]["conversion_rate"]) == (0, 0)
    assert (sources["vk"]["visits"], sources["vk"]["converted_visits"]) == (1, 0)
    for source in body["sources"]:
        assert source["converted_visits"] <= source["visits"], source


def test_the_range_bounds_what_a_visit_reached(client: TestClient, world: dict) -> None:
    """Only what happened before `to` counts: a closed range gives the same answer later."""
    body = dashboard(client, world, **{"from": iso(T0), "to": iso(T0 + 13 * M)})
    stages = {s["stage"]: s["count"] for s in body["funnel"]}
    assert (stages["registration"], stages["payment"], stages["checkin"]) == (2, 0, 0)


def test_the_report_uses_the_same_conversion(client: TestClient, world: dict) -> None:
    organizer = world["organizer"]
    response = client.get(
        f"{V1}/analytics/organizations/{organizer.org['id']}/report",
        params={"from": iso(T0), "to": iso(T0 + timedelta(days=3))},
        headers=organizer.owner["headers"],
    )
    assert response.status_code == 200, response.text
    row = next(r for r in response.json()["events"] if r["event_id"] == world["event"]["id"])
    assert (row["visits"], row["converted_visits"], row["conversion_rate"]) == (4, 2, 0.5)
    assert row["registrations_without_visit"] == 4
    totals = response.json()["totals"]
    assert totals["conversion_rate"] <= 1
