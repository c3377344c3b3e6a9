"""Outbox relay: rows relayed per second against a raw producer, and commit-to-topic latency.

Two measurements on a local stack of its own (``.aqstream/bench-relay``) and a fresh database:

1. **Throughput.** The outbox holds N rows (registration.created payloads over many
   aggregates). The relay (``Relay.relay_available``: claim, read, publish, wait for the acks,
   mark) publishes them all; the baseline, side by side, is a raw kafka-python producer with the
   same settings sending the very same messages (key, value, headers, prepared in memory
   beforehand) and flushing. Several rounds, alternating which goes first; the figure is the
   median ratio.
2. **Latency.** ``aqstream relay`` runs as its own process, as in production, while writer
   threads commit one outbox row per transaction at a steady rate (open loop: each commit is
   due at its time, whatever the previous ones did). For each row: commit to acknowledged by the
   broker and marked sent (``sent_at``), and commit to received by a plain consumer.

Everything is stopped and removed at the end, Ctrl-C included::

    python -m bench.relay [--rows 20000] [--aggregates 5000] [--rounds 3] [--rate 500]
                          [--seconds 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench.kit import bench_stack, load_average, machine, say, show_table
from bench.summary import bound_line, ratio_line
from core.settings import PROJECT_ROOT, Settings
from domain.contracts import validated_payload
from domain.db import uuid7
from domain.outbox.records import Row, headers
from domain.registration.events import RegistrationCreated
from streams.relay import _READ, Relay, psycopg_dsn
from streams.relay import relay_producer as make_producer
from streams.topics import topic_name

TARGET_RATIO = 0.7  # the relay publishes at least 70 % as fast as a raw producer
TARGET_P99_MS = 200.0  # commit to topic at a steady 500 events/s
WRITERS = 8  # enough that a slow commit (fsync on a busy machine) does not hold the rate back


# --- data -------------------------------------------------------------------------------------------


def payload(aggregate: uuid.UUID) -> dict[str, Any]:
    """A real registration.created payload (about 500 bytes), checked against its schema."""
    return validated_payload(
        RegistrationCreated(
            aggregate_id=aggregate,
            tenant_id=uuid.uuid4(),
            registration_id=aggregate,
            event_id=uuid.uuid4(),
            ticket_type_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            quantity=1,
            status="confirmed",
            payment_mode="free",
            currency="EUR",
            amount_total=0,
            amount_due_now=0,
            reservation_id=uuid.uuid4(),
        )
    )


INSERT = (
    "INSERT INTO outbox (id, tenant_id, aggregate_type, aggregate_id, event_type, payload, headers)"
    " VALUES (%s, %s, 'registration', %s, 'registration.created', %s, %s)"
)


def fill(dsn: str, rows: int, aggregates: int) -> None:
    """``rows`` unsent rows over ``aggregates`` aggregates, interleaved, in large transactions."""
    ids = [uuid.uuid4() for _ in range(aggregates)]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for start in range(0, rows, 5000):
            batch = []
            for n in range(start, min(rows, start + 5000)):
                aggregate = ids[n % aggregates]
                body = payload(aggregate)
                cid = Jsonb({"correlation_id": uuid.uuid4().hex})
                batch.append((uuid7(), body["tenant_id"], aggregate, Jsonb(body), cid))
            cur.executemany(INSERT, batch)
            conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE outbox")


def messages(dsn: str) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """The unsent rows as the relay would send them: (key, value, headers)."""
    everything = _READ.replace("AND aggregate_id = ANY(%(aggregates)s)", "")
    with psycopg.connect(dsn) as conn:
        rows = [Row(*r) for r in conn.execute(everything, {"batch": 10**9})]
    return [(r.aggregate_id.encode(), r.payload.encode(), headers(r)) for r in rows]


# --- 1. throughput ----------------------------------------------------------------------------------


@dataclass
class Round:
    relay_per_s: float
    raw_per_s: float
    relay_cpu_us: float  # this process's CPU per message (relay: also the psycopg side)
    raw_cpu_us: float
    ratio: float = field(init=False)

    def __post_init__(self) -> None:
        self.ratio = self.relay_per_s / self.raw_per_s if self.raw_per_s else 0.0


def relay_run(settings: Settings, rows: int) -> tuple[float, float]:
    relay = Relay(settings, name="bench")
    try:
        relay.refresh_stats()  # connections and topics made before the clock starts
        started, cpu = time.perf_counter(), time.process_time()
        published = relay.relay_available()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        relay.close()
    if published != rows:
        raise RuntimeError(f"the relay published {published} of {rows} rows")
    return rows / seconds, cpu / rows * 1e6


def raw_run(settings: Settings, prepared: list[tuple[bytes, bytes, Any]]) -> tuple[float, float]:
    producer = make_producer(settings, "bench-raw")
    topic = topic_name("registration", f"bench-raw-{uuid.uuid4().hex[:6]}")
    try:
        producer.send(topic, b"warm-up").get(timeout=30)  # topic and connection ready
        started, cpu = time.perf_counter(), time.process_time()
        for key, value, hdrs in prepared:
            producer.send(topic, key=key, value=value, headers=hdrs)
        producer.flush()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        producer.close()
    return len(prepared) / seconds, cpu / len(prepared) * 1e6


class _Acked:
    """A future the broker has already acknowledged (for the no-broker analysis run)."""

    is_done = True
    exception = None

    def __init__(self, topic: str) -> None:
        self.value = type("Metadata", (), {"topic": topic})()

    def succeeded(self) -> bool:
        return True

    def get(self, timeout: float | None = None) -> Any:
        return self.value


class NoBroker:
    """A producer that acknowledges at once and sends nothing: what the relay costs by itself
    (the database work and building the records), without kafka-python's share."""

    def send(self, topic: str, **_: Any) -> _Acked:
        return _Acked(topic)

    def close(self, timeout: float | None = None) -> None:
        pass


