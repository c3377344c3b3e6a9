"""The dashboard and report API over a hand-built scenario (tests/warehouse/conftest.py), the
roles that may read them, and their validation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.factories import V1, Organizer, assert_error
from tests.warehouse.conftest import T0, scenario
from warehouse.sink import ingest


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def world(client: TestClient, api, admin: dict, warehouse_engine: Engine) -> dict:
    organizer = Organizer(client, api, admin)
    event, tt = organizer.published_event(capacity=10, price_amount=4900)
    tenant = uuid.UUID(organizer.org["id"])
    with Session(warehouse_engine) as session, session.begin():
        ingest(session, scenario(tenant, uuid.UUID(event["id"]), uuid.UUID(tt["id"])))
    return {
        "organizer": organizer,
        "event": event,
        "tt": tt,
        "analyst": organizer.member("analyst"),
    }


def dashboard(client: TestClient, world: dict, user: dict | None = None, **params):
    user = user or world["organizer"].owner
    return client.get(
        f"{V1}/analytics/events/{world['event']['id']}/dashboard",
        params=params,
        headers=user["headers"],
    )


def test_dashboard_of_the_whole_history(client: TestClient, world: dict) -> None:
    response = dashboard(client, world)
    assert response.status_code == 200, response.text
    body = response.json()
    event, tt = world["event"], world["tt"]
    assert (
        body["event_id"] == event["id"] and body["organization_id"] == world["organizer"].org["id"]
    )
    assert (body["title"], body["timezone"], body["status"]) == (
        event["title"], event["timezone"], "published",
    )  # fmt: skip
    assert (body["capacity"], body["sold"]) == (10, 0)  # transactional: nobody registered there
    assert body["range"] == {
        "from": iso(T0), "to": iso(T0 + timedelta(hours=26, minutes=1)), "granularity": "hour",
    }  # fmt: skip
    assert body["kpis"] == {
        "views": 8, "unique_views": 7, "ticket_selected": 1, "checkout_started": 1,
        "reservations": 1, "registrations": 3, "confirmations": 1, "cancellations": 1,
        "checkins": 1, "paid_registrations": 3, "waitlist": 1, "attendance_rate": 0.5,
        # the scenario's registrations name no visitor (API-only): none converts a visit
        "visits": 7, "converted_visits": 0, "registrations_without_visit": 3,
        "conversion_rate": 0.0,
    }  # fmt: skip
    assert body["revenue"] == [
        {"currency": "EUR", "gross": 9800, "refunds": 900, "net": 8900,
         "full": 4900, "deposits": 1000, "remainders": 3900},
        {"currency": "USD", "gross": 2500, "refunds": 0, "net": 2500,
         "full": 2500, "deposits": 0, "remainders": 0},
    ]  # fmt: skip
    # Visits; the scenario's selection and checkout are of visitor v1, who never viewed, and its
    # registrations name no visitor: nothing is credited to a visit (tests/warehouse/test_funnel.py
    # has journeys that are).
    assert body["funnel"] == [
        {"stage": "view", "count": 7, "rate_from_previous": None, "drop_off": None},
        {"stage": "ticket_selected", "count": 0, "rate_from_previous": 0.0, "drop_off": 7},
        *({"stage": stage, "count": 0, "rate_from_previous": None, "drop_off": 0}
          for stage in ("checkout_started", "reservation", "registration", "payment", "checkin")),
    ]  # fmt: skip
    series = body["series"]
    assert len(series) == 27 and series[0]["bucket"] == iso(T0)
    assert series[0] == {"bucket": iso(T0), "views": 5, "unique_views": 4, "registrations": 1,
                         "cancellations": 0, "checkins": 0}  # fmt: skip
    assert (series[1]["views"], series[1]["unique_views"], series[3]["views"]) == (2, 2, 1)
    assert series[25]["registrations"] == 1 and series[26]["checkins"] == 1
    assert sum(p["views"] for p in series) == 8
    assert body["revenue_series"] == [
        {"bucket": iso(T0), "currency": "EUR", "gross": 4900, "refunds": 0, "net": 4900},
        {"bucket": iso(T0 + timedelta(hours=1)), "currency": "EUR", "gross": 4900,
         "refunds": 900, "net": 4000},
        {"bucket": iso(T0 + timedelta(hours=1)), "currency": "USD", "gross": 2500,
         "refunds": 0, "net": 2500},
    ]  # fmt: skip
    assert body["ticket_types"] == [
        {"ticket_type_id": tt["id"], "name": tt["name"], "capacity": 10, "sold": 0,
         "registrations": 2, "cancellations": 1, "checkins": 1,
         "revenue": [{"currency": "EUR", "gross": 9800, "refunds": 900, "net": 8900}]},
        {"ticket_type_id": None, "name": None, "capacity": None, "sold": None,
         "registrations": 1, "cancellations": 0, "checkins": 0,
         "revenue": [{"currency": "USD", "gross": 2500, "refunds": 0, "net": 2500}]},
    ]  # fmt: skip
    assert body["sources"] == [  # by views, then name
        {"source": "direct", "views": 3, "unique_views": 2, "ticket_selected": 0,
         "checkout_started": 0, "visits": 2, "converted_visits": 0, "registrations": 0, "conversion_rate": 0.0,
         "revenue": []},
        {"source": "newsletter", "views": 3, "unique_views": 3, "ticket_selected": 1,
         "checkout_started": 1, "visits": 3, "converted_visits": 0, "registrations": 0, "conversion_rate": 0.0,
         "revenue": []},
        {"source": "twitter", "views": 2, "unique_views": 2, "ticket_selected": 0,
         "checkout_started": 0, "visits": 2, "converted_visits": 0, "registrations": 0, "conversion_rate": 0.0,
         "revenue": []},
    ]  # fmt: skip
    assert body["devices"] == [
        {"device": "desktop", "views": 4, "unique_views": 3},
        {"device": "mobile", "views": 4, "unique_views": 4},
    ]


def test_dashboard_of_a_range_by_minute(client: TestClient, world: dict) -> None:
    response = dashboard(
        client, world, **{"from": iso(T0), "to": iso(T0 + timedelta(hours=1)),
                          "granularity": "minute"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["range"]["granularity"] == "minute"
    assert len(body["series"]) == 60
    k = body["kpis"]
    assert (k["views"], k["unique_views"], k["registrations"], k["waitlist"]) == (5, 4, 1, 1)
    assert [p["views"] for p in body["series"] if p["views"]] == [1, 2, 1, 1]
    assert body["revenue"][0]["gross"] == 4900
    # a range that crosses whole hours and a day: the same totals as summing minutes
    wide = dashboard(
        client, world, **{"from": iso(T0 - timedelta(days=2, minutes=7)),
                          "to": iso(T0 + timedelta(days=3, minutes=3))},
    ).json()  # fmt: skip
    assert wide["range"]["granularity"] == "hour"
    assert wide["kpis"] == dashboard(client, world).json()["kpis"]


def test_who_may_read_the_dashboard(client: TestClient, world: dict, api) -> None:
    organizer = world["organizer"]
    assert dashboard(client, world, world["analyst"]).status_code == 200
    assert dashboard(client, world, organizer.member("moderator")).status_code == 200
    outsider = api.register("participant")
    assert_error(dashboard(client, world, outsider), 404, "not_found")
    other = organizer.another()
    assert_error(dashboard(client, world, other.owner), 404, "not_found")
    anonymous = client.get(f"{V1}/analytics/events/{world['event']['id']}/dashboard")
    assert anonymous.status_code == 401
    missing = client.get(
        f"{V1}/analytics/events/{uuid.uuid4()}/dashboard", headers=organizer.owner["headers"]
    )
    assert_error(missing, 404, "not_found")
    report = client.get(
        f"{V1}/analytics/organizations/{organizer.org['id']}/report", headers=other.owner["headers"]
    )
    assert_error(report, 404, "not_found")


def test_dashboard_validation(client: TestClient, world: dict) -> None:
    assert dashboard(client, world, granularity="week").status_code == 422
    later, earlier = iso(T0 + timedelta(hours=1)), iso(T0)
    assert_error(dashboard(client, world, **{"from": later, "to": earlier}), 422, "invalid_range")
    error = assert_error(
        dashboard(client, world, **{"from": iso(T0), "to": iso(T0 + timedelta(days=3)),
                                    "granularity": "minute"}),
        422, "range_too_large",
    )  # fmt: skip
    assert error["details"] == {"points": 3 * 24 * 60, "max_points": 2000}
    assert dashboard(client, world, **{"from": "yesterday"}).status_code == 422
    assert dashboard(client, world, **{"from": "2026-11-02T10:00:00"}).status_code == 422  # naive


def report(client: TestClient, world: dict, user: dict | None = None, **params):
    user = user or world["organizer"].owner
    return client.get(
        f"{V1}/analytics/organizations/{world['organizer'].org['id']}/report",
        params=params,
        headers=user["headers"],
    )


def test_report_with_the_previous_period(client: TestClient, world: dict) -> None:
    response = report(
        client, world, world["analyst"],
        **{"from": iso(T0 + timedelta(days=1)), "to": iso(T0 + timedelta(days=2))},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["range"] == {"from": iso(T0 + timedelta(days=1)), "to": iso(T0 + timedelta(days=2))}
    assert body["previous_range"] == {"from": iso(T0), "to": iso(T0 + timedelta(days=1))}
    (row,) = body["events"]
    assert row["event_id"] == world["event"]["id"]
    assert (row["views"], row["registrations"], row["checkins"], row["revenue"]) == (0, 1, 1, [])
    assert row["conversion_rate"] is None and row["attendance_rate"] == 1.0
    assert (row["visits"], row["registrations_without_visit"]) == (0, 1)
    previous = row["previous"]
    assert (previous["views"], previous["unique_views"], previous["registrations"]) == (8, 7, 2)
    assert (previous["cancellations"], previous["checkins"]) == (1, 0)
    assert (previous["visits"], previous["converted_visits"]) == (7, 0)
    assert previous["registrations_without_visit"] == 2
    assert previous["conversion_rate"] == 0.0 and previous["attendance_rate"] == 0.0
    assert previous["revenue"] == [
        {"currency": "EUR", "gross": 9800, "refunds": 900, "net": 8900},
        {"currency": "USD", "gross": 2500, "refunds": 0, "net": 2500},
    ]
    change = row["change"]
    assert (change["views"], change["registrations"], change["checkins"]) == (-8, -1, 1)
    assert change["conversion_rate"] is None and change["attendance_rate"] == 1.0
    assert change["revenue"] == [
        {"currency": "EUR", "gross": -9800, "refunds": -900, "net": -8900},
        {"currency": "USD", "gross": -2500, "refunds": 0, "net": -2500},
    ]
    totals = body["totals"]
    assert {k: totals[k] for k in ("views", "registrations", "checkins")} == {
        "views": 0, "registrations": 1, "checkins": 1,
    }  # fmt: skip
    assert totals["previous"]["views"] == 8 and totals["change"]["registrations"] == -1


def test_report_defaults_and_validation(client: TestClient, world: dict, api) -> None:
    body = report(client, world).json()
    start, end = (datetime.fromisoformat(body["range"][k]) for k in ("from", "to"))
    assert end - start == timedelta(days=30)
    assert abs(end - datetime.now(UTC)) < timedelta(minutes=2)
    assert body["previous_range"] == {"from": iso(start - timedelta(days=30)), "to": iso(start)}
    explicit = report(client, world, **{"from": iso(start), "to": iso(end)}).json()
    assert explicit == body
    assert_error(
        report(client, world, **{"from": iso(T0), "to": iso(T0 - timedelta(days=1))}),
        422, "invalid_range",
    )  # fmt: skip
    participant = api.register("participant")
    assert_error(report(client, world, participant), 404, "not_found")
