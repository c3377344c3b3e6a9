"""aqstream warehouse reconcile: business facts made through the API, their facts stored as the
worker stores them, then some lost (a skipped topic range, rows deleted by hand, the outbox
pruned); reconcile stores exactly the missing ones and every dashboard number equals the
transactional tables again; a second run adds nothing; facts younger than the settle margin are
left to the stream; the jobs' count check sees the difference."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from aqstream.cli import app as cli
from core.settings import Settings
from domain.analytics.facts import Fact, FactKind, to_fact
from domain.outbox.records import Row, headers
from tests.factories import (
    V1,
    Organizer,
    cancelled_registration,
    join_waitlist,
    now,
    paying,
    refund,
    registered,
    reserved,
    sandbox,
    settle_sandbox,
    sweep,
)
from warehouse.engine import warehouse_engine
from warehouse.reconcile import NAMESPACE, SETTLE, count_check, reconcile
from warehouse.sink import ingest

DOMAIN_KINDS = (
    FactKind.RESERVATION,
    FactKind.REGISTRATION,
    FactKind.CONFIRMATION,
    FactKind.CANCELLATION,
    FactKind.CHECKIN,
    FactKind.PAYMENT,
    FactKind.REFUND,
    FactKind.WAITLIST_JOINED,
    FactKind.WAITLIST_LEFT,
)


@pytest.fixture(scope="module")
def writer(settings: Settings) -> Iterator[Engine]:
    """The warehouse's writers' connections, as the worker's sink and backfill get them."""
    engine = warehouse_engine(settings, pool_size=2, application_name="aqstream-tests-reconcile")
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_sandbox_queue(client: TestClient) -> Iterator[None]:
    """No webhook of this test is left for another, nor one of another for this."""
    box = sandbox(client)
    box.deliver_all(lambda body, headers: 200)
    yield
    box.deliver_all(lambda body, headers: 200)


# --- one event with every kind of business fact -----------------------------------------------


@dataclass
class World:
    organizer: Organizer
    event_id: str

    @property
    def tenant(self) -> uuid.UUID:
        return uuid.UUID(self.organizer.org["id"])


def make_world(client: TestClient, api, admin: dict) -> World:
    """Through the API: free registrations (one cancelled, one checked in, one from a seat
    hold), a paid one with two refunds of the same amount, a deposit and its remainder, and a
    one-seat ticket type whose waitlist is joined, left, and offered the seat freed."""
    org = Organizer(client, api, admin)
    event = org.event(title=f"Reconcile {uuid.uuid4().hex[:6]}", timezone="UTC")
    e = event["id"]
    free = org.ticket_type(e, name="Free", capacity=50)["id"]
    full = org.ticket_type(e, name="Full", capacity=50, price_amount=5000)["id"]
    deposit = org.ticket_type(
        e, name="Deposit", capacity=50, price_amount=10000, deposit_amount=2500
    )["id"]
    tiny = org.ticket_type(e, name="Tiny", capacity=1)["id"]
    org.publish(e)

    leaver, left = org.participant(e, free)
    _, attendee = org.participant(e, free, quantity=2)
    org.participant(e, free)
    cancelled_registration(client, left["id"], leaver)
    checked = client.post(
        f"{V1}/registrations/{attendee['id']}/check-in", headers=org.owner["headers"]
    )
    assert checked.status_code == 200, checked.text
    holder = api.register("holder")
    hold = reserved(client, e, holder, free, quantity=2)
    registered(client, e, holder, reservation_id=hold["id"])

    buyer, bought = org.participant(e, full)
    payment = paying(client, bought["id"], buyer)
    settle_sandbox(client)
    for _ in range(2):
        response = refund(client, payment["id"], org.owner, amount=1000)
        assert response.status_code == 201, response.text
        settle_sandbox(client)
    payer = api.register("payer")
    prepaid = registered(client, e, payer, ticket_type_id=deposit, payment_mode="deposit")
    for _ in range(2):  # the deposit, then the remainder
        paying(client, prepaid["id"], payer)
        settle_sandbox(client)

    seated, seat = org.participant(e, tiny)
    for name in ("waiter", "quitter"):
        user = api.register(name)
        joined = join_waitlist(client, e, user, tiny)
        assert joined.status_code == 201, joined.text
        if name == "quitter":
            quit_ = client.delete(f"{V1}/waitlist/{joined.json()['id']}", headers=user["headers"])
            assert quit_.status_code == 200, quit_.text
    cancelled_registration(client, seat["id"], seated)
    sweep(client)  # the freed seat is offered to the waiter: a hold, and the waiter leaves
    return World(org, e)


