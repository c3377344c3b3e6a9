"""Seat races through the HTTP API of a real server process (uvicorn, two workers).

500 participants race for 100 seats; then the same with holds expiring (and the sweeper running)
and registrations and holds given back mid-race; then the waitlist of those who came too late.
Every answer must be a clear 201 or 409, and the database's counters must agree with its rows:
sold == seats of live registrations + seats of active holds, never above capacity.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from aqstream.apiserver import api_server
from core.settings import Settings
from domain.db import make_sessionmaker, uuid7
from domain.identity.tokens import TokenService
from domain.registration.sweeper import sweep_once

pytestmark = pytest.mark.slow

RACERS = 500
SEATS = 100
THREADS = 64  # concurrent clients
WORKERS = 2  # server processes: real parallelism on a 2-core machine
UNLIMITED = "1000000/minute"


# --- the server process ---------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    log: Path
    _seen: int = 0

    def problems(self) -> str:
        """What the server's log says of failures since the last call (a 5xx leaves a traceback,
        a shed request a warning), with the first one's context: empty when there were none."""
        text = self.log.read_text(errors="replace")
        new, self._seen = text[self._seen :], len(text)
        lines = new.splitlines()
        marks = [
            i
            for i, line in enumerate(lines)
            if any(word in line for word in ("Traceback", "ERROR", "[error", "[warning"))
        ]
        if not marks:
            return ""
        first = "\n".join(lines[marks[0] : marks[0] + 40])
        return f"{len(marks)} problem lines; the first:\n{first}"


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("race-server") / "uvicorn.log"
    with api_server(
        settings,
        workers=WORKERS,
        log=log,
        AQSTREAM_RATE_LIMIT_USER=UNLIMITED,
        AQSTREAM_RATE_LIMIT_IP=UNLIMITED,
        AQSTREAM_RATE_LIMIT_AUTH=UNLIMITED,
        AQSTREAM_LOG_JSON="false",
        AQSTREAM_LOG_LEVEL="WARNING",
    ) as (url, _pid):
        yield Server(url, log)


# --- people, events and concurrent calls ----------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    headers: dict[str, str]


@pytest.fixture(scope="module")
def crowd(owner_engine: Engine, settings: Settings) -> list[Person]:
    """RACERS + 1 participants, inserted directly: 500 argon2 sign-ups would dominate the run."""
    tokens = TokenService.from_settings(settings)
    ids = [uuid7() for _ in range(RACERS + 1)]
    with owner_engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (id, email, display_name) VALUES (:id, :email, :name)"),
            [
                {"id": uid, "email": f"racer-{uid.hex}@example.org", "name": f"Racer {i}"}
                for i, uid in enumerate(ids)
            ],
        )
    return [Person(uid, {"Authorization": f"Bearer {tokens.issue(uid)[0]}"}) for uid in ids]


@pytest.fixture(scope="module")
def organizer(api, admin) -> tuple[dict, str]:
    owner = api.register("race-owner")
    return owner, api.found_organization(owner, admin)["id"]


@dataclass
class Call:
    who: int
    status: int
    body: Any
    sent: float
    received: float

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None


@dataclass
class Http:
    """One httpx client per thread, all against the server."""

    url: str
    _local: threading.local = field(default_factory=threading.local)
    _clients: list[httpx.Client] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.url, timeout=60)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def call(self, method: str, path: str, who: int, headers: dict, body: Any = None) -> Call:
        sent = time.monotonic()
        response = self.client().request(method, f"/api/v1{path}", headers=headers, json=body)
        received = time.monotonic()
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        return Call(who, response.status_code, payload, sent, received)

    def close(self) -> None:
        for client in self._clients:
            client.close()


def waitlist(http: Http, event_id: str, owner: dict) -> list[dict]:
    """The event's whole waitlist, page after page."""
    entries, cursor = [], ""
    while True:
        page = http.call(
            "GET", f"/events/{event_id}/waitlist?limit=100{cursor}", -1, owner["headers"]
        )
        assert page.status == 200, page.body
        entries += page.body["items"]
        if page.body["next_cursor"] is None:
            return entries
        cursor = f"&cursor={page.body['next_cursor']}"


@pytest.fixture
def http(server: Server) -> Iterator[Http]:
    pool = Http(server.url)
    yield pool
    pool.close()


def together(tasks: list[Callable[[], Any]]) -> list[Any]:
    """Run the tasks on THREADS threads, the first THREADS released at once; results in order."""
    go = threading.Event()

    def gated(task: Callable[[], Any]) -> Any:
        go.wait()
        return task()

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(gated, task) for task in tasks]
        go.set()
        return [f.result() for f in futures]


