"""Analytics benchmark: the stream worker's aggregation, freshness, and the dashboard API.

    python -m bench.analytics [--records 200000] [--facts 10000000] [--rate 5] [--seconds 20]
                              [--requests 300] [--quick] [--json out.json]

Three measurements on a local stack of its own (``.aqstream/bench-analytics``), a fresh database
and a topic namespace of its own:

(a) **aggregation throughput**: ``--records`` tracked actions are put on the tracking topic first;
    then a raw aiokafka consumer loop reads and decodes them all (the baseline), and then
    ``aqstream worker`` (the Faust app: its tracking service maps them to facts and stores them
    with ``warehouse.sink.ingest``, rollups included) works through the same records, and the raw
    loop reads them all once more: the baseline is the mean of its two runs, which bracket the
    workers. Rates are steady state: from the first record handled to the last (the worker's
    start-up and consumer-group join are not counted; they are printed). Target: worker >= 0.3
    x raw.
(b) **freshness**: API, relay and worker running; free registrations at ``--rate`` per second
    for ``--seconds``; a poller reads ``GET /analytics/events/{id}/dashboard`` every 50 ms. The
    k-th registration is visible when the dashboard counts k; its latency is from the moment its
    ``201`` arrived (the commit happened before) to the first poll that showed it. Target p95 < 2 s.
(c) **dashboard API latency with ``--facts`` tracked events** (default 10 M) in the warehouse:
    facts generated in SQL over 30 days and ten events of one organization, rollups rebuilt with
    ``warehouse.backfill`` (as ``aqstream backfill`` does), then ``--requests`` sequential
    dashboard requests per granularity for the busiest event. Target p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from aqstream.apiserver import api_server, child_process
from aqstream.stack.servers import free_port
from bench.kit import bench_stack, found_world, load_average, machine, open_sale, percentile, say
from bench.summary import bound_line, ratio_line
from core.settings import PROJECT_ROOT, Settings
from domain.analytics.tracking import Action, PublishedEvent, to_record
from domain.identity.tokens import TokenService
from streams.metrics import WorkerMetrics
from streams.relay import psycopg_dsn
from streams.topics import tracking_topic
from streams.tracking import make_tracking_producer, tracking_headers

TARGET_RATIO = 0.3  # the worker aggregates at least 30 % as fast as a raw consumer reads
TARGET_FRESH_P95_S = 2.0
TARGET_DASHBOARD_P95_MS = 100.0
SOURCES = ("google", "telegram", "vk", "newsletter", "direct")
DEVICES = ("desktop", "mobile", "tablet")
UNLIMITED = "1000000/second"


@dataclass
class Throughput:
    records: int
    raw_runs: tuple[float, float]  # the raw loop before the workers and after them
    worker_per_s: float
    worker_startup_s: float  # process start to the first fact stored
    worker_total_s: float  # process start to the last fact stored
    noop_per_s: float | None = None  # the same worker, its sink storing nothing

    @property
    def raw_per_s(self) -> float:
        """The baseline: the mean of the raw loop's runs around the workers (this machine's
        speed drifts by a third within minutes; bracketing lets the drift weigh on both sides)."""
        return sum(self.raw_runs) / len(self.raw_runs)

    @property
    def ratio(self) -> float:
        return self.worker_per_s / self.raw_per_s if self.raw_per_s else 0.0


@dataclass
class Freshness:
    rate: float
    registrations: int
    seen: int
    p50_s: float
    p95_s: float
    max_s: float


@dataclass
class Dashboard:
    facts: int
    events: int
    load_s: float  # generating the facts
    backfill_s: float  # rebuilding the rollups
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # granularity -> p50/p95


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


# --- (a) aggregation throughput ------------------------------------------------------------------


def put_tracking(settings: Settings, n: int, seed: int = 7) -> None:
    """``n`` tracked actions on the tracking topic: 10 tenants x 5 events, 20 000 visitors, times
    moving forward over the last 50 minutes (a backlog of live traffic, inside the warehouse's
    late window)."""
    rng = random.Random(seed)
    events = [
        PublishedEvent(uuid.uuid4(), tenant, frozenset())
        for tenant in (uuid.uuid4() for _ in range(10))
        for _ in range(5)
    ]
    make_tracking_producer(settings).close()  # creates the topic, as the API does
    topic = tracking_topic(settings).name
    now = datetime.now(UTC)
    started = time.monotonic()
    records = []
    for i in range(n):
        event = rng.choice(events)
        kind = rng.choices(("page_view", "ticket_selected", "checkout_started"), (85, 10, 5))[0]
        action = Action(
            type=kind,
            event_id=event.event_id,
            visitor_id=f"v{rng.randrange(20_000)}",
            session_id=f"s{rng.randrange(40_000)}",
            id=uuid.UUID(int=rng.getrandbits(128)),
            # live traffic: times move forward (a 50-minute backlog), a few seconds of jitter
            occurred_at=now - timedelta(seconds=3000 * (1 - i / n) + rng.uniform(0, 5)),
            utm_source=rng.choice(SOURCES),
            device=rng.choice(DEVICES),
        )
        records.append(to_record(action, event, now, "desktop"))

    async def send_all() -> None:  # aiokafka: the setup is not what is measured
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20,
            max_batch_size=1 << 20,
        )  # fmt: skip
        await producer.start()
        try:
            for i in range(0, len(records), 5000):
                futures = [
                    await producer.send(
                        topic,
                        key=r.key.encode(),
                        value=json.dumps(r.value, separators=(",", ":")).encode(),
                        headers=tracking_headers(r, None),
                    )
                    for r in records[i : i + 5000]
                ]
                await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send_all())
    say(f"  {n:,} tracked actions on {topic} in {time.monotonic() - started:.1f} s")


def raw_consume(settings: Settings, n: int) -> float:
    """A plain aiokafka loop over the tracking topic: fetch, decode the JSON; records/s."""
    from aiokafka import AIOKafkaConsumer

    async def loop() -> float:
        consumer = AIOKafkaConsumer(
            tracking_topic(settings).name,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=settings.worker_fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            seen, first = 0, None
            while seen < n:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batches.values():
                    for record in records:
                        json.loads(record.value)
                        seen += 1
                        if first is None:
                            first = time.monotonic()
            assert first is not None
            return (n - 1) / (time.monotonic() - first)
        finally:
            await consumer.stop()

    return asyncio.run(loop())


def _count_facts(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:  # the owner: not bound by row level security
        return conn.execute("SELECT count(*) FROM warehouse.facts").fetchone()[0]


def child(settings: Settings, name: str, log: Path, module: str = "aqstream", **env: str):
    """``python -m <module> <name>`` with the bench's settings (``aqstream.apiserver``'s
    ``child_process``: stopped with SIGTERM)."""
    return child_process([sys.executable, "-m", module, name], settings, log, **env)


def worker_env(settings: Settings) -> dict[str, str]:
    return {
        "AQSTREAM_TOPIC_NAMESPACE": settings.topic_namespace,
        "AQSTREAM_WORKER_METRICS_PORT": "0",
        "AQSTREAM_RELAY_METRICS_PORT": "0",
        "AQSTREAM_LOG_JSON": "false",
        "AQSTREAM_LOG_LEVEL": "WARNING",
    }


def worker_aggregate(settings: Settings, n: int, log: Path) -> tuple[float, float, float]:
    """Start the worker and time it through the ``n`` records: (facts/s steady, start-up s,
    total s). Progress comes from the worker's metrics (counting the facts table 20 times a
    second would take a tenth of a core from the database being measured); the facts table is
    counted once at the end: every record must be a stored fact."""
    dsn = psycopg_dsn(settings)
    before = _count_facts(dsn)
    port = free_port()
    env = {**worker_env(settings), "AQSTREAM_WORKER_METRICS_PORT": str(port)}
    with child(settings, "worker", log, **env) as proc, _metrics(port) as http:
        timing = _steady(proc, n, log, lambda: _handed_over(http))
    stored = _count_facts(dsn) - before
    if stored != n:
        raise RuntimeError(
            f"the worker reported {n:,} facts stored, the warehouse holds {stored:,}"
        )
    return timing


def noop_aggregate(settings: Settings, n: int, log: Path) -> float:
    """The worker with a sink that stores nothing (bench/analytics_noop_worker.py), in a consumer
    group of its own, through the same ``n`` records: records/s steady, from its metrics."""
    port = free_port()
    env = {
        **worker_env(settings),
        "AQSTREAM_WORKER_GROUP": f"{settings.topic_namespace}.noop",
        "AQSTREAM_WORKER_METRICS_PORT": str(port),
    }
    worker = child(settings, "worker", log, module="bench.analytics_noop_worker", **env)
    with worker as proc, _metrics(port) as http:
        return _steady(proc, n, log, lambda: _handed_over(http))[0]


def _handed_over(http: httpx.Client) -> int:
    """Facts the worker's sink took (committed), from its metrics (0 until they serve). One
    client for all the polls: a new ``httpx.get`` each time builds an SSL context, some 40 ms of
    CPU, and 20 of them a second took half a core from the worker being measured."""
    try:
        body = http.get("/metrics").text
    except httpx.HTTPError:
        return 0
    return WorkerMetrics.facts_stored(body)


def _metrics(port: int) -> httpx.Client:
    """The worker's metrics, uncompressed: prometheus_client gzips the page for a client that
    accepts it (httpx's default), in the worker being measured."""
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=2, headers={"Accept-Encoding": "identity"}
    )