# --- the worker's way of storing facts ----------------------------------------------------------

_RECORD = (
    "SELECT id::text, aggregate_type, aggregate_id::text, event_type, schema_version::text,"
    " coalesce(tenant_id::text, ''), payload::text, coalesce(headers->>'correlation_id', ''),"
    " to_json(occurred_at)#>>'{}', extract(epoch FROM occurred_at)::float8"
    " FROM outbox WHERE tenant_id = :t ORDER BY seq"
)


def published(owner: Engine, tenant: uuid.UUID) -> list[tuple[Row, Fact]]:
    """The tenant's outbox rows as the relay publishes them, and the fact the worker maps each
    counted one to."""
    with owner.connect() as conn:
        rows = [Row(*r) for r in conn.execute(text(_RECORD), {"t": tenant})]
    out = []
    for row in rows:
        fact = to_fact(
            row.event_type,
            json.loads(row.payload),
            {name: value.decode() for name, value in headers(row)},
        )
        if fact is not None:
            out.append((row, fact))
    return out


def store(writer: Engine, facts: list[Fact]) -> None:
    with Session(writer) as session, session.begin():
        ingest(session, facts)


def delete_facts(owner: Engine, tenant: uuid.UUID, fact_ids: list[uuid.UUID]) -> None:
    """As the owner, by hand: the rollups still count them."""
    with owner.begin() as conn:
        conn.execute(
            text("DELETE FROM warehouse.facts WHERE tenant_id = :t AND fact_id = ANY(:ids)"),
            {"t": tenant, "ids": fact_ids},
        )


def stored_facts(owner: Engine, tenant: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    with owner.connect() as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                text("SELECT fact_id, kind FROM warehouse.facts WHERE tenant_id = :t"),
                {"t": tenant},
            )
        ]


# --- what the dashboard says, and what the tables say -------------------------------------------


