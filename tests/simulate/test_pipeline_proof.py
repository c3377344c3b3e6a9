"""The proof of issues F and J: a generated scenario through the real pipeline (the API over
HTTP, the outbox relay, the real broker, `aqstream worker` processes with the analytics agent,
the warehouse) ends in dashboards whose every number equals what the transactional tables and
the generator's own tracking totals say, exactly:

1. while the traffic flows, the worker is killed (SIGKILL) and started again; or, scaled out,
   two workers share the consumer groups and one of them is killed, and the survivor takes its
   partitions over; or the broker is stopped and started again on its port, and the API, the
   relay and the worker reconnect by themselves: nothing lost, nothing doubled, no notification
   sent twice;
2. then the worker's consumer group is reset to the beginning of every topic and the worker
   replays them all: every aggregate is unchanged.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from aqstream.simulate import (
    STAGES,
    Account,
    Later,
    Simulation,
    Step,
    Tracked,
    build_plan,
    conversion,
    journeys,
)
from aqstream.stack.servers import free_port
from core.settings import Settings
from domain.registration.sweeper import sweep_once
from streams.metrics import WorkerMetrics
from streams.topics import tracking_topic
from tests.broker import PrivateBroker
from tests.live import served
from tests.simulate.conftest import platform_settings, verification_key
from tests.streams.conftest import relays  # noqa: F401  (fixture)
from tests.worker.conftest import worker_fast, worker_process

VISITS = 30
ATTRIBUTED = ("visits", "converted_visits", "registrations_without_visit", "funnel")
SERIES = ("views", "unique_views", "registrations", "cancellations", "checkins")


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator > 0 else None


class WorkerProcess:
    """`aqstream worker` as its own process, on this test's database, topics and API."""

    def __init__(self, settings: Settings, api_url: str, log: Path) -> None:
        self.metrics_port = free_port()
        self.process = worker_process(
            settings,
            log,
            AQSTREAM_WORKER_METRICS_PORT=str(self.metrics_port),
            # The payments the saga starts settle as the API's do: webhooks to the API.
            AQSTREAM_PAYMENT_WORKERS="true",
            AQSTREAM_PAYMENT_SANDBOX_DELAY_S=str(settings.payment_sandbox_delay_s),
            AQSTREAM_PAYMENT_SANDBOX_WEBHOOK_URL=f"{api_url}/api/v1/webhooks/sandbox",
        )

    def facts_stored(self) -> int:
        """The analytics agent's stored facts (new or again) since this process started."""
        try:
            body = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return 0
        return WorkerMetrics.facts_stored(body)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def reset_group(settings: Settings, topics: list[str], group: str, protocol: str) -> int:
    """Commit offset 0 on every partition of ``topics`` for the consumer group ``group`` of the
    worker, as a member of it (the worker is stopped, so this one gets every partition): the
    worker's next start replays everything. ``protocol``: the group's assignor (the broker keeps
    it). Answers the partitions reset."""
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.errors import InconsistentGroupProtocolError
    from kafka.structs import OffsetAndMetadata

    class AsWorker(RangePartitionAssignor):
        """Join under the name of the group's protocol."""

        name = protocol

    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.worker_heartbeat_interval_s * 1000),
        partition_assignment_strategy=[AsWorker],
    )
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            try:
                consumer.poll(timeout_ms=200, max_records=1)
            except InconsistentGroupProtocolError:  # the stopped worker's member is not gone yet
                time.sleep(0.5)
        partitions = consumer.assignment()
        expected = sum(len(consumer.partitions_for_topic(t) or ()) for t in topics)
        assert len(partitions) == expected, (len(partitions), expected)
        consumer.commit({tp: OffsetAndMetadata(0, "", -1) for tp in partitions})
        return len(partitions)
    finally:
        consumer.close(autocommit=False)