def _steady(
    proc: subprocess.Popen, n: int, log: Path, done: Callable[[], int]
) -> tuple[float, float, float]:
    """Poll ``done()`` until it reaches ``n``: (per second from the first to the last, start-up
    s, total s)."""
    started = time.monotonic()
    first_t = first_n = None
    deadline = started + max(300, n / 200)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{log.read_text()[-3000:]}")
        count = done()
        now = time.monotonic()
        if count and first_t is None:
            first_t, first_n = now, count
        if count >= n:
            break
        if now > deadline:
            raise RuntimeError(f"the worker handled {count:,} of {n:,} records in time")
        time.sleep(0.05)
    assert first_t is not None and first_n is not None
    steady = (n - first_n) / (now - first_t) if now > first_t else float("nan")
    return steady, first_t - started, now - started


# --- (b) freshness -------------------------------------------------------------------------------


def freshness(
    url: str, owner_headers: dict, participants: list[dict], event, rate: float, seconds: float
) -> Freshness:
    """Registrations at ``rate``/s (open loop); a poller watches the dashboard's count."""
    n = int(rate * seconds)
    committed: list[float] = []  # when the k-th 201 arrived, in order of arrival
    lock = threading.Lock()
    stop = threading.Event()
    visible: list[tuple[float, int]] = []  # (time, count) whenever the count rose
    dashboard = f"/api/v1/analytics/events/{event.event_id}/dashboard"

    def poll() -> None:
        last = 0
        with httpx.Client(base_url=url, timeout=10, headers=owner_headers) as http:
            while not stop.is_set():
                response = http.get(dashboard)
                if response.status_code == 200:
                    count = response.json()["kpis"]["registrations"]
                    if count > last:
                        visible.append((time.monotonic(), count))
                        last = count
                time.sleep(0.05)

    def register(i: int, http: httpx.Client) -> None:
        response = http.post(
            f"/api/v1/events/{event.event_id}/registrations",
            json={"ticket_type_id": event.ticket_type(i)},
            headers=participants[i],
        )
        if response.status_code == 201:
            with lock:
                committed.append(time.monotonic())
        else:
            say(f"  registration {i}: HTTP {response.status_code} {response.text[:200]}")

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    start = time.monotonic()
    threads = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(n):
            due = start + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            t = threading.Thread(target=register, args=(i, http))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    deadline = time.monotonic() + 30
    while (not visible or visible[-1][1] < len(committed)) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join(timeout=5)
    latencies_ms = []
    for k, at in enumerate(sorted(committed), start=1):
        seen = next((t for t, count in visible if count >= k), None)
        if seen is not None:
            latencies_ms.append(max(0.0, seen - at) * 1000)
    latencies_ms.sort()
    return Freshness(
        rate=rate,
        registrations=len(committed),
        seen=len(latencies_ms),
        p50_s=percentile(latencies_ms, 0.5) / 1000,
        p95_s=percentile(latencies_ms, 0.95) / 1000,
        max_s=max(latencies_ms, default=0.0) / 1000,
    )