def no_broker_run(settings: Settings, rows: int, aggregates: int) -> tuple[float, float]:
    fill(psycopg_dsn(settings), rows, aggregates)
    relay = Relay(settings, name="bench-nobroker", producer_factory=lambda *_: NoBroker())
    try:
        relay.refresh_stats()
        started, cpu = time.perf_counter(), time.process_time()
        published = relay.relay_available()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        relay.close()
    return published / seconds, cpu / published * 1e6


def throughput(settings: Settings, rows: int, aggregates: int, rounds: int) -> list[Round]:
    dsn = psycopg_dsn(settings)
    results = []
    for n in range(rounds):
        fill(dsn, rows, aggregates)
        prepared = messages(dsn)
        ns = settings.model_copy(update={"topic_namespace": f"bench-{uuid.uuid4().hex[:6]}"})
        if n % 2 == 0:
            relay = relay_run(ns, rows)
            raw = raw_run(settings, prepared)
        else:
            raw = raw_run(settings, prepared)
            relay = relay_run(ns, rows)
        result = Round(relay[0], raw[0], relay[1], raw[1])
        say(
            f"  round {n + 1}: relay {result.relay_per_s:,.0f} rows/s, raw producer "
            f"{result.raw_per_s:,.0f} msg/s, ratio {result.ratio:.2f} "
            f"(load {os.getloadavg()[0]:.1f})"
        )
        results.append(result)
    return results


# --- 2. latency at a steady rate ----------------------------------------------------------------------