def group_members(settings: Settings, group: str) -> int:
    """How many members the consumer group ``group`` has (a dead one counts until its session
    times out)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        return len(admin.describe_groups([group])[group]["members"])
    finally:
        admin.close()


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def namespace_topics(settings: Settings) -> list[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        return sorted(t for t in consumer.topics() if t.startswith(f"{settings.topic_namespace}."))
    finally:
        consumer.close()


# --- what the dashboards must say -------------------------------------------------------------


def _by_event(engine: Engine, sql: str, events: list[str]) -> list[Any]:
    with engine.connect() as conn:
        return [r for r in conn.execute(text(sql)) if str(r[0]) in events]


def table_journeys(engine: Engine, tracked: list[Tracked], events: list[str]) -> dict[str, dict]:
    """Per event, the visits, their funnel and first-touch sources by the definitions
    (``aqstream.simulate.journeys``, not the warehouse's SQL) from the generator's tracked actions
    (they never touch the database) and the holds, registrations, payments and check-ins of the
    transactional tables, with the visitor ids and times those hold."""
    steps = [Step(str(e), v, at, STAGES.index("reservation")) for e, v, at in _by_event(
        engine, "SELECT event_id, visitor_id, created_at FROM reservations", events)]  # fmt: skip
    registrations = _by_event(
        engine,
        "SELECT r.event_id, r.id, r.visitor_id, r.created_at, c.registration_id IS NOT NULL "
        "FROM registrations r LEFT JOIN check_ins c ON c.registration_id = r.id",
        events,
    )
    payments: dict[str, list[dict]] = defaultdict(list)
    for _, registration_id, status, purpose, currency, amount in _by_event(
        engine,
        "SELECT event_id, registration_id, status, purpose, currency, amount FROM payments",
        events,
    ):
        payments[str(registration_id)].append(
            {"status": status, "purpose": purpose, "currency": currency, "amount": int(amount)}
        )
    later = {}
    for event_id, registration_id, visitor, at, checked_in in registrations:
        steps.append(
            Step(str(event_id), visitor, at, STAGES.index("registration"), str(registration_id))
        )
        later[str(registration_id)] = Later.of(checked_in, payments[str(registration_id)])
    steps += [
        Step(t.event, t.visitor, t.occurred_at, STAGES.index(t.type))
        for t in tracked
        if t.type in STAGES
    ]
    return journeys(tracked, steps, later)


def expected_dashboards(
    engine: Engine, totals: dict, tracked: list[Tracked], events: list[str]
) -> dict[str, dict]:
    """Per event, the dashboard's numbers from the transactional tables (domain facts) and the
    generator's tracking totals (tracked actions never touch the database)."""
    out: dict[str, dict] = {}
    attributed = table_journeys(engine, tracked, events)
    for e in events:
        mine = totals["events"].get(e, {})
        journey = attributed.get(e) or _no_visit()
        out[e] = {
            "kpis": {
                "views": mine.get("page_views", 0),
                "unique_views": mine.get("unique_views", 0),
                "ticket_selected": mine.get("ticket_selected", 0),
                "checkout_started": mine.get("checkout_started", 0),
            },
            "types": defaultdict(lambda: {"registrations": 0, "cancellations": 0, "checkins": 0}),
            "type_revenue": defaultdict(dict),
            "revenue": {},
            "sources": {
                s: {
                    k: c[k]
                    for k in ("page_views", "unique_views", "ticket_selected", "checkout_started")
                }
                | _attributed(journey["sources"].get(s))
                for s, c in mine.get("sources", {}).items()
                if c["page_views"] or c["ticket_selected"] or c["checkout_started"]
            },
            "devices": {
                d: {"views": c["page_views"], "unique_views": c["unique_views"]}
                for d, c in mine.get("devices", {}).items()
                if c["page_views"] or c["ticket_selected"] or c["checkout_started"]
            },
        }
        for k in ("reservations", "registrations", "confirmations", "cancellations", "checkins",
                  "paid_registrations", "waitlist"):  # fmt: skip
            out[e]["kpis"][k] = 0
        # visits and conversion by the definitions (docs/analytics.md, "Funnel and attribution")
        out[e]["kpis"] |= {
            "visits": journey["visits"],
            "converted_visits": journey["converted_visits"],
            "registrations_without_visit": journey["registrations_without_visit"],
            "conversion_rate": conversion(journey),
        }
        out[e]["funnel"] = list(zip(STAGES, journey["funnel"], strict=True))
    counts = {
        "reservations": "SELECT event_id, NULL, count(*) FROM reservations GROUP BY 1",
        "registrations": "SELECT event_id, ticket_type_id, count(*) FROM registrations GROUP BY 1, 2",
        "confirmations": "SELECT event_id, ticket_type_id, count(*) FROM registrations "
        "WHERE confirmed_at IS NOT NULL GROUP BY 1, 2",
        "cancellations": "SELECT event_id, ticket_type_id, count(*) FROM registrations "
        "WHERE cancelled_at IS NOT NULL GROUP BY 1, 2",
        "checkins": "SELECT r.event_id, r.ticket_type_id, count(*) FROM check_ins c "
        "JOIN registrations r ON r.id = c.registration_id GROUP BY 1, 2",
        "paid_registrations": "SELECT event_id, NULL, count(*) FROM payments WHERE status IN "
        "('completed', 'partially_refunded', 'refunded') AND purpose IN ('full', 'deposit') "
        "GROUP BY 1",
        "waitlist": "SELECT event_id, NULL, count(*) FROM waitlist_entries "
        "WHERE status = 'waiting' GROUP BY 1",
    }
    for name, sql in counts.items():
        for event_id, tt, n in _by_event(engine, sql, events):
            out[str(event_id)]["kpis"][name] += int(n)
            if name in ("registrations", "cancellations", "checkins"):
                out[str(event_id)]["types"][str(tt)][name] += int(n)
    money = _by_event(
        engine,
        "SELECT p.event_id, r.ticket_type_id, p.currency, p.purpose, sum(p.amount) "
        "FROM payments p JOIN registrations r ON r.id = p.registration_id "
        "WHERE p.status IN ('completed', 'partially_refunded', 'refunded') GROUP BY 1, 2, 3, 4",
        events,
    )
    refunds = _by_event(
        engine,
        "SELECT p.event_id, r.ticket_type_id, f.currency, sum(f.amount) FROM refunds f "
        "JOIN payments p ON p.id = f.payment_id JOIN registrations r ON r.id = p.registration_id "
        "WHERE f.status = 'succeeded' GROUP BY 1, 2, 3",
        events,
    )
    zero = {"gross": 0, "refunds": 0, "net": 0, "full": 0, "deposits": 0, "remainders": 0}
    for event_id, tt, currency, purpose, amount in money:
        e = out[str(event_id)]
        r = e["revenue"].setdefault(currency, dict(zero))
        t = e["type_revenue"][str(tt)].setdefault(currency, {"gross": 0, "refunds": 0, "net": 0})
        for slot in (r, t):
            slot["gross"] += int(amount)
            slot["net"] += int(amount)
        r[{"full": "full", "deposit": "deposits", "remainder": "remainders"}[purpose]] += int(
            amount
        )
    for event_id, tt, currency, amount in refunds:
        e = out[str(event_id)]
        r = e["revenue"].setdefault(currency, dict(zero))
        t = e["type_revenue"][str(tt)].setdefault(currency, {"gross": 0, "refunds": 0, "net": 0})
        for slot in (r, t):
            slot["refunds"] += int(amount)
            slot["net"] -= int(amount)
    for e in out.values():
        k = e["kpis"]
        k["attendance_rate"] = _rate(k["checkins"], k["registrations"] - k["cancellations"])
        # the series over the event's whole history adds up to the KPIs
        e["series"] = {c: k[c] for c in SERIES}
        e["types"] = {t: dict(v) for t, v in e["types"].items()}
        e["type_revenue"] = {t: v for t, v in e["type_revenue"].items() if v}
    return out


def _no_visit() -> dict:
    return {"visits": 0, "converted_visits": 0, "registrations_without_visit": 0,
            "funnel": [0] * len(STAGES), "sources": {}}  # fmt: skip


def _attributed(source: dict | None) -> dict:
    """A source's visits, converted visits, credited registrations, conversion and revenue."""
    source = source or {"visits": 0, "converted_visits": 0, "registrations": 0, "revenue": {}}
    return {
        "visits": source["visits"],
        "converted_visits": source["converted_visits"],
        "registrations": source["registrations"],
        "conversion_rate": conversion(source),
        "revenue": dict(source["revenue"]),
    }


def observed(dashboard: dict) -> dict:
    """The same numbers, as the dashboard API shows them."""
    kpis = dict(dashboard["kpis"])
    return {
        "kpis": kpis,
        "series": {c: sum(b[c] for b in dashboard["series"]) for c in SERIES},
        "types": {
            str(t["ticket_type_id"]): {
                k: t[k] for k in ("registrations", "cancellations", "checkins")
            }
            for t in dashboard["ticket_types"]
            if t["registrations"] or t["cancellations"] or t["checkins"]
        },
        "type_revenue": {
            str(t["ticket_type_id"]): {
                m["currency"]: {k: m[k] for k in ("gross", "refunds", "net")} for m in t["revenue"]
            }
            for t in dashboard["ticket_types"]
            if t["revenue"]
        },
        "revenue": {m.pop("currency"): m for m in (dict(m) for m in dashboard["revenue"])},
        "sources": {
            s["source"]: {
                "page_views": s["views"],
                "unique_views": s["unique_views"],
                "ticket_selected": s["ticket_selected"],
                "checkout_started": s["checkout_started"],
                "visits": s["visits"],
                "converted_visits": s["converted_visits"],
                "registrations": s["registrations"],
                "conversion_rate": s["conversion_rate"],
                "revenue": {m["currency"]: m["gross"] for m in s["revenue"]},
            }
            for s in dashboard["sources"]
        },
        "devices": {
            d["device"]: {"views": d["views"], "unique_views": d["unique_views"]}
            for d in dashboard["devices"]
        },
        "funnel": [(f["stage"], f["count"]) for f in dashboard["funnel"]],
    }


def _expected_types(expected: dict) -> dict:
    return {t: v for t, v in expected["types"].items() if any(v.values())}


def dashboards(sim: Simulation) -> dict[str, dict]:
    out = {}
    for e in sim.events.values():
        response = sim.http.call(
            "GET", f"/analytics/events/{e['id']}/dashboard", account=sim.organizers[e["organizer"]]
        )
        assert response.status_code == 200, response.text
        out[e["id"]] = observed(response.json())
    return out


def converged(
    sim: Simulation, expected: dict[str, dict], timeout: float, logs: list[Path]
) -> dict[str, dict]:
    """Poll the dashboards until they say what is expected; fail with the difference and the
    end of the workers' logs (a slow machine's failure is otherwise mute about the cause)."""
    want = {e: {**x, "types": _expected_types(x)} for e, x in expected.items()}
    deadline = time.monotonic() + timeout
    while True:
        seen = dashboards(sim)
        if seen == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    tails = "\n".join(
        f"--- {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        for log in logs
        if log.exists()
    )
    for event_id in want:
        for part in want[event_id]:
            assert seen[event_id][part] == want[event_id][part], (event_id, part, tails)
    return seen


# --- the proof ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario", ["worker-restarted", "two-workers-one-killed", "broker-restarted"]
)
def test_generated_traffic_through_the_pipeline_equals_the_tables_exactly(
    scenario: str,
    request: pytest.FixtureRequest,
    settings: Settings,
    admin,
    owner_engine,
    relays,  # noqa: F811
    tmp_path: Path,
) -> None:
    from api.app import create_app

    port = free_port()
    s = platform_settings(
        settings,
        port,
        topic_namespace=f"aqtest-{uuid.uuid4().hex[:10]}",
        relay_poll_interval_s=0.2,
        relay_stats_interval_s=0.2,
        relay_publish_timeout_s=3.0,
        relay_backoff_max_s=0.5,
        relay_metrics_port=0,
        state_dir=tmp_path,
        **worker_fast(settings),
    )
    broker = None
    if scenario == "broker-restarted":  # a broker of its own, to stop mid-traffic
        broker = PrivateBroker(settings, tmp_path / "broker")
        request.addfinalizer(broker.kill)
        broker.start()
        # tracked actions wait out the restart instead of answering 503
        s = s.model_copy(
            update={"kafka_bootstrap": broker.bootstrap, "analytics_publish_timeout_s": 60.0}
        )
    app = create_app(s)
    log = tmp_path / "worker.log"
    with served(app, port=port) as url:
        stop = threading.Event()
        sessions = app.state.aq.sessionmaker

        def sweep() -> None:
            while not stop.wait(0.3):
                sweep_once(sessions, payment_timeout_s=s.payment_timeout_s)

        sweeper = threading.Thread(target=sweep, daemon=True)
        sweeper.start()
        worker = WorkerProcess(s, url, log)
        group = f"{s.topic_namespace}.worker"
        survivor = None
        if (
            scenario == "two-workers-one-killed"
        ):  # its own state folder: Faust keeps one per process
            (tmp_path / "second").mkdir()
            second = s.model_copy(update={"state_dir": tmp_path / "second"})
            survivor = WorkerProcess(second, url, tmp_path / "worker-2.log")
        sim = None
        try:
            relays(s, "relay-proof")
            sandbox = app.state.payments.providers.get("sandbox")
            sim = Simulation(
                build_plan(2034, "small"),
                url,
                admin=Account(admin["email"], "Admin", password="correct horse battery"),
                script_outcome=sandbox.script,
                progress=False,
                verification_key=verification_key(s),
            )
            sim.setup()

            # 1. traffic, with a kill -9 of the worker in the middle of it
            if survivor is not None:  # both share the group's partitions before the traffic
                wait_for(lambda: group_members(s, group) == 2, 90, "both workers in the group")
            runner = threading.Thread(target=sim.run, args=(VISITS,), daemon=True)
            runner.start()
            deadline = time.monotonic() + 60
            while sim.ledger.visits < VISITS // 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            if broker is not None:
                broker.stop()
                broker.start()
            elif survivor is None:
                worker.kill()
                worker = WorkerProcess(s, url, log)
            else:  # the dead member's session ends; the survivor takes every partition
                worker.kill()
                worker, survivor = survivor, None
                wait_for(lambda: group_members(s, group) == 1, 60, "the killed worker to leave")
            runner.join(timeout=120)
            assert not runner.is_alive(), "the generator did not finish"
            sim.settle(timeout_s=60)
            totals = sim.totals()
            assert totals["outcomes"].get("visit_failed", 0) == 0, totals["outcomes"]
            assert "tracking_unavailable" not in totals["outcomes"], "no tracking API"
            assert totals["tracking_filtered"] == 0
            events = [e["id"] for e in sim.events.values()]
            with sim.ledger.lock:
                tracked = list(sim.ledger.tracked)
            expected = expected_dashboards(owner_engine, totals, tracked, events)
            # the generator's own funnel (from its answers) is the tables' (their visitor ids)
            for event_id in events:
                mine = totals["events"].get(event_id, {}).get("journeys")
                if mine is not None:
                    assert {k: mine[k] for k in ATTRIBUTED} == {
                        "funnel": [n for _, n in expected[event_id]["funnel"]],
                        **{k: expected[event_id]["kpis"][k] for k in ATTRIBUTED if k != "funnel"},
                    }, event_id
            # returns as soon as the dashboards agree; a worker's rejoin after a kill can take
            # half a minute on a loaded 2-core machine before it processes anything again
            before = converged(sim, expected, 120, [log, tmp_path / "worker-2.log"])
            # ... and the generator's own totals, read from the API, say the same
            for event_id, seen in before.items():
                mine = totals["events"].get(event_id)
                if mine is None:
                    continue
                pairs = (("reservations", "reservations"), ("registrations", "registrations"),
                         ("confirmations", "confirmations"), ("cancellations", "cancellations"),
                         ("check_ins", "checkins"))  # fmt: skip
                assert {a: mine[a] for a, _ in pairs} == {a: seen["kpis"][b] for a, b in pairs}
                assert mine["waitlist_joined"] - mine["waitlist_left"] == seen["kpis"]["waitlist"]
            everything = totals["all"]
            assert everything["page_views"] > everything["unique_views"] > 0
            # every simulated registration came with its visitor: credited, converting visits
            assert everything["journeys"]["registrations_without_visit"] == 0
            assert 0 < everything["journeys"]["converted_visits"] < everything["journeys"]["visits"]
            assert everything["registrations"] > 0 and everything["check_ins"] > 0
            if scenario == "worker-restarted":  # the scenario's reach (timing shifts it in others)
                assert everything["refunds"] and everything["payments_failed"] > 0
            # the notifications the workers queued: each once, whoever handled its event (how
            # many there are depends on the accounts' channels and on earlier tests that signed
            # the same generated people up)
            with owner_engine.connect() as conn:
                twice = conn.execute(
                    text(
                        "SELECT count(*) - count(DISTINCT (source_event_id, template, user_id,"
                        " channel)) FROM notifications WHERE event_id = ANY(:e)"
                    ),
                    {"e": [uuid.UUID(e) for e in events]},
                ).scalar_one()
            assert twice == 0, twice

            # 2. replay every topic from the beginning: nothing changes
            worker.kill()  # stopped (Faust's own shutdown may take half a minute with Tansu)
            with owner_engine.connect() as conn:
                facts = conn.execute(
                    text("SELECT count(*) FROM warehouse.facts WHERE event_id = ANY(:e)"),
                    {"e": [uuid.UUID(e) for e in events]},
                ).scalar_one()
            # the Faust agents' group; the tracking topic's batch consumer has a group of its own
            tracking = tracking_topic(s).name
            topics = [t for t in namespace_topics(s) if t != tracking]
            assert reset_group(s, topics, f"{s.topic_namespace}.worker", "faust") > 0
            assert reset_group(s, [tracking], f"{s.topic_namespace}.worker.tracking", "roundrobin")
            worker = WorkerProcess(s, url, log)
            deadline = time.monotonic() + 150  # a worker's start and group join, then the replay
            while worker.facts_stored() < facts and time.monotonic() < deadline:
                time.sleep(0.25)
            assert worker.facts_stored() >= facts, "the replay did not reach every fact"
            assert dashboards(sim) == before
            with owner_engine.connect() as conn:
                again = conn.execute(
                    text("SELECT count(*) FROM warehouse.facts WHERE event_id = ANY(:e)"),
                    {"e": [uuid.UUID(e) for e in events]},
                ).scalar_one()
            assert again == facts
        finally:
            stop.set()
            for process in (worker, survivor):
                if process is not None:
                    process.kill()
            if sim is not None:
                sim.close()
            sweeper.join(timeout=10)