# --- (c) dashboard latency over many facts -------------------------------------------------------

GENERATE = """
INSERT INTO warehouse.facts (tenant_id, fact_id, occurred_at, kind, event_id, ticket_type_id,
    quantity, amount, visitor_id, session_id, source, device)
SELECT %(tenant)s, gen_random_uuid(), %(start)s + (g * %(span)s / %(n)s) * interval '1 second',
    (ARRAY['page_view','page_view','page_view','page_view','page_view','page_view',
           'page_view','page_view','ticket_selected','checkout_started'])[1 + (hashint %% 10)],
    (%(events)s::uuid[])[1 + ((g * 7) %% %(k)s)], NULL, 1, 0,
    'v' || (hashint %% 200000), 's' || (hashint %% 400000),
    (ARRAY['google','telegram','vk','newsletter','direct'])[1 + (hashint %% 5)],
    (ARRAY['desktop','mobile','tablet'])[1 + (hashint %% 3)]
FROM (SELECT g, abs(hashint8(g)) AS hashint
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g) AS s
"""


def load_facts(settings: Settings, tenant: str, events: list[str], n: int) -> float:
    """``n`` tracked actions over the last 30 days, spread over ``events``; seconds taken."""
    start = datetime.now(UTC) - timedelta(days=30)
    span = 30 * 24 * 3600 - 60
    started = time.monotonic()
    chunk = 1_000_000
    from tqdm import tqdm

    with (
        psycopg.connect(psycopg_dsn(settings), autocommit=True) as conn,
        tqdm(total=n, unit="fact", unit_scale=True, desc="facts") as bar,
    ):
        conn.execute("SELECT warehouse.create_partitions(%s, 3)", (start.date(),))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk) - 1
            conn.execute(
                GENERATE,
                {"tenant": tenant, "start": start, "span": span, "n": n, "events": events,
                 "k": len(events), "lo": lo, "hi": hi},
            )  # fmt: skip
            bar.update(hi - lo + 1)
        conn.execute("ANALYZE warehouse.facts")
    return time.monotonic() - started


