"""The callbacks' bodies called directly, as the signed-in user, against the real API (served on
a port): what each page shows for an owner, an analyst, an outsider and a dead session."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from dash import dcc, no_update

from dashboards import event, exports, overview
from dashboards import format as fmt
from dashboards.app import load_shell
from dashboards.client import NOT_SIGNED_IN, ApiClient, Unauthorized
from tests.dashboards.conftest import api_get
from tests.dashboards.test_views import _walk, text_of


class As:
    """The session of one user (what the cookies carry in the browser)."""

    def __init__(self, live_api: str, user: dict | None) -> None:
        self.http = httpx.Client(base_url=live_api, timeout=10)
        self.token = user["access_token"] if user else None

    def client(self) -> ApiClient:
        if self.token is None:  # as Sessions.client: no cookie, nobody signed in
            raise Unauthorized(401, NOT_SIGNED_IN, "Sign in first")
        return ApiClient(self.http, self.token)


def redirect_of(output) -> str | None:
    return output.href if isinstance(output, dcc.Location) else None


@pytest.fixture(scope="module")
def outsider(api) -> dict:
    return api.register("outsider")


def test_the_shell_lists_the_users_organizations_with_roles(scenario, live_api) -> None:
    org_b = scenario.org_b["id"]
    orgs, options, value, name, navbar, redirect = load_shell(
        As(live_api, scenario.owner), "/", f"?org={org_b}", None, None
    )
    mine = api_get(live_api, scenario.owner, "/organizations")["items"]
    assert [o["id"] for o in orgs] == [o["id"] for o in mine] and len(orgs) == 3
    assert {o["role"] for o in orgs} == {"owner"}
    assert {o["label"] for o in options} >= {scenario.org_a["name"], scenario.org_b["name"]}
    assert value == org_b and navbar == {} and redirect is None and name
    # The organization already shown stays when the user navigates.
    assert load_shell(As(live_api, scenario.owner), "/exports", "", None, org_b)[2] is no_update

    orgs, _, value, *_ = load_shell(As(live_api, scenario.analyst), "/", "", org_b, None)
    assert orgs == [{"id": scenario.org_a["id"], "name": scenario.org_a["name"], "role": "analyst"}]
    assert value == scenario.org_a["id"]  # the remembered B is not the analyst's


def test_without_a_session_every_page_sends_to_sign_in(scenario, live_api) -> None:
    nobody = As(live_api, None)
    # never signed in: the plain sign-in page; a token the API refuses: the session has ended
    assert redirect_of(load_shell(nobody, "/exports", "", None, None)[-1]) == (
        "/signin?next=/exports"
    )
    bad = As(live_api, {"access_token": "not-a-token"})
    assert redirect_of(load_shell(bad, "/exports", "", None, None)[-1]) == (
        "/signin?message=expired&next=/exports"
    )
    tick = event.on_tick(bad, "all", scenario.live_event["id"], [], datetime.now(UTC))
    assert len(tick) == event.OUTPUTS
    assert all(o is no_update for i, o in enumerate(tick) if i != event.OUTPUTS - 3)
    assert redirect_of(tick[-3]).startswith("/signin?message=expired&next=/events/")
    content, _ = overview.on_period(bad, "30", None, None, scenario.org_a["id"], datetime.now(UTC))
    assert redirect_of(content).startswith("/signin")
    assert load_shell(nobody, "/signin", "", None, None)[4] == {"display": "none"}


def test_an_outsider_sees_nothing_of_the_organization(scenario, live_api, outsider) -> None:
    stranger = As(live_api, outsider)
    now = datetime.now(UTC)
    content, caption = overview.on_period(stranger, "30", None, None, scenario.org_a["id"], now)
    assert "your role" in text_of(content) and caption == ""
    tick = event.on_tick(stranger, "all", scenario.live_event["id"], [], now)
    assert "Event not found" in text_of(tick[0]) and "your role" in text_of(tick[0])
    assert tick[1] is no_update and tick[-2:] == ({"display": "none"}, True)
    started = exports.on_start(stranger, scenario.org_a["id"], "registrations", "csv", None, None,
                               "all", uuid.uuid4().hex)  # fmt: skip
    assert started[0] is no_update and "your role" in text_of(started[1])


def test_the_overview_shows_the_reports_figures(scenario, live_api) -> None:
    owner = As(live_api, scenario.owner)
    now = datetime.now(UTC)
    content, caption = overview.on_period(owner, "7", None, None, scenario.org_a["id"], now)
    chosen = overview.period("7", None, None, now)
    report = api_get(
        live_api, scenario.owner, f"/analytics/organizations/{scenario.org_a['id']}/report",
        **{"from": chosen.start.isoformat(), "to": chosen.end.isoformat()},
    )  # fmt: skip
    assert caption == overview.caption(report)
    shown = {c.id: c.children for c in _walk(content) if isinstance(getattr(c, "id", None), str)}
    totals = report["totals"]
    assert shown["ov-views"] == fmt.number(totals["views"]) and totals["views"] > 0
    assert shown["ov-registrations"] == fmt.number(totals["registrations"]) == "10"  # 8 + 2 early
    assert shown["ov-conversion"] == fmt.percent(totals["conversion_rate"])
    assert shown["ov-revenue"] == "€98.00"
    text = text_of(content)
    assert scenario.live_event["title"] in text and scenario.fresh_event["title"] in text
    assert scenario.b_event["title"] not in text


def test_an_analyst_reads_the_event_without_actions(scenario, live_api) -> None:
    analyst = As(live_api, scenario.analyst)
    now = datetime.now(UTC)
    orgs = [{"id": scenario.org_a["id"], "role": "analyst"}]
    tick = event.on_tick(analyst, "all", scenario.fresh_event["id"], orgs, now)
    header = tick[0]
    assert not [c for c in _walk(header) if isinstance(getattr(c, "id", None), dict)]
    assert tick[11] == {} and tick[12] == {"display": "none"}  # no data yet, no charts
    refused = event.on_action(analyst, "publish", scenario.fresh_event["id"])
    assert "your role" in text_of(refused)

    owner_tick = event.on_tick(As(live_api, scenario.owner), "all", scenario.fresh_event["id"],
                               [{**orgs[0], "role": "owner"}], now)  # fmt: skip
    actions = [c.id["action"] for c in _walk(owner_tick[0]) if isinstance(getattr(c, "id", None),
               dict)]  # fmt: skip
    assert actions == ["publish"]


def test_managers_act_through_the_api(scenario, live_api) -> None:
    owner = As(live_api, scenario.owner)
    event_id = scenario.fresh_event["id"]
    # Publishing needs a ticket type: the API says so, the page shows its words.
    refused = event.on_action(owner, "publish", event_id)
    assert "The platform answered" in text_of(refused)
    scenario.organizer.ticket_type(event_id, name="Standard", capacity=30)
    assert event.on_action(owner, "publish", event_id) == "Done: the event is now published."
    assert api_get(live_api, scenario.owner, f"/events/{event_id}")["status"] == "published"


def test_an_export_started_and_polled_until_its_link(scenario, live_api, export_runner) -> None:
    analyst = As(live_api, scenario.analyst)
    org = scenario.org_a["id"]
    export_id, error, polling_off = exports.on_start(
        analyst, org, "attendance", "parquet", None, None, scenario.live_event["id"], "k1"
    )
    assert error is None and polling_off is False
    deadline = time.monotonic() + 60
    while True:
        value, label, line, link, recent, stop = exports.on_poll(analyst, export_id, org)
        if stop:
            break
        assert time.monotonic() < deadline, line
        time.sleep(0.3)
    assert (value, label) == (100, "100 %") and line.startswith("Attendance: succeeded")
    assert link.href.startswith("http") and link.download.endswith(".parquet")
    assert httpx.get(link.href, timeout=10).content[:4] == b"PAR1"
    assert "Attendance" in text_of(recent) and "Parquet" in text_of(recent)
    bad = exports.on_start(analyst, org, "secrets", "csv", None, None, "all", "k2")
    assert bad[0] is no_update and "The platform answered" in text_of(bad[1])