def dashboard_numbers(client: TestClient, world: World) -> dict:
    response = client.get(
        f"{V1}/analytics/events/{world.event_id}/dashboard",
        headers=world.organizer.owner["headers"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    kpis = {
        k: body["kpis"][k]
        for k in (
            "reservations",
            "registrations",
            "confirmations",
            "cancellations",
            "checkins",
            "waitlist",
            "paid_registrations",
        )
    }
    money = ("gross", "refunds", "net", "full", "deposits", "remainders")
    return {
        "kpis": kpis,
        "series": {
            c: sum(b[c] for b in body["series"])
            for c in ("registrations", "cancellations", "checkins")
        },
        "types": {
            t["ticket_type_id"]: {k: t[k] for k in ("registrations", "cancellations", "checkins")}
            for t in body["ticket_types"]
            if t["registrations"] or t["cancellations"] or t["checkins"]
        },
        "revenue": {m["currency"]: {k: m[k] for k in money} for m in body["revenue"]},
        "type_revenue": {
            t["ticket_type_id"]: {
                m["currency"]: {k: m[k] for k in ("gross", "refunds", "net")} for m in t["revenue"]
            }
            for t in body["ticket_types"]
            if t["revenue"]
        },
    }


def table_numbers(owner: Engine, event_id: str) -> dict:
    """The same numbers from the transactional tables (as tests/simulate's pipeline proof
    derives them)."""

    def rows(sql: str) -> list:
        with owner.connect() as conn:
            return list(conn.execute(text(sql), {"e": event_id}))

    def count(sql: str) -> int:
        return rows(sql)[0][0]

    paid = "p.status IN ('completed', 'partially_refunded', 'refunded')"
    kpis = {
        "reservations": count("SELECT count(*) FROM reservations WHERE event_id = :e"),
        "registrations": count("SELECT count(*) FROM registrations WHERE event_id = :e"),
        "confirmations": count(
            "SELECT count(*) FROM registrations WHERE event_id = :e AND confirmed_at IS NOT NULL"
        ),
        "cancellations": count(
            "SELECT count(*) FROM registrations WHERE event_id = :e AND cancelled_at IS NOT NULL"
        ),
        "checkins": count("SELECT count(*) FROM check_ins WHERE event_id = :e"),
        "waitlist": count(
            "SELECT count(*) FROM waitlist_entries WHERE event_id = :e AND status = 'waiting'"
        ),
        "paid_registrations": count(
            f"SELECT count(*) FROM payments p WHERE p.event_id = :e AND {paid}"
            " AND p.purpose IN ('full', 'deposit')"
        ),
    }
    types: dict[str, dict[str, int]] = defaultdict(
        lambda: {"registrations": 0, "cancellations": 0, "checkins": 0}
    )
    for tt, registrations, cancellations in rows(
        "SELECT ticket_type_id, count(*), count(cancelled_at) FROM registrations"
        " WHERE event_id = :e GROUP BY 1"
    ):
        types[str(tt)]["registrations"] += registrations
        types[str(tt)]["cancellations"] += cancellations
    for tt, checkins in rows(
        "SELECT r.ticket_type_id, count(*) FROM check_ins c"
        " JOIN registrations r ON r.id = c.registration_id WHERE c.event_id = :e GROUP BY 1"
    ):
        types[str(tt)]["checkins"] += checkins
    revenue: dict[str, dict[str, int]] = {}
    type_revenue: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    slot = {"full": "full", "deposit": "deposits", "remainder": "remainders"}
    for tt, currency, purpose, amount in rows(
        "SELECT r.ticket_type_id, p.currency, p.purpose, sum(p.amount) FROM payments p"
        f" JOIN registrations r ON r.id = p.registration_id WHERE p.event_id = :e AND {paid}"
        " GROUP BY 1, 2, 3"
    ):
        total = revenue.setdefault(
            currency, dict.fromkeys(("gross", "refunds", "net", *slot.values()), 0)
        )
        per_type = type_revenue[str(tt)].setdefault(currency, {"gross": 0, "refunds": 0, "net": 0})
        for m in (total, per_type):
            m["gross"] += amount
            m["net"] += amount
        total[slot[purpose]] += amount
    for tt, currency, amount in rows(
        "SELECT r.ticket_type_id, p.currency, sum(f.amount) FROM refunds f"
        " JOIN payments p ON p.id = f.payment_id JOIN registrations r ON r.id = p.registration_id"
        " WHERE p.event_id = :e AND f.status = 'succeeded' GROUP BY 1, 2"
    ):
        for m in (revenue[currency], type_revenue[str(tt)][currency]):
            m["refunds"] += amount
            m["net"] -= amount
    return {
        "kpis": kpis,
        "series": {k: kpis[k] for k in ("registrations", "cancellations", "checkins")},
        "types": dict(types),
        "revenue": revenue,
        "type_revenue": dict(type_revenue),
    }


def table_kinds(numbers: dict, owner: Engine, world: World) -> Counter:
    """Business facts per kind of the world's event, from the tables."""
    with owner.connect() as conn:
        extra = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM payments WHERE event_id = :e AND status IN"
                " ('completed', 'partially_refunded', 'refunded')),"
                " (SELECT count(*) FROM refunds f JOIN payments p ON p.id = f.payment_id"
                "  WHERE p.event_id = :e AND f.status = 'succeeded'),"
                " (SELECT count(*) FROM waitlist_entries WHERE event_id = :e),"
                " (SELECT count(*) FROM waitlist_entries WHERE event_id = :e"
                "  AND status <> 'waiting')"
            ),
            {"e": world.event_id},
        ).one()
    k = numbers["kpis"]
    return Counter(
        {
            FactKind.RESERVATION: k["reservations"],
            FactKind.REGISTRATION: k["registrations"],
            FactKind.CONFIRMATION: k["confirmations"],
            FactKind.CANCELLATION: k["cancellations"],
            FactKind.CHECKIN: k["checkins"],
            FactKind.PAYMENT: extra[0],
            FactKind.REFUND: extra[1],
            FactKind.WAITLIST_JOINED: extra[2],
            FactKind.WAITLIST_LEFT: extra[3],
        }
    )


def settled() -> datetime:
    """A clock past the settle margin of everything made so far (by more than a minute: the
    count check's window ends at a whole minute)."""
    return now() + SETTLE + timedelta(minutes=1)


def per_kind(result, tenant: uuid.UUID, field: str) -> Counter:
    return Counter({k: getattr(c, field) for (t, k), c in result.counts.items() if t == tenant})


# --- the tests -----------------------------------------------------------------------------------