def rebuild_rollups(settings: Settings) -> float:
    from sqlalchemy import create_engine
    from tqdm import tqdm

    from warehouse.backfill import backfill
    from warehouse.engine import warehouse_engine

    started = time.monotonic()
    owner = create_engine(settings.owner_url)
    app = warehouse_engine(settings)
    try:
        with tqdm(unit="event", desc="backfill") as bar:
            backfill(owner, app, progress=lambda _t: bar.update(1))
        with psycopg.connect(psycopg_dsn(settings), autocommit=True) as conn:
            conn.execute("ANALYZE")
    finally:
        owner.dispose()
        app.dispose()
    return time.monotonic() - started


def dashboard_latency(
    url: str, headers: dict, event_id: str, requests: int
) -> dict[str, dict[str, float]]:
    now = datetime.now(UTC)
    cases = {
        "hour, 30 days": {"granularity": "hour"},
        "day, 30 days": {"granularity": "day"},
        "minute, last 6 h": {
            "granularity": "minute",
            "from": (now - timedelta(hours=6)).isoformat(),
        },
    }
    out = {}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        for name, params in cases.items():
            path = f"/api/v1/analytics/events/{event_id}/dashboard"
            for _ in range(10):  # warm: connection pools, plans
                http.get(path, params=params).raise_for_status()
            samples = []
            for _ in range(requests):
                t = time.perf_counter()
                response = http.get(path, params=params)
                samples.append((time.perf_counter() - t) * 1000)
                response.raise_for_status()
            samples.sort()
            out[name] = {
                "p50_ms": round(percentile(samples, 0.5), 1),
                "p95_ms": round(percentile(samples, 0.95), 1),
                "p99_ms": round(percentile(samples, 0.99), 1),
            }
    return out


