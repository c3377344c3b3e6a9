"""The dashboards against a real platform: the API served by uvicorn on a loopback port, export
runs as `aqstream jobs` makes them, warehouse facts stored through the warehouse's own sink, and
headless Chromium (Debian's chromium + chromium-driver) driving the Dash app."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aqstream.stack.servers import free_port
from core.settings import Settings
from domain.analytics.facts import Fact, FactKind
from tests.factories import Organizer, paying, registered, settle_sandbox
from tests.live import served

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def live_api(settings: Settings) -> Iterator[str]:
    """The API on a real port: the Dash server calls it over HTTP like in production (one for
    the session's dashboards tests)."""
    from api.app import create_app

    with served(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def dash_settings(settings: Settings, live_api: str) -> Settings:
    return settings.model_copy(update={"dashboards_api_url": live_api, "dashboards_refresh_s": 1.5})


@pytest.fixture(scope="module")
def export_runner(settings: Settings, app_engine: Engine) -> Iterator[None]:
    """What `aqstream jobs` does for exports: claim queued ones and run them, every half second."""
    from core.resources import make_s3
    from warehouse.exports.runner import run_pending

    sessions = sessionmaker(app_engine, expire_on_commit=False)
    s3 = make_s3(settings)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            run_pending(sessions, s3, settings.s3_bucket, heartbeat_s=0.2)
            stop.wait(0.5)

    thread = threading.Thread(target=loop, daemon=True, name="export-runner")
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


def ingest(warehouse_engine: Engine, facts: list[Fact]) -> None:
    """Facts into the warehouse through its sink, committed (as the analytics agent does)."""
    from warehouse.sink import ingest as sink

    with Session(warehouse_engine) as session, session.begin():
        sink(session, facts)


@dataclass
class Scenario:
    """Two organizations of one owner (A with a live event full of data, a fresh event and a
    future one with registrations but, as it has not begun, no check-ins; B with one event of its
    own) and an analyst of A."""

    organizer: Organizer
    owner: dict
    analyst: dict
    org_a: dict
    org_b: dict
    live_event: dict
    fresh_event: dict
    b_event: dict
    future_event: dict
    registrations: list[dict] = field(default_factory=list)


def _visits(tenant: uuid.UUID, event: uuid.UUID, ticket: uuid.UUID, start: datetime) -> list[Fact]:
    """Tracked visits from three sources and two devices, with the funnel's drop-off."""
    facts: list[Fact] = []
    plan = [("google", "desktop", 14), ("newsletter", "mobile", 9), ("direct", "desktop", 5)]
    n = 0
    for source, device, visitors in plan:
        for v in range(visitors):
            n += 1
            at = start + timedelta(minutes=7 * n)
            visitor = f"{source}-{v}"

            def tracked(kind: FactKind, offset: int, at=at, visitor=visitor, source=source,
                        device=device) -> Fact:  # fmt: skip
                return Fact(
                    uuid.uuid4(), kind, tenant, event, at + timedelta(seconds=offset),
                    ticket_type_id=ticket if kind != FactKind.PAGE_VIEW else None,
                    visitor_id=visitor, session_id=f"s-{visitor}", source=source, device=device,
                )  # fmt: skip

            facts.append(tracked(FactKind.PAGE_VIEW, 0))
            if v % 3 == 0:  # a second look the same half hour: a view, not a unique one
                facts.append(tracked(FactKind.PAGE_VIEW, 600))
            if v % 2 == 0:
                facts.append(tracked(FactKind.TICKET_SELECTED, 30))
            if v % 4 == 0:
                facts.append(tracked(FactKind.CHECKOUT_STARTED, 60))
    return facts


def _domain_facts(tenant: uuid.UUID, event: uuid.UUID, regs: list[dict], start: datetime,
                  price: int, doors: datetime | None) -> list[Fact]:  # fmt: skip
    """Reservation, registration, confirmation, payment (paid ones) of each real registration,
    and the check-in of every other one since the doors opened (``None``: not yet)."""
    facts: list[Fact] = []
    for i, reg in enumerate(regs):
        at = start + timedelta(minutes=11 * i + 3)
        rid, tt = uuid.UUID(reg["id"]), uuid.UUID(reg["ticket_type_id"])

        def fact(kind: FactKind, offset: int, at=at, rid=rid, tt=tt, **extra) -> Fact:
            return Fact(uuid.uuid4(), kind, tenant, event, at + timedelta(seconds=offset),
                        ticket_type_id=tt, registration_id=rid, **extra)  # fmt: skip

        facts += [fact(FactKind.RESERVATION, 0), fact(FactKind.REGISTRATION, 20)]
        facts.append(fact(FactKind.CONFIRMATION, 40))
        if reg["paid"]:
            facts.append(fact(FactKind.PAYMENT, 35, amount=price, currency="EUR", purpose="full"))
        if doors is not None and i % 2 == 0:
            checked_in = doors + timedelta(minutes=2 * i)
            facts.append(fact(FactKind.CHECKIN, int((checked_in - at).total_seconds())))
    return facts


def found(client, owner: dict, admin: dict, name: str) -> dict:
    """An organization called ``name`` (the screenshots show it), founded the API's way."""
    slug = f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
    request = client.post(
        "/api/v1/organization-requests", json={"name": name, "slug": slug},
        headers=owner["headers"],
    )  # fmt: skip
    assert request.status_code == 201, request.text
    approved = client.post(
        f"/api/v1/organization-requests/{request.json()['id']}/approve", headers=admin["headers"]
    )
    assert approved.status_code == 200, approved.text
    org = client.post(
        "/api/v1/organizations", json={"request_id": request.json()["id"]},
        headers=owner["headers"],
    )  # fmt: skip
    assert org.status_code == 201, org.text
    return org.json()


@pytest.fixture(scope="module")
def scenario(client, api, admin, warehouse_engine: Engine) -> Scenario:
    organizer = Organizer(client, api, admin)
    owner = organizer.owner
    # Two organizations with readable names (the screenshots show them); the factory's first
    # one stays the owner's third.
    organizer.org = found(client, owner, admin, "Python Berlin")
    org_b = found(client, owner, admin, "Data Summit Society")
    analyst = organizer.member("analyst")
    now = datetime.now(UTC).replace(microsecond=0)
    doors = now.replace(minute=0, second=0) + timedelta(hours=1)  # within the hour: doors open
    live = organizer.event(
        title="PyCon Berlin 2026",
        starts_at=doors.isoformat(),
        ends_at=(doors + timedelta(hours=8)).isoformat(),
        timezone="Europe/Berlin",
    )
    free = organizer.ticket_type(live["id"], name="Standard", capacity=60, price_amount=0)
    paid = organizer.ticket_type(
        live["id"], name="Supporter", capacity=10, price_amount=4900, currency="EUR"
    )
    organizer.publish(live["id"])
    regs = []
    for i in range(6):
        user = api.register(f"attendee{i}")
        reg = registered(client, live["id"], user, ticket_type_id=free["id"])
        regs.append({**reg, "paid": False})
    for i in range(2):
        user = api.register(f"supporter{i}")
        reg = registered(client, live["id"], user, ticket_type_id=paid["id"])
        paying(client, reg["id"], user)
        regs.append({**reg, "paid": True})
    settle_sandbox(client)
    fresh = organizer.event(title="Autumn Meetup", timezone="Europe/Berlin")
    b_event = organizer.client.post(
        "/api/v1/events",
        json={
            "organization_id": org_b["id"],
            "title": "Data Summit 2027",
            "starts_at": (now + timedelta(days=40)).isoformat(),
            "ends_at": (now + timedelta(days=40, hours=6)).isoformat(),
        },
        headers=owner["headers"],
    )
    assert b_event.status_code == 201, b_event.text
    future = organizer.event(title="Summer Sprint", timezone="Europe/Berlin")  # in 30 days
    seat = organizer.ticket_type(future["id"], name="Standard", capacity=20, price_amount=0)
    organizer.publish(future["id"])
    early = [
        {**registered(client, future["id"], api.register(f"early{i}"), ticket_type_id=seat["id"]),
         "paid": False}
        for i in range(2)
    ]  # fmt: skip
    tenant, event = uuid.UUID(organizer.org["id"]), uuid.UUID(live["id"])
    since = now - timedelta(hours=5)
    ingest(
        warehouse_engine,
        _visits(tenant, event, uuid.UUID(free["id"]), since)
        + _domain_facts(tenant, event, regs, since, 4900, now - timedelta(minutes=20))
        + _domain_facts(tenant, uuid.UUID(future["id"]), early, since, 0, None),
    )
    return Scenario(
        organizer, owner, analyst, organizer.org, org_b, live, fresh, b_event.json(), future, regs
    )


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """A dash[testing] composite driving headless Chromium, shared by the session's tests (one
    Chromium start, not one per test or module); each module's dashboards app on a free port
    (``start``: the previous one is stopped, and the browser's cookies cleared)."""
    from dash.testing.application_runners import ThreadedRunner
    from dash.testing.composite import DashComposite

    if not (shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("chrome"))):
        pytest.fail("browser tests need chromium and chromium-driver (apt-get install them)")
    os.environ.setdefault("DASH_TEST_CHROMEPATH", shutil.which("chromium") or "")
    with DashComposite(
        ThreadedRunner(),
        browser="Chrome",
        headless=True,
        download_path=str(tmp_path_factory.mktemp("downloads")),
        wait_timeout=20,
    ) as duo:
        duo.driver.set_window_size(1440, 1000)
        yield duo


@pytest.fixture(scope="module")
def dash_base(browser, dash_settings: Settings) -> Iterator[str]:
    """One dashboards app for the module's tests (each signs in as whom it needs)."""
    with dash_served(dash_settings) as base:
        open_signed_out(browser, base)
        yield base


@contextlib.contextmanager
def dash_served(dash_settings: Settings) -> Iterator[str]:
    """A fresh dashboards app on its own werkzeug server (threaded, as dash's runner serves it),
    stopped by ``shutdown`` on exit. Not dash's ThreadedRunner: its stop kills every thread
    started after it, the session's live API's among them."""
    from werkzeug.serving import make_server

    from dashboards.app import create_app

    app = create_app(dash_settings)
    app.scripts.config.serve_locally = True
    app.css.config.serve_locally = True
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def open_signed_out(duo, base: str) -> None:
    """Open the app's root signed out (cookies ignore ports: a previous app's session on the
    same host would carry over), and wait for the redirect to sign-in to land, so a test that
    navigates next is not overtaken by it."""
    duo.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    duo.driver.get(f"{base}/")
    deadline = time.monotonic() + 20
    while "/signin" not in duo.driver.current_url:
        assert time.monotonic() < deadline, f"not sent to sign in: {duo.driver.current_url}"
        time.sleep(0.1)
    duo.wait_for_element("#signin-email")


def now_found(duo, by: str, selector: str) -> list:
    """The elements matching now: one look, without the driver's implicit wait (dash's Browser
    sets 2 s, which a lookup that finds nothing waits out: every "is not there" cost 2 s)."""
    duo.driver.implicitly_wait(0)
    try:
        return duo.driver.find_elements(by, selector)
    finally:
        duo.driver.implicitly_wait(2)


def sign_in(duo, base: str, user: dict, path: str = "/") -> None:
    duo.driver.get(f"{base}/signin?next={quote(path, safe='/')}")
    duo.wait_for_element("#signin-email").send_keys(user["email"])
    duo.find_element("#signin-password").send_keys(PASSWORD)
    duo.find_element("#signin-submit").click()


def api_get(live_api: str, user: dict, path: str, **params) -> dict:
    response = httpx.get(f"{live_api}/api/v1{path}", headers=user["headers"], params=params)
    assert response.status_code == 200, response.text
    return response.json()