@contextlib.contextmanager
def relay_process(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQSTREAM_")}
    env.update(
        {
            "AQSTREAM_DATABASE_URL": settings.owner_url.render_as_string(hide_password=False),
            "AQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
            "AQSTREAM_REDIS_URL": settings.redis_url or "",
            "AQSTREAM_S3_ENDPOINT": settings.s3_endpoint or "",
            "AQSTREAM_TOPIC_NAMESPACE": settings.topic_namespace,
            "AQSTREAM_RELAY_METRICS_PORT": "0",
            "AQSTREAM_LOG_JSON": "false",
        }
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aqstream", "relay"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class Latency:
    rate: float
    seconds: float
    written: int
    received: int
    achieved_rate: float  # events committed per second, first due time to last commit
    offered_late_ms_p99: float  # how late the writers were against their schedule
    commit_ms_p99: float  # one writer transaction (INSERT + COMMIT)
    commit_ms_max: float
    acked_p50_ms: float
    acked_p99_ms: float
    consumer_p50_ms: float
    consumer_p99_ms: float
    consumer_max_ms: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(settings: Settings, rate: float, seconds: float, log: Path) -> Latency:
    from kafka import KafkaConsumer, TopicPartition

    ns = settings.model_copy(update={"topic_namespace": f"bench-lat-{uuid.uuid4().hex[:6]}"})
    dsn = psycopg_dsn(settings)
    topic = topic_name("registration", ns.topic_namespace)
    committed: dict[str, float] = {}
    received: dict[str, float] = {}
    late: list[float] = []
    commit_ms: list[float] = []
    stop = threading.Event()

    with relay_process(ns, log):
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,  # Tansu answers a fetch only at its max wait (Kafka at once)
        )
        deadline = time.monotonic() + 60
        while not consumer.partitions_for_topic(topic):  # the relay creates it at start-up
            if time.monotonic() > deadline:
                raise RuntimeError(f"the relay did not create {topic}; see {log}")
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        consumer.seek_to_beginning()

        def consume() -> None:
            while not stop.is_set():
                for batch in consumer.poll(timeout_ms=50).values():
                    now = time.time()
                    for record in batch:
                        event_id = next(v for k, v in record.headers if k == "event_id")
                        received.setdefault(event_id.decode(), now)

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        time.sleep(1.0)  # the relay is idle and listening

        total = int(rate * seconds)
        start = time.monotonic() + 0.1
        last = [start]

        def write(offset: int) -> None:
            with psycopg.connect(dsn) as conn:
                for n in range(offset, total, WRITERS):
                    due = start + n / rate
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    aggregate = uuid.uuid4()
                    body = payload(aggregate)
                    event_id = uuid7()
                    begun = time.monotonic()
                    late.append(max(0.0, begun - due) * 1000)
                    conn.execute(
                        INSERT,
                        (event_id, body["tenant_id"], aggregate, Jsonb(body), Jsonb({})),
                    )
                    conn.commit()
                    committed[str(event_id)] = time.time()
                    commit_ms.append((time.monotonic() - begun) * 1000)
                    last[0] = max(last[0], time.monotonic())

        writers = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        deadline = time.monotonic() + 30
        while len(received.keys() & committed.keys()) < len(committed):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        stop.set()
        reader.join(timeout=5)
        consumer.close()

    with psycopg.connect(dsn) as conn:
        sent = dict(
            conn.execute(
                "SELECT id::text, extract(epoch FROM sent_at)::float8 FROM outbox"
                " WHERE id = ANY(%s::uuid[]) AND sent_at IS NOT NULL",
                (list(committed),),
            ).fetchall()
        )
    acked = [(sent[i] - t) * 1000 for i, t in committed.items() if i in sent]
    seen = [(received[i] - t) * 1000 for i, t in committed.items() if i in received]
    return Latency(
        rate=rate,
        seconds=seconds,
        written=len(committed),
        received=len(seen),
        achieved_rate=round(len(committed) / (last[0] - start), 1),
        offered_late_ms_p99=round(percentile(late, 0.99), 1),
        commit_ms_p99=round(percentile(commit_ms, 0.99), 1),
        commit_ms_max=round(max(commit_ms, default=float("nan")), 1),
        acked_p50_ms=round(percentile(acked, 0.50), 1),
        acked_p99_ms=round(percentile(acked, 0.99), 1),
        consumer_p50_ms=round(percentile(seen, 0.50), 1),
        consumer_p99_ms=round(percentile(seen, 0.99), 1),
        consumer_max_ms=round(max(seen, default=float("nan")), 1),
    )


# --- report and main -------------------------------------------------------------------------------------


def report(rounds: list[Round], lat: Latency, info: dict[str, Any]) -> dict[str, Any]:
    ratio = statistics.median(r.ratio for r in rounds) if rounds else float("nan")
    verdict = {
        "ratio_median": round(ratio, 3),
        "ratio_target": TARGET_RATIO,
        "ratio_met": ratio >= TARGET_RATIO,
        "p99_ms": lat.consumer_p99_ms,
        "p99_target_ms": TARGET_P99_MS,
        "p99_met": lat.consumer_p99_ms < TARGET_P99_MS and lat.received == lat.written,
    }
    say()
    say(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']} GiB RAM, "
        f"PostgreSQL {info['postgres']} (fsync={info['fsync']}), Python {info['python']}; "
        f"load average before/after {info['load_before']} / {info['load_after']}"
    )
    say(
        f"throughput: {info['rows']:,} rows over {info['aggregates']:,} aggregates, batches of "
        f"{info['batch']}, {len(rounds)} rounds"
    )
    head = (
        "round",
        "relay rows/s",
        "raw producer msg/s",
        "ratio",
        "relay CPU µs/row",
        "raw CPU µs/msg",
    )
    rows = [
        (
            str(n + 1),
            f"{r.relay_per_s:,.0f}",
            f"{r.raw_per_s:,.0f}",
            f"{r.ratio:.2f}",
            f"{r.relay_cpu_us:.0f}",
            f"{r.raw_cpu_us:.0f}",
        )
        for n, r in enumerate(rounds)
    ]
    show_table("Outbox relay against a raw kafka-python producer", head, rows)
    say(
        f"analysis: the relay with a producer that acknowledges at once and sends nothing: "
        f"{info['no_broker_per_s']:,} rows/s, {info['no_broker_cpu_us']} µs of this process's "
        "CPU per row (the rest of the relay's time per row is kafka-python's, as in the raw run)"
    )
    say(
        f"latency at {lat.rate:.0f} events/s offered for {lat.seconds:.0f} s ({WRITERS} writers, "
        f"one event per transaction): achieved {lat.achieved_rate:.0f}/s, writers late p99 "
        f"{lat.offered_late_ms_p99} ms, a transaction p99 {lat.commit_ms_p99} ms (max "
        f"{lat.commit_ms_max} ms); {lat.received}/{lat.written} received"
    )
    say(
        f"  commit -> acknowledged and marked sent: p50 {lat.acked_p50_ms} ms, "
        f"p99 {lat.acked_p99_ms} ms"
    )
    say(
        f"  commit -> received by a consumer:       p50 {lat.consumer_p50_ms} ms, "
        f"p99 {lat.consumer_p99_ms} ms, max {lat.consumer_max_ms} ms"
    )
    say()
    met = "met" if verdict["ratio_met"] else "NOT MET"
    if rounds:
        say(
            f"relay / raw producer, median of rounds: {ratio:.2f} (target >= {TARGET_RATIO}): {met}"
        )
    met = "met" if verdict["p99_met"] else "NOT MET"
    say(
        f"commit -> topic p99 at {lat.rate:.0f}/s: {lat.consumer_p99_ms} ms "
        f"(target < {TARGET_P99_MS:.0f} ms): {met}"
    )
    return {
        "machine": info,
        "rounds": [asdict(r) for r in rounds],
        "latency": asdict(lat),
        "verdict": verdict,
        "summary": [
            line.asdict()
            for line in (
                ratio_line(
                    "outbox relay",
                    "events/s published (median round)",
                    round(statistics.median(r.relay_per_s for r in rounds), 1) if rounds else 0,
                    round(statistics.median(r.raw_per_s for r in rounds), 1) if rounds else 0,
                    "raw kafka-python producer",
                    "msg/s",
                    TARGET_RATIO,
                ),
                bound_line(
                    "outbox relay",
                    f"commit -> consumer p99 at {lat.rate:.0f}/s",
                    lat.consumer_p99_ms,
                    "ms",
                    TARGET_P99_MS,
                ),
            )
        ],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relay",
        description="Outbox relay against a raw producer, and its latency (bench/README.md).",
    )
    parser.add_argument("--rows", type=int, default=20_000, help="outbox rows per round (20000)")
    parser.add_argument("--aggregates", type=int, default=5_000, help="over so many (5000)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (3)")
    parser.add_argument("--rate", type=float, default=500.0, help="events/s, latency run (500)")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency run length (20)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=PROJECT_ROOT / ".aqstream" / "bench-relay",
        help="where its local stack lives (.aqstream/bench-relay)",
    )
    parser.add_argument("--keep-stack", action="store_true", help="leave the servers running")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    return parser.parse_args(argv)


def _terminated(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    info: dict[str, Any] = {
        **machine(),
        "rows": args.rows,
        "aggregates": args.aggregates,
        "load_before": load_average(),
    }
    try:
        with bench_stack(args.state_dir, args.keep_stack) as settings:
            info["batch"] = settings.relay_batch_size
            with psycopg.connect(psycopg_dsn(settings)) as conn:
                info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
                info["fsync"] = conn.execute("SHOW fsync").fetchone()[0]
            say(f"throughput: {args.rounds} rounds of {args.rows:,} rows ...")
            rounds = throughput(settings, args.rows, args.aggregates, args.rounds)
            no_broker = no_broker_run(settings, args.rows, args.aggregates)
            info["no_broker_per_s"], info["no_broker_cpu_us"] = (
                round(no_broker[0]),
                round(no_broker[1]),
            )
            say(f"latency: {args.rate:.0f} events/s for {args.seconds:.0f} s ...")
            lat = latency(settings, args.rate, args.seconds, args.state_dir / "logs" / "relay.log")
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    info["load_after"] = load_average()
    result = report(rounds, lat, info)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