def make_event(
    http: Http,
    organizer: tuple[dict, str],
    *,
    seats: int,
    event_capacity: int | None,
) -> tuple[str, str]:
    owner, org_id = organizer
    starts = datetime.now(UTC) + timedelta(days=30)
    event = http.call(
        "POST",
        "/events",
        -1,
        owner["headers"],
        {
            "organization_id": org_id,
            "title": f"Flash sale {uuid.uuid4().hex[:6]}",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(),
            "timezone": "UTC",
            "capacity": event_capacity,
        },
    )
    assert event.status == 201, event.body
    event_id = event.body["id"]
    tt = http.call(
        "POST",
        f"/events/{event_id}/ticket-types",
        -1,
        owner["headers"],
        {"name": "General admission", "capacity": seats, "price_amount": 0},
    )
    assert tt.status == 201, tt.body
    published = http.call("POST", f"/events/{event_id}/publish", -1, owner["headers"])
    assert published.status == 200, published.body
    return event_id, tt.body["id"]


def register(http: Http, crowd: list[Person], who: int, event_id: str, body: dict) -> Call:
    return http.call("POST", f"/events/{event_id}/registrations", who, crowd[who].headers, body)


@dataclass(frozen=True)
class Seats:
    tt_sold: int
    tt_capacity: int
    event_sold: int
    event_capacity: int | None
    registered: int  # seats of live registrations
    held: int  # seats of active holds


def seats(owner_engine: Engine, ticket_type_id: str) -> Seats:
    with owner_engine.connect() as conn:
        row = conn.execute(
            text(
                """
                SELECT t.sold, t.capacity, e.sold, e.capacity,
                  (SELECT coalesce(sum(r.quantity), 0) FROM registrations r
                   WHERE r.ticket_type_id = t.id AND r.status <> 'cancelled'),
                  (SELECT coalesce(sum(v.quantity), 0) FROM reservations v
                   WHERE v.ticket_type_id = t.id AND v.status = 'active')
                FROM ticket_types t JOIN events e ON e.id = t.event_id WHERE t.id = :tt
                """
            ),
            {"tt": ticket_type_id},
        ).one()
    return Seats(*row)


def live_registrants(owner_engine: Engine, event_id: str) -> set[uuid.UUID]:
    with owner_engine.connect() as conn:
        return set(
            conn.scalars(
                text(
                    "SELECT user_id FROM registrations "
                    "WHERE event_id = :e AND status <> 'cancelled'"
                ),
                {"e": event_id},
            )
        )


def assert_no_5xx(calls: list[Call], server: Server) -> None:
    failed = [(c.status, c.body) for c in calls if c.status >= 500]
    assert not failed, failed[:5]
    problems = server.problems()
    assert not problems, problems


class Sweeper(threading.Thread):
    """The jobs process's loop, in a thread: expire due holds, offer freed seats."""

    def __init__(self, app_engine: Engine) -> None:
        super().__init__(daemon=True)
        self.sessions = make_sessionmaker(app_engine)
        self.halt = threading.Event()
        self.expired = 0
        self.offered = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                result = sweep_once(self.sessions)
            except BaseException as exc:
                self.error = exc
                return
            self.expired += result.expired
            self.offered += result.offered
            self.halt.wait(0.05)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=30)
        assert not self.is_alive(), "the sweeper did not stop"
        if self.error is not None:
            raise self.error


# --- the races ------------------------------------------------------------------------------------


def test_500_participants_race_for_100_seats(
    server: Server, http: Http, crowd: list[Person], organizer, owner_engine: Engine
) -> None:
    event_id, tt_id = make_event(http, organizer, seats=SEATS, event_capacity=SEATS)

    calls = together(
        [
            lambda who=who: register(http, crowd, who, event_id, {"ticket_type_id": tt_id})
            for who in range(RACERS)
        ]
    )

    assert_no_5xx(calls, server)
    assert Counter(c.status for c in calls) == {201: SEATS, 409: RACERS - SEATS}
    assert Counter(c.code for c in calls if c.status == 409) == {"sold_out": RACERS - SEATS}
    winners = {crowd[c.who].id for c in calls if c.status == 201}
    assert live_registrants(owner_engine, event_id) == winners
    assert seats(owner_engine, tt_id) == Seats(SEATS, SEATS, SEATS, SEATS, SEATS, 0)