# --- report and main -----------------------------------------------------------------------------


def report(
    info: dict[str, Any], a: Throughput | None, b: Freshness | None, c: Dashboard | None
) -> dict[str, Any]:
    say()
    say(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}; load average before/after {info['load_before']} / "
        f"{info.get('load_after')}"
    )
    summary = []
    if a:
        say(
            f"(a) {a.records:,} tracked actions: raw aiokafka loop {a.raw_per_s:,.0f} records/s "
            f"(mean of {a.raw_runs[0]:,.0f} before the workers and {a.raw_runs[1]:,.0f} after); "
            f"worker (tracking service + warehouse sink) {a.worker_per_s:,.0f} facts/s "
            f"steady (start-up {a.worker_startup_s:.1f} s, all stored after {a.worker_total_s:.1f} s)"
            f"; ratio {a.ratio:.2f} (target >= {TARGET_RATIO})"
        )
        if a.noop_per_s and not math.isnan(a.noop_per_s):
            say(
                f"    the worker with a sink that stores nothing: {a.noop_per_s:,.0f} records/s "
                f"({a.noop_per_s / a.raw_per_s:.2f} of raw): its ceiling without the warehouse"
            )
        summary.append(
            ratio_line(
                "analytics", "tracked actions/s aggregated by the worker", round(a.worker_per_s, 1),
                round(a.raw_per_s, 1), "raw aiokafka consumer loop", "records/s", TARGET_RATIO,
            )
        )  # fmt: skip
    if b:
        say(
            f"(b) {b.registrations} registrations at {b.rate:g}/s, {b.seen} seen on the dashboard: "
            f"commit -> visible p50 {b.p50_s:.2f} s, p95 {b.p95_s:.2f} s, max {b.max_s:.2f} s "
            f"(target p95 < {TARGET_FRESH_P95_S:g} s)"
        )
        summary.append(
            bound_line(
                "analytics", "registration -> dashboard p95", round(b.p95_s * 1000, 1), "ms",
                TARGET_FRESH_P95_S * 1000,
            )
        )  # fmt: skip
    if c:
        say(
            f"(c) {c.facts:,} tracked actions over {c.events} events in the warehouse (generated in "
            f"{c.load_s:.0f} s, rollups rebuilt in {c.backfill_s:.0f} s); dashboard API latency:"
        )
        for name, lat in c.latency_ms.items():
            say(
                f"    {name}: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms"
            )
            summary.append(
                bound_line(
                    "analytics", f"dashboard p95, {c.facts / 1e6:g} M facts, {name}",
                    lat["p95_ms"], "ms", TARGET_DASHBOARD_P95_MS,
                )
            )  # fmt: skip
    for line in summary:
        say(f"  {line.measure}: {'met' if line.met else 'NOT MET'}")
    return {
        "machine": info,
        "throughput": {**asdict(a), "raw_per_s": a.raw_per_s, "ratio": a.ratio} if a else None,
        "freshness": asdict(b) if b else None,
        "dashboard": asdict(c) if c else None,
        "summary": [line.asdict() for line in summary],
    }