def test_lost_facts_come_back_with_their_live_ids_and_the_dashboard_equals_the_tables(
    client: TestClient, api, admin: dict, owner_engine: Engine, writer: Engine
) -> None:
    world = make_world(client, api, admin)
    tenant = world.tenant
    truth = table_numbers(owner_engine, world.event_id)
    kinds = table_kinds(truth, owner_engine, world)
    assert all(kinds[k] for k in DOMAIN_KINDS), kinds  # every kind is there to lose
    assert kinds[FactKind.REFUND] == 2 and truth["kpis"]["waitlist"] == 0

    facts = published(owner_engine, tenant)
    # A topic range skipped: the payment and waitlist topics never reached the warehouse.
    skipped = [f for row, f in facts if row.aggregate_type in ("payment", "waitlist_entry")]
    store(
        writer, [f for row, f in facts if row.aggregate_type not in ("payment", "waitlist_entry")]
    )
    store(writer, [f for _, f in facts[:3]])  # redelivered: nothing new
    # and some stored facts deleted by hand (the rollups still count them)
    deleted = [
        f
        for f in (f for _, f in facts)
        if f.kind in (FactKind.REGISTRATION, FactKind.CHECKIN, FactKind.RESERVATION)
    ][::2]
    delete_facts(owner_engine, tenant, [f.fact_id for f in deleted])
    lost = Counter(f.kind for f in [*skipped, *deleted])
    assert lost[FactKind.PAYMENT] == 3 and lost[FactKind.REFUND] == 2

    assert dashboard_numbers(client, world) != truth
    clock = settled()
    check = count_check(owner_engine, now=clock, tenant_id=tenant)
    # the rollups still count the deleted facts: the cheap check sees what never arrived
    assert check.differences == Counter(f.kind for f in skipped)

    result = reconcile(owner_engine, writer, now=clock, tenant_id=tenant)
    assert per_kind(result, tenant, "expected") == kinds
    assert per_kind(result, tenant, "added") == lost
    assert per_kind(result, tenant, "found") == kinds - lost
    assert per_kind(result, tenant, "extra") == Counter()
    assert (result.from_outbox, result.derived, result.events) == (sum(lost.values()), 0, 1)
    # the facts the stream would have stored, with their ids: a late delivery adds nothing
    outbox_ids = {f.fact_id for _, f in facts}
    assert {fid for fid, _ in stored_facts(owner_engine, tenant)} == outbox_ids
    assert dashboard_numbers(client, world) == truth
    assert count_check(owner_engine, now=clock, tenant_id=tenant).differences == {}

    again = reconcile(owner_engine, writer, now=clock, tenant_id=tenant)
    assert again.added == 0 and again.events == 0
    assert per_kind(again, tenant, "found") == kinds
    store(writer, [f for _, f in facts])  # the stream replayed from the beginning
    assert dashboard_numbers(client, world) == truth


def test_without_the_outbox_rows_facts_are_derived_from_the_tables_never_twice(
    client: TestClient, api, admin: dict, owner_engine: Engine, writer: Engine
) -> None:
    world = make_world(client, api, admin)
    tenant = world.tenant
    truth = table_numbers(owner_engine, world.event_id)
    kinds = table_kinds(truth, owner_engine, world)
    facts = [f for _, f in published(owner_engine, tenant)]
    store(writer, facts)
    assert dashboard_numbers(client, world) == truth
    # The relay pruned the outbox; then facts of every kind went missing: every other one (one
    # of the two equal refunds: the other, still stored, must count for its own refund).
    with owner_engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox WHERE tenant_id = :t"), {"t": tenant})
    by_kind: dict[FactKind, list[Fact]] = defaultdict(list)
    for f in facts:
        by_kind[f.kind].append(f)
    lost = [f for kind in DOMAIN_KINDS for f in by_kind[kind][::2]]
    delete_facts(owner_engine, tenant, [f.fact_id for f in lost])
    assert dashboard_numbers(client, world) == truth  # the rollups still count them
    clock = settled()

    preview = reconcile(owner_engine, writer, now=clock, tenant_id=tenant, dry_run=True)
    assert per_kind(preview, tenant, "added") == Counter(f.kind for f in lost)
    assert len(stored_facts(owner_engine, tenant)) == len(facts) - len(lost)

    result = reconcile(owner_engine, writer, now=clock, tenant_id=tenant)
    assert per_kind(result, tenant, "expected") == kinds
    assert per_kind(result, tenant, "added") == Counter(f.kind for f in lost)
    assert per_kind(result, tenant, "extra") == Counter()
    assert (result.from_outbox, result.derived) == (0, len(lost))
    stored = stored_facts(owner_engine, tenant)
    assert len(stored) == len(facts) == sum(kinds.values())  # nothing counted twice
    derived = {fid for fid, _ in stored} - {f.fact_id for f in facts}
    assert len(derived) == len(lost)
    with owner_engine.connect() as conn:
        registrations = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM registrations WHERE event_id = :e"), {"e": world.event_id}
            )
        ]
    lost_registrations = {f.registration_id for f in lost if f.kind == FactKind.REGISTRATION}
    assert lost_registrations <= set(registrations)
    assert {uuid.uuid5(NAMESPACE, f"registration:{r}") for r in lost_registrations} <= derived
    assert dashboard_numbers(client, world) == truth

    again = reconcile(owner_engine, writer, now=clock + timedelta(hours=1), tenant_id=tenant)
    assert again.added == 0
    assert per_kind(again, tenant, "found") == kinds
    assert dashboard_numbers(client, world) == truth