def test_race_with_holds_expiring_and_seats_given_back(
    server: Server,
    http: Http,
    crowd: list[Person],
    organizer,
    owner_engine: Engine,
    app_engine: Engine,
) -> None:
    """Before the race: 30 holds (40 seats) and 20 registrations. During the first wave of
    racers, 10 holds are made due (the sweeper expires them; 5 of their owners then try to
    convert them anyway), 5 holds and the 20 registrations are given back, 15 holds are
    converted. The second wave takes whatever was freed: at the end every seat is taken."""
    event_id, tt_id = make_event(http, organizer, seats=SEATS, event_capacity=SEATS)
    holders, early, racers = range(0, 30), range(30, 50), range(50, RACERS)
    quantity = {who: 2 if who % 3 == 0 else 1 for who in holders}

    holds = together(
        [
            lambda who=who: http.call(
                "POST",
                f"/events/{event_id}/reservations",
                who,
                crowd[who].headers,
                {"ticket_type_id": tt_id, "quantity": quantity[who]},
            )
            for who in holders
        ]
    )
    assert [h.status for h in holds] == [201] * len(holders), [h.body for h in holds]
    hold_of = {h.who: h.body["id"] for h in holds}
    firsts = together(
        [
            lambda who=who: register(http, crowd, who, event_id, {"ticket_type_id": tt_id})
            for who in early
        ]
    )
    assert [f.status for f in firsts] == [201] * len(early), [f.body for f in firsts]
    registration_of = {f.who: f.body["id"] for f in firsts}
    assert seats(owner_engine, tt_id) == Seats(60, SEATS, 60, SEATS, 20, 40)

    def make_due(who: int) -> None:
        with owner_engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE reservations SET expires_at = now() - interval '1 second' "
                    "WHERE id = :id"
                ),
                {"id": hold_of[who]},
            )

    def expire(who: int) -> Call:
        make_due(who)
        return Call(who, 0, None, 0.0, 0.0)

    def expire_then_convert(who: int) -> Call:
        make_due(who)
        return register(http, crowd, who, event_id, {"reservation_id": hold_of[who]})

    def give_back(who: int) -> Call:
        return http.call("POST", f"/reservations/{hold_of[who]}/cancel", who, crowd[who].headers)

    def cancel(who: int) -> Call:
        return http.call(
            "POST", f"/registrations/{registration_of[who]}/cancel", who, crowd[who].headers
        )

    def convert(who: int) -> Call:
        return register(http, crowd, who, event_id, {"reservation_id": hold_of[who]})

    def race(who: int) -> Call:
        return register(http, crowd, who, event_id, {"ticket_type_id": tt_id})

    actions: list[tuple[str, Callable[[], Call]]] = [
        *[("expired", lambda w=w: expire(w)) for w in holders[0:5]],
        *[("expired_then_convert", lambda w=w: expire_then_convert(w)) for w in holders[5:10]],
        *[("given_back", lambda w=w: give_back(w)) for w in holders[10:15]],
        *[("converted", lambda w=w: convert(w)) for w in holders[15:30]],
        *[("cancelled", lambda w=w: cancel(w)) for w in early],
    ]
    first_wave, second_wave = racers[:200], racers[200:]
    # Interleave the actions with the first wave's racers, from its 20th racer on.
    wave: list[tuple[str, Callable[[], Call]]] = [("race", lambda w=w: race(w)) for w in first_wave]
    for i, action in enumerate(actions):
        wave.insert(20 + 3 * i, action)

    sweeper = Sweeper(app_engine)
    sweeper.start()
    try:
        first = together([task for _, task in wave])
        _wait_for_sweeper(owner_engine, tt_id)
        second = together([lambda w=w: race(w) for w in second_wave])
    finally:
        sweeper.stop()

    outcome: dict[str, list[Call]] = {}
    for (kind, _), call in zip(wave, first, strict=True):
        outcome.setdefault(kind, []).append(call)
    raced = outcome.pop("race") + second
    assert_no_5xx([c for calls in outcome.values() for c in calls] + raced, server)

    assert {c.status for c in outcome["expired_then_convert"]} == {409}
    assert {c.code for c in outcome["expired_then_convert"]} == {"reservation_expired"}
    assert [(c.status, c.body["status"]) for c in outcome["given_back"]] == [(200, "cancelled")] * 5
    assert [(c.status, c.body["status"]) for c in outcome["cancelled"]] == [(200, "cancelled")] * 20
    assert [(c.status, c.body["quantity"]) for c in outcome["converted"]] == [
        (201, quantity[w]) for w in holders[15:30]
    ]
    assert {c.status for c in raced} <= {201, 409}
    assert {c.code for c in raced if c.status == 409} <= {"sold_out"}
    assert sweeper.expired == 10

    with owner_engine.connect() as conn:
        states = dict(
            conn.execute(
                text("SELECT id::text, status::text FROM reservations WHERE event_id = :e"),
                {"e": event_id},
            ).all()
        )
    assert [states[hold_of[w]] for w in holders] == (
        ["expired"] * 10 + ["cancelled"] * 5 + ["converted"] * 15
    )

    # Freed seats (10 expired holds, 5 given back, 20 cancellations) all went to racers.
    converted = sum(quantity[w] for w in holders[15:30])
    winners = {crowd[c.who].id for c in raced if c.status == 201}
    assert len(winners) == SEATS - converted
    assert live_registrants(owner_engine, event_id) == winners | {
        crowd[w].id for w in holders[15:30]
    }
    final = seats(owner_engine, tt_id)
    assert final.tt_sold == final.registered + final.held == SEATS
    assert final.event_sold == final.tt_sold
    assert final.held == 0