def platform_runs(
    settings: Settings, args: argparse.Namespace, logs: Path, env: dict[str, str]
) -> tuple[Freshness | None, Dashboard | None]:
    """(b) and (c): the API, relay and worker running on the bench's stack."""
    b = c = None
    people = int(args.rate * args.seconds) + 10
    with (
        api_server(
            settings, workers=1, log=logs / "api.log",
            AQSTREAM_RATE_LIMIT_USER=UNLIMITED, AQSTREAM_RATE_LIMIT_IP=UNLIMITED,
            AQSTREAM_RATE_LIMIT_AUTH=UNLIMITED, **env,
        ) as (url, _pid),
        child(settings, "relay", logs / "relay.log", **env),
        child(settings, "worker", logs / "worker-b.log", **env),
    ):  # fmt: skip
        world = found_world(url, settings, people)
        if "b" not in args.skip:
            say(f"(b) freshness: {args.rate:g} registrations/s for {args.seconds:g} s ...")
            sale = open_sale(url, world, people, "Freshness", event_capacity=False)
            time.sleep(3)  # the worker's group is joined (its first poll), as in production
            b = freshness(url, world.owner_headers, world.headers, sale, args.rate, args.seconds)
        if "c" not in args.skip:
            say(f"(c) dashboard over {args.facts:,} facts: generating ...")
            events = [
                open_sale(url, world, 10, f"Busy event {k}", event_capacity=False).event_id
                for k in range(10)
            ]
            me = httpx.get(f"{url}/api/v1/users/me", headers=world.owner_headers, timeout=30)
            owner_id = uuid.UUID(me.json()["id"])
            load_s = load_facts(settings, world.organization_id, events, args.facts)
            say("  rebuilding the rollups (warehouse.backfill) ...")
            backfill_s = rebuild_rollups(settings)
            c = Dashboard(args.facts, len(events), round(load_s, 1), round(backfill_s, 1))
            # The sign-up's access token (15 min) may have expired meanwhile: a fresh one, signed
            # with the server's key, as bench.flash_sale does for its participants.
            token = TokenService.from_settings(settings).issue(owner_id)[0]
            owner = {"Authorization": f"Bearer {token}"}
            response = httpx.get(
                f"{url}/api/v1/analytics/events/{events[0]}/dashboard",
                headers=owner,
                timeout=60,
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"the dashboard answered {response.status_code}: {response.text}"
                )
            views = response.json()["kpis"]["views"]
            say(f"  the busiest event's dashboard counts {views:,} views")
            assert views > 0, "the generated facts are not on the dashboard"
            c.latency_ms = dashboard_latency(url, owner, events[0], args.requests)
    return b, c


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="(a) tracked actions")
    parser.add_argument("--rate", type=float, default=5.0, help="(b) registrations/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="(b) how long")
    parser.add_argument("--facts", type=int, default=10_000_000, help="(c) facts in the warehouse")
    parser.add_argument("--requests", type=int, default=300, help="(c) per granularity")
    parser.add_argument("--quick", action="store_true", help="20k records, 10 s, 1 M facts")
    parser.add_argument("--skip", action="append", default=[], choices=["a", "b", "c"])
    parser.add_argument(
        "--state-dir", type=Path, default=PROJECT_ROOT / ".aqstream" / "bench-analytics"
    )
    parser.add_argument("--keep-stack", action="store_true", help="leave the local servers up")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.seconds, args.facts, args.requests = 20_000, 10.0, 1_000_000, 100
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    info: dict[str, Any] = {**machine(), "load_before": load_average()}
    a = b = c = None
    logs = args.state_dir / "logs"
    try:
        with bench_stack(args.state_dir, args.keep_stack, "aqstream_bench_analytics") as base:
            settings = base.model_copy(update={"topic_namespace": f"bench{uuid.uuid4().hex[:6]}"})
            env = worker_env(settings)
            if "a" not in args.skip:
                say(f"(a) aggregation: {args.records:,} tracked actions ...")
                put_tracking(settings, args.records)
                raw = raw_consume(settings, args.records)
                say(f"  raw aiokafka loop: {raw:,.0f} records/s; the worker, its sink off ...")
                noop = noop_aggregate(settings, args.records, logs / "worker-a-noop.log")
                say(
                    f"  sink off: {noop:,.0f} records/s (nan: too few records to time); the worker ..."
                )
                steady, startup, total = worker_aggregate(
                    settings, args.records, logs / "worker-a.log"
                )
                after = raw_consume(settings, args.records)
                say(f"  raw aiokafka loop again: {after:,.0f} records/s")
                a = Throughput(args.records, (raw, after), steady, startup, total, noop)
            if not {"b", "c"} <= set(args.skip):
                b, c = platform_runs(settings, args, logs, env)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    info["load_after"] = load_average()
    result = report(info, a, b, c)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