def test_business_facts_younger_than_the_settle_margin_are_left_to_the_stream(
    client: TestClient, api, admin: dict, owner_engine: Engine, writer: Engine
) -> None:
    world = make_world(client, api, admin)
    tenant = world.tenant
    with owner_engine.connect() as conn:
        times = [
            r[0]
            for r in conn.execute(
                text("SELECT created_at FROM registrations WHERE event_id = :e ORDER BY 1"),
                {"e": world.event_id},
            )
        ]
    cutoff = times[3]  # the fourth registration and later ones are not settled yet
    result = reconcile(owner_engine, writer, now=cutoff + SETTLE, tenant_id=tenant)
    assert per_kind(result, tenant, "added")[FactKind.REGISTRATION] == 3
    # a range: only what lies in it
    later = reconcile(
        owner_engine, writer, now=settled(), tenant_id=tenant, start=cutoff, end=times[-1]
    )
    assert per_kind(later, tenant, "expected")[FactKind.REGISTRATION] == len(times) - 4
    assert per_kind(later, tenant, "added")[FactKind.REGISTRATION] == len(times) - 4
    rest = reconcile(owner_engine, writer, now=settled(), tenant_id=tenant)
    assert per_kind(rest, tenant, "added")[FactKind.REGISTRATION] == 1
    assert dashboard_numbers(client, world) == table_numbers(owner_engine, world.event_id)


def test_aqstream_warehouse_reconcile_command(
    client: TestClient,
    api,
    admin: dict,
    owner_engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "AQSTREAM_DATABASE_URL": settings.owner_url.render_as_string(hide_password=False),
        "AQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AQSTREAM_REDIS_URL": settings.redis_url,
        "AQSTREAM_S3_ENDPOINT": settings.s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    world = make_world(client, api, admin)
    tenant = str(world.tenant)
    kinds = table_kinds(table_numbers(owner_engine, world.event_id), owner_engine, world)
    command = ["warehouse", "reconcile", "--tenant", tenant, "--settle-s", "0"]

    preview = CliRunner().invoke(cli, [*command, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    lines = [line.split() for line in preview.output.splitlines()]
    rows = {line[1]: line[2:] for line in lines if line and line[0] == tenant}
    registrations = str(kinds[FactKind.REGISTRATION])
    assert rows["registration"] == [registrations, "0", registrations, "0"]
    assert set(rows) == {k.value for k in DOMAIN_KINDS}
    assert stored_facts(owner_engine, world.tenant) == []

    done = CliRunner().invoke(cli, command)
    assert done.exit_code == 0, done.output
    assert f"added {sum(kinds.values())} facts" in done.output
    assert dashboard_numbers(client, world) == table_numbers(owner_engine, world.event_id)
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0, again.output
    assert "no differences" in again.output

    bad = CliRunner().invoke(cli, ["warehouse", "reconcile", "--from", "last tuesday"])
    assert bad.exit_code == 2 and "error" in bad.output
    bad = CliRunner().invoke(cli, ["warehouse", "reconcile", "--tenant", "acme"])
    assert bad.exit_code == 2 and "error" in bad.output


def test_the_jobs_count_check_feeds_its_gauge(settings: Settings, app_engine: Engine) -> None:
    from aqstream.jobs import JobsMetrics, build_tasks, run_due
    from domain.db import make_sessionmaker

    metrics = JobsMetrics()
    tasks = build_tasks(settings, make_sessionmaker(app_engine), interval=1.0, metrics=metrics)
    [check] = [t for t in tasks if t.name == "warehouse_check"]
    outcome = run_due([check], now=0.0)["warehouse_check"]
    assert not isinstance(outcome, Exception), outcome
    for kind in DOMAIN_KINDS:  # the suite's other tenants have tables without facts: not 0
        value = metrics.registry.get_sample_value(
            "aqstream_warehouse_missing_facts", {"kind": kind}
        )
        assert value == (outcome or {}).get(kind.value, 0)
    assert run_due([check], now=1.0) == {}  # not due again before its interval