def _wait_for_sweeper(owner_engine: Engine, ticket_type_id: str, timeout: float = 20) -> None:
    """Until no hold of the ticket type is due: the second wave then races for freed seats."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with owner_engine.connect() as conn:
            due = conn.scalar(
                text(
                    "SELECT count(*) FROM reservations WHERE ticket_type_id = :tt "
                    "AND status = 'active' AND expires_at <= now()"
                ),
                {"tt": ticket_type_id},
            )
        if due == 0:
            return
        time.sleep(0.05)
    pytest.fail("the sweeper did not expire the due holds")


def test_the_too_late_join_the_waitlist_in_order(
    server: Server,
    http: Http,
    crowd: list[Person],
    organizer,
    owner_engine: Engine,
    app_engine: Engine,
) -> None:
    """Everyone who got `sold_out` and joined is on the waitlist, in the order they joined; freed
    seats go to its head, not to someone registering directly."""
    event_id, tt_id = make_event(http, organizer, seats=SEATS, event_capacity=None)
    owner, _ = organizer

    def race(who: int) -> tuple[Call, Call | None]:
        registration = register(http, crowd, who, event_id, {"ticket_type_id": tt_id})
        if registration.code != "sold_out":
            return registration, None
        join = http.call(
            "POST",
            f"/events/{event_id}/waitlist",
            who,
            crowd[who].headers,
            {"ticket_type_id": tt_id},
        )
        return registration, join

    results = together([lambda who=who: race(who) for who in range(RACERS)])
    registrations = [r for r, _ in results]
    joins = [j for _, j in results if j is not None]
    assert_no_5xx(registrations + joins, server)
    assert Counter(c.status for c in registrations) == {201: SEATS, 409: RACERS - SEATS}
    assert Counter(c.status for c in joins) == {201: RACERS - SEATS}, [
        j.body for j in joins if j.status != 201
    ][:5]

    queue = [e for e in waitlist(http, event_id, owner) if e["ticket_type_id"] == tt_id]
    assert [e["status"] for e in queue] == ["waiting"] * len(joins)
    place = {e["user_id"]: i for i, e in enumerate(queue)}
    assert set(place) == {str(crowd[j.who].id) for j in joins}
    # The queue respects real time: a join answered before another was sent is ahead of it,
    # and the position each join reported counts exactly those ahead that were already there.
    by_answer = sorted(joins, key=lambda j: j.received)
    ahead, furthest, k = 0, -1, 0
    for join in sorted(joins, key=lambda j: j.sent):
        while k < len(by_answer) and by_answer[k].received < join.sent:
            furthest = max(furthest, place[str(crowd[by_answer[k].who].id)])
            ahead, k = ahead + 1, k + 1
        mine = place[str(crowd[join.who].id)]
        assert furthest < mine, "a later join overtook an earlier one"
        assert ahead + 1 <= join.body["position"] <= mine + 1

    latecomer = RACERS  # the one person not in the race
    late = register(http, crowd, latecomer, event_id, {"ticket_type_id": tt_id})
    assert (late.status, late.code) == (409, "sold_out")
    late_join = http.call(
        "POST",
        f"/events/{event_id}/waitlist",
        latecomer,
        crowd[latecomer].headers,
        {"ticket_type_id": tt_id},
    )
    assert (late_join.status, late_join.body["position"]) == (201, len(joins) + 1)

    # Five winners give their seats back; one of them wants it again at once: the waitlist is
    # ahead. The sweeper then offers the five seats to the head of the queue.
    winners = [r for r in registrations if r.status == 201][:5]
    for w in winners:
        cancelled = http.call(
            "POST", f"/registrations/{w.body['id']}/cancel", w.who, crowd[w.who].headers
        )
        assert cancelled.status == 200, cancelled.body
    again = register(http, crowd, winners[0].who, event_id, {"ticket_type_id": tt_id})
    assert (again.status, again.code) == (409, "sold_out")
    assert seats(owner_engine, tt_id).tt_sold == SEATS - 5

    assert sweep_once(make_sessionmaker(app_engine)).offered == 5
    listing = waitlist(http, event_id, owner)
    offered = [e["id"] for e in listing if e["status"] == "offered"]
    assert offered == [e["id"] for e in queue[:5]]
    assert all(e["reservation_id"] for e in listing if e["status"] == "offered")
    final = seats(owner_engine, tt_id)
    assert (final.tt_sold, final.registered, final.held) == (SEATS, SEATS - 5, 5)
    problems = server.problems()
    assert not problems, problems
