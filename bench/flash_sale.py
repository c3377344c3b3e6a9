"""Flash sale: N clients buy the seats of one hot ticket type until it is sold out.

The figure: registrations through the HTTP API of a real server process (uvicorn workers running
the platform's own code). The baseline, side by side: the same transactions as raw SQL over
psycopg, one per registration, as the application role with its row level security context:
insert the registration row and its two outbox events, then take the seat with the conditional
counter update (``take_seats``) sent with the COMMIT in one round trip, as the service does.

Three more runs say where the time goes (skip them with ``--no-analysis``): the raw SQL with the
service's reads too (auth check, loads, savepoint, read-back), so the rest is HTTP and Python;
and the API and the raw SQL with the same seats spread over 16 ticket types, so no row is hot.

The API's latency at an offered load (``--offered-rate``, with or without ``--no-analysis``): open
loops, each registration due at its time whether or not earlier ones were answered, at stepped
rates (60, 90, 120, 150, 200, 250, 300, 400/s by default, each for about 8 s of seats) until the
p95 reaches 250 ms; the report gives the highest rate under it and the p95 at 150/s.

Everything runs on a local stack of its own (``.aqstream/bench``) and a fresh database, both
removed at the end, Ctrl-C included::

    python -m bench.flash_sale [--clients 64] [--seats 2000] [--workers 2] [--json out.json]
                               [--offered-rate 60,90,120,150,200,250,300,400] [--no-analysis]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

from aqstream.apiserver import api_server
from bench import kit
from bench.kit import (
    Sale,
    World,
    console,
    found_world,
    load_average,
    machine,
    open_sale,
    percentile,
    say,
    show_table,
    url_dsn,
)
from bench.summary import bound_line, ratio_line
from core.settings import PROJECT_ROOT, Settings
from domain.db import uuid7

TARGET_RATIO = 0.6  # issue Q: the API sells at least 0.6 as fast as raw SQL on the same machine
TARGET_RATE = 200.0  # issue Q: registrations/s through the API on one hot ticket type, 2 cores
TARGET_P95_MS = 250.0
TARGET_OFFERED_RATE = 150.0  # registrations/s the API answers with p95 under TARGET_P95_MS
OFFERED_RATES = "60,90,120,150,200,250,300,400"  # the open loop's steps, until p95 breaks
STEP_SECONDS = 8.0  # each step offers its rate for about this long (its sale's seats)
MIN_STEP_SEATS = 400  # and at least this many registrations, for a stable p95
SPREAD_TYPES = 16  # ticket types of the "no hot row" analysis runs
UNLIMITED = "100000000/minute"
SERVER_NAMES = {"postgres": "PostgreSQL", "redis": "Redis", "kafka": "Kafka", "s3": "S3"}

# Progress bars when rich is installed (bench.kit's console is then set); plain lines otherwise.
with contextlib.suppress(ImportError):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


# --- the machine's CPU and PostgreSQL's backends ------------------------------------------------------


class CpuAccount:
    """CPU seconds spent by groups of processes between two snapshots, read from /proc: who used
    the cores during a run. ``others`` is the rest of the machine (other jobs on a shared box)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, trees: dict[str, int], alone: dict[str, int]) -> None:
        self.trees = trees  # a process with all its descendants
        self.alone = alone  # just the process (its children are counted elsewhere)

    @staticmethod
    def _children() -> dict[int, list[int]]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(
                        int(entry)
                    )
        return children

    @classmethod
    def _seconds(cls, pid: int, *, reaped: bool) -> float:
        """utime + stime, plus (``reaped``) the time of children it has waited for: a
        PostgreSQL backend that exits during a run still counts, through the postmaster."""
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = int(fields[11]) + int(fields[12])
        if reaped:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / cls.TICK

    def snapshot(self) -> dict[str, float]:
        children = self._children()
        out = {name: self._seconds(pid, reaped=False) for name, pid in self.alone.items()}
        for name, root in self.trees.items():
            pids, todo = {root}, [root]
            while todo:
                for child in children.get(todo.pop(), []):
                    pids.add(child)
                    todo.append(child)
            out[name] = sum(self._seconds(p, reaped=True) for p in pids)
        cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        out["machine"] = (sum(cpu) - cpu[3] - cpu[4]) / self.TICK  # all but idle and iowait
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        used = {k: round(after[k] - before[k], 2) for k in before}
        ours = sum(v for k, v in used.items() if k != "machine")
        used["others"] = round(max(0.0, used["machine"] - ours), 2)
        return used


class WaitSampler(threading.Thread):
    """Samples what PostgreSQL's client backends of one application are doing, every 20 ms:
    working, waiting for a lock (the hot row), idle inside an open transaction (waiting for the
    application), or idle. The shares say whether the time goes to the database or around it."""

    def __init__(self, dsn: str, application_name: str, every_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.application_name = application_name
        self.every_s = every_s
        self.halt = threading.Event()
        self.counts: Counter[str] = Counter()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.halt.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE application_name = %s AND backend_type = 'client backend'",
                    (self.application_name,),
                ).fetchall()
                for state, wait_type, wait in rows:
                    self.counts[self._classify(state, wait_type, wait)] += 1
                self.halt.wait(self.every_s)

    @staticmethod
    def _classify(state: str | None, wait_type: str | None, wait: str | None) -> str:
        if state == "idle":
            return "idle"
        if state and state.startswith("idle in transaction"):
            return "in transaction, waiting for the client"
        if wait_type == "Lock":
            return f"lock wait ({wait})"
        if wait_type and wait:
            return f"{wait_type}:{wait}"
        return "working"

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values()) or 1
        return {k: round(100 * v / total, 1) for k, v in self.counts.most_common()}

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)


# --- stopping ------------------------------------------------------------------------------------------

STOP = threading.Event()  # set by Ctrl-C or SIGTERM during a run
_running = threading.Event()


def _interrupted(signum: int, _frame: Any) -> None:
    """Outside a run, interrupt at once. During one, ask the clients and the loop that follows
    them to stop (an exception raised at a random point of a busy process can land in a callback
    that swallows it); a second signal interrupts at once anyway."""
    if _running.is_set() and not STOP.is_set():
        STOP.set()
        return
    raise KeyboardInterrupt(f"signal {signum}")


# --- the stack, the database and the API server -----------------------------------------------------


@contextlib.contextmanager
def bench_stack(state_dir: Path, keep: bool) -> Iterator[tuple[Settings, dict[str, int]]]:
    """bench.kit's stack and fresh database, with the PIDs of the local servers (whose CPU time
    the runs account for)."""
    with kit.bench_stack(state_dir, keep, "aqstream_bench") as settings:
        pids: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads((state_dir / "stack.json").read_text())
            pids = {name: entry["pid"] for name, entry in state.items()}
        yield settings, pids


# --- the sale's check ------------------------------------------------------------------------------------


def check_sale(settings: Settings, sale: Sale) -> str | None:
    """The counters agree with the rows, every seat is sold, none twice; a message if not."""
    with psycopg.connect(url_dsn(settings.owner_url)) as conn:
        sold, capacity, event_sold, event_capacity, rows = conn.execute(
            "SELECT sum(t.sold), sum(t.capacity), e.sold, e.capacity, "
            "  (SELECT count(*) FROM registrations r "
            "   WHERE r.event_id = e.id AND r.status <> 'cancelled') "
            "FROM ticket_types t JOIN events e ON e.id = t.event_id WHERE e.id = %s "
            "GROUP BY e.id",
            (sale.event_id,),
        ).fetchone()
    if sold == capacity == rows == sale.seats and event_sold in (0, sold):
        return None
    return (
        f"ticket types sold {sold} of {capacity}, event sold {event_sold} of {event_capacity}, "
        f"live registrations {rows}"
    )


# --- running a sale --------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    role: str  # "figure", "baseline", "analysis" or "open loop"
    clients: int
    sold: int = 0
    seconds: float = 0.0
    per_second: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    answers: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    backends: dict[str, float] = field(default_factory=dict)
    check: str = "ok"
    offered_rate: float | None = None  # registrations/s offered (open loop), else None


@dataclass
class Buyer:
    """How one client buys: open its connection, try one participant's seat, close."""

    open: Callable[[], Any]
    attempt: Callable[[Any, int], str]  # (connection, participant) -> "ok" | error code
    close: Callable[[Any], None]
    application_name: str  # of its PostgreSQL connections, for the wait sampler


def run_sale(
    name: str, role: str, sale: Sale, buyer: Buyer, clients: int, people: int, cpu: CpuAccount,
    owner_dsn: str, rate: float | None = None,
) -> Result:  # fmt: skip
    """``clients`` threads each take the next participant until every seat is sold. Throughput:
    seats over the time to the last sale; latency: of the successful registrations.
    Connections open before the clock starts and close after the CPU account is read (a
    PostgreSQL backend's CPU time leaves /proc with it).

    With ``rate`` the load is an open loop: participant i is due at start + i / rate, whether or
    not earlier requests have been answered, and latency counts from that due time, so time spent
    waiting for a free client thread counts too (no coordinated omission)."""
    states = [buyer.open() for _ in range(clients)]
    taken = iter(range(people))
    go, lock = threading.Event(), threading.Lock()
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    sold = [0]
    last_sale = [0.0]
    clock = [0.0]  # the start, set just before the clients go

    def client(state: Any) -> None:
        mine: list[float] = []
        seen: Counter[str] = Counter()
        last = 0.0
        go.wait()
        try:
            while sold[0] < sale.seats and not STOP.is_set():
                with lock:
                    i = next(taken, None)
                if i is None:
                    break
                if rate is not None:
                    due = clock[0] + i / rate
                    time.sleep(max(0.0, due - time.perf_counter()))
                    started = due
                else:
                    started = time.perf_counter()
                try:
                    answer = buyer.attempt(state, i)
                except Exception as exc:  # counted and reported, not fatal
                    answer = f"error {type(exc).__name__}"
                ended = time.perf_counter()
                seen[answer] += 1
                if answer == "ok":
                    mine.append((ended - started) * 1000)
                    last = ended
                    with lock:
                        sold[0] += 1
        finally:
            with lock:
                latencies.extend(mine)
                answers.update(seen)
                last_sale[0] = max(last_sale[0], last)

    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in states]
    for t in threads:
        t.start()
    sampler = WaitSampler(owner_dsn, buyer.application_name)
    sampler.start()
    before = cpu.snapshot()
    started = clock[0] = time.perf_counter()
    go.set()
    _running.set()
    try:
        _follow(name, sale.seats, threads, lambda: sold[0])
    finally:
        _running.clear()
        after = cpu.snapshot()
        sampler.stop()
        for state in states:
            buyer.close(state)

    latencies.sort()
    seconds = max(last_sale[0] - started, 1e-9)
    return Result(
        name=name,
        role=role,
        clients=clients,
        offered_rate=rate,
        sold=sold[0],
        seconds=round(seconds, 2),
        per_second=round(sold[0] / seconds, 1),
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        max_ms=round(latencies[-1], 1) if latencies else 0.0,
        answers=dict(answers),
        cpu_seconds=CpuAccount.delta(before, after),
        backends=sampler.shares(),
    )


def _follow(
    name: str, seats: int, threads: list[threading.Thread], sold: Callable[[], int]
) -> None:
    """Wait for the clients, showing the seats sold."""
    if console is not None:
        columns = (
            TextColumn(f"{name:<30}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(name, total=seats)
            while any(t.is_alive() for t in threads):
                progress.update(task, completed=sold())
                time.sleep(0.1)
            progress.update(task, completed=sold())
    else:
        next_line = time.monotonic()
        while any(t.is_alive() for t in threads):
            if time.monotonic() >= next_line:
                print(f"  {name}: {sold()}/{seats} seats", flush=True)
                next_line += 2.0
            time.sleep(0.1)
    for t in threads:
        t.join()
    if STOP.is_set():
        raise KeyboardInterrupt("stopped during a run")


# --- two ways to buy a seat -------------------------------------------------------------------------------


def api_buyer(url: str, world: World, sale: Sale) -> Buyer:
    path = f"/api/v1/events/{sale.event_id}/registrations"

    def attempt(http: httpx.Client, i: int) -> str:
        response = http.post(
            path, json={"ticket_type_id": sale.ticket_type(i)}, headers=world.headers[i]
        )
        if response.status_code == 201:
            return "ok"
        if response.status_code == 409:
            return response.json()["error"]["code"]
        return f"HTTP {response.status_code}"

    return Buyer(
        open=lambda: httpx.Client(base_url=url, timeout=120),
        attempt=attempt,
        close=lambda http: http.close(),
        application_name="aqstream-api",  # the API's engine
    )


SET_CONTEXT = (
    "SELECT set_config('app.user_id', %s, true), set_config('app.tenant_id', '', true), "
    "set_config('app.platform_admin', '', true)"
)
INSERT_REGISTRATION = (
    "INSERT INTO registrations (id, tenant_id, event_id, ticket_type_id, user_id, quantity, "
    "status, payment_mode, currency, amount_total, amount_due_now, amount_paid, ticket_secret, "
    "confirmed_at) VALUES (%s, %s, %s, %s, %s, 1, 'confirmed', 'free', 'EUR', 0, 0, 0, %s, now())"
)
INSERT_OUTBOX = (
    "INSERT INTO outbox (id, tenant_id, aggregate_type, aggregate_id, event_type, schema_version, "
    "payload, headers) VALUES (%s, %s, 'registration', %s, 'registration.created', 1, %s, %s), "
    "(%s, %s, 'registration', %s, 'registration.confirmed', 1, %s, %s)"
)
# Raises SQLSTATE AQ001 with the verdict; records the shard on the registration, as the service's
# claim does (a cancellation gives the seat back there).
TAKE = "SELECT take_seats(%s, 1, false, %s)"
# What the service reads around those writes: the caller's account (the auth dependency), the
# event and the ticket type, a savepoint around the insert, the registration read back.
READ_USER = "SELECT is_platform_admin, deleted_at FROM users WHERE id = %s"
READ_EVENT = "SELECT * FROM events WHERE id = %s"
READ_TICKET_TYPE = "SELECT * FROM ticket_types WHERE id = %s AND event_id = %s"
READ_BACK = "SELECT * FROM registrations WHERE id = %s"


def sql_buyer(settings: Settings, world: World, sale: Sale, *, with_reads: bool) -> Buyer:
    """One transaction per registration, as the application role under RLS."""
    dsn = url_dsn(settings.app_url)
    application_name = "bench-sql-service" if with_reads else "bench-sql"

    def attempt(conn: psycopg.Connection, i: int) -> str:
        user, tt = world.participants[i], sale.ticket_type(i)
        registration = uuid7()
        common = {
            "aggregate_id": str(registration),
            "tenant_id": sale.tenant_id,
            "registration_id": str(registration),
            "event_id": sale.event_id,
            "user_id": str(user),
        }
        created = {
            **common,
            "ticket_type_id": tt,
            "quantity": 1,
            "status": "confirmed",
            "payment_mode": "free",
            "currency": "EUR",
            "amount_total": 0,
            "amount_due_now": 0,
            "reservation_id": None,
        }
        headers = Jsonb({"correlation_id": uuid.uuid4().hex})
        with conn.cursor() as cur:
            cur.execute(SET_CONTEXT, (str(user),))
            if with_reads:
                cur.execute(READ_USER, (user,)).fetchone()
                cur.execute(READ_EVENT, (sale.event_id,)).fetchone()
                cur.execute(READ_TICKET_TYPE, (tt, sale.event_id)).fetchone()
                cur.execute("SAVEPOINT insert_registration")
            cur.execute(
                INSERT_REGISTRATION,
                (registration, sale.tenant_id, sale.event_id, tt, user, secrets.token_urlsafe(16)),
            )
            if with_reads:
                cur.execute("RELEASE SAVEPOINT insert_registration")
                cur.execute(READ_BACK, (registration,)).fetchone()
            cur.execute(
                INSERT_OUTBOX,
                (
                    *(uuid7(), sale.tenant_id, registration, Jsonb(created), headers),
                    *(uuid7(), sale.tenant_id, registration, Jsonb({**common, "quantity": 1}), headers),
                ),
            )  # fmt: skip
        error: psycopg.Error | None = None
        try:
            with conn.pipeline():
                try:
                    conn.execute(TAKE, (tt, registration))
                    conn.commit()
                except psycopg.Error as exc:
                    error = exc
        except psycopg.Error as exc:
            error = error or exc
        if error is None:
            return "ok"
        conn.rollback()
        if error.sqlstate == "AQ001":
            return error.diag.message_primary or "refused"
        raise error

    return Buyer(
        open=lambda: psycopg.connect(dsn, application_name=application_name),
        attempt=attempt,
        close=lambda conn: conn.close(),
        application_name=application_name,
    )


# --- the report ---------------------------------------------------------------------------------------------


def report(results: list[Result], info: dict[str, Any]) -> dict[str, Any]:
    api = next(r for r in results if r.role == "figure")
    raw = next(r for r in results if r.role == "baseline")
    ratio = api.per_second / raw.per_second if raw.per_second else 0.0
    verdict = {
        "api_per_second": api.per_second,
        "raw_per_second": raw.per_second,
        "ratio": round(ratio, 3),
        "ratio_target": TARGET_RATIO,
        "ratio_met": ratio >= TARGET_RATIO,
        "p95_ms": api.p95_ms,
        "rate_target": TARGET_RATE,
        "rate_met": api.per_second >= TARGET_RATE,
        "p95_target_ms": TARGET_P95_MS,
        "p95_met": api.p95_ms < TARGET_P95_MS,
        **open_loop_verdict(results),
    }
    head = ("run", "role", "reg/s", "sold", "s", "p50 ms", "p95 ms", "p99 ms", "answers", "check")
    rows = [
        (
            r.name,
            r.role,
            f"{r.per_second:,.0f}",
            str(r.sold),
            f"{r.seconds:.1f}",
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
            f"{r.p99_ms:.1f}",
            ", ".join(f"{k} {v}" for k, v in sorted(r.answers.items())),
            r.check,
        )
        for r in results
    ]
    say()
    say(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']} GiB RAM, "
        f"PostgreSQL {info['postgres']} (fsync={info['postgres_settings'].get('fsync')}, "
        f"synchronous_commit={info['postgres_settings'].get('synchronous_commit')}), "
        f"Python {info['python']}; load average before/after {info['load_before']} / "
        f"{info['load_after']}"
    )
    say(
        f"{info['clients']} clients, {info['seats']} seats, {info['workers']} API workers, "
        f"event capacity {'set' if info['event_capacity'] else 'unset'}"
    )
    show_table("Flash sale until sold out", head, rows)
    for r in results:
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in r.cpu_seconds.items() if v >= 0.05)
        requests = sum(r.answers.values()) or 1
        per = ", ".join(
            f"{k} {1000 * v / requests:.1f}"
            for k, v in r.cpu_seconds.items()
            if k not in ("machine", "others") and v >= 0.05
        )
        say(f"{r.name}: CPU seconds: {cpu}; CPU ms per request: {per}")
        say(f"  its PostgreSQL backends, % of samples: {_shares(r.backends)}")
    say()
    met = "met" if verdict["ratio_met"] else "NOT MET"
    say(
        f"API / raw SQL: {api.per_second:,.0f} / {raw.per_second:,.0f} registrations/s = "
        f"{ratio:.2f} (target >= {TARGET_RATIO}): {met}"
    )
    met = "met" if verdict["rate_met"] else "NOT MET"
    say(f"API registrations/s: {api.per_second:,.0f} (target >= {TARGET_RATE:g}): {met}")
    met = "met" if verdict["p95_met"] else "NOT MET"
    say(
        f"API p95 latency, {info['clients']} clients in a closed loop: {api.p95_ms:,.0f} ms "
        f"(< {TARGET_P95_MS:.0f} ms needs over {info['clients'] / TARGET_P95_MS * 1000:,.0f}/s, "
        f"Little's law): {met}"
    )
    if verdict["open_loop_rates"]:
        highest = verdict["open_loop_max_rate"]
        say(
            f"API open loop: highest offered rate with p95 < {TARGET_P95_MS:.0f} ms: "
            + (f"{highest:g} registrations/s" if highest else "none of the rates tried")
            + f" (tried {', '.join(f'{r:g}' for r in verdict['open_loop_rates'])}/s)"
        )
        at = verdict["open_loop_p95_at_target_ms"]
        if at is None:
            say(f"API p95 at an offered {TARGET_OFFERED_RATE:g}/s: not reached")
        else:
            met = "met" if at < TARGET_P95_MS else "NOT MET"
            say(
                f"API p95 at an offered {TARGET_OFFERED_RATE:g}/s: {at:,.0f} ms "
                f"(target < {TARGET_P95_MS:.0f} ms): {met}"
            )
    summary = [
        ratio_line(
            "flash sale",
            f"registrations/s, API ({info['clients']} clients)",
            round(api.per_second, 1),
            round(raw.per_second, 1),
            "raw SQL",
            "reg/s",
            TARGET_RATIO,
        ),
        bound_line("flash sale", "API p95 latency, closed loop", api.p95_ms, "ms", TARGET_P95_MS),
    ]
    summary += [
        bound_line("flash sale", f"API p95 latency, {r.name}", r.p95_ms, "ms", TARGET_P95_MS)
        for r in results
        if r.role == "open loop"
    ]
    if verdict["open_loop_rates"]:
        summary.append(
            bound_line(
                "flash sale",
                f"API highest offered rate with p95 < {TARGET_P95_MS:g} ms",
                verdict["open_loop_max_rate"] or 0.0,
                "reg/s",
                TARGET_OFFERED_RATE,
                below=False,
            )
        )
    return {
        "machine": info,
        "results": [asdict(r) for r in results],
        "verdict": verdict,
        "summary": [line.asdict() for line in summary],
    }


def open_loop_verdict(results: list[Result]) -> dict[str, Any]:
    """The open loop's steps: the rates tried, the highest before the first whose p95 reached the
    target (or that sold with errors), and the p95 at the target rate."""
    steps = sorted(
        (r for r in results if r.role == "open loop" and r.offered_rate),
        key=lambda r: r.offered_rate or 0.0,
    )
    highest = None
    for r in steps:
        if r.p95_ms >= TARGET_P95_MS or r.check != "ok":
            break
        highest = r.offered_rate
    at = next((r.p95_ms for r in steps if r.offered_rate == TARGET_OFFERED_RATE), None)
    return {
        "open_loop_rates": [r.offered_rate for r in steps],
        "open_loop_max_rate": highest,
        "open_loop_p95_at_target_ms": at,
        "open_loop_p95_at_target_met": at is not None and at < TARGET_P95_MS,
    }


def _shares(shares: dict[str, float]) -> str:
    shown = [f"{k} {v}" for k, v in shares.items() if v >= 1.0]
    rest = sum(v for v in shares.values() if v < 1.0)
    return ", ".join(shown + ([f"other {rest:.1f}"] if rest >= 0.1 else []))


# --- main -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flash_sale",
        description="Flash sale through the API against raw SQL (see bench/README.md).",
    )
    parser.add_argument("--clients", type=int, default=64, help="concurrent buyers (64)")
    parser.add_argument("--seats", type=int, default=2000, help="seats on sale (2000)")
    parser.add_argument("--workers", type=int, default=2, help="API server processes (2)")
    parser.add_argument(
        "--event-capacity",
        action="store_true",
        help="cap the event as well: a second hot counter row in every transaction",
    )
    parser.add_argument(
        "--no-analysis", action="store_true", help="only the API run and its baseline"
    )
    parser.add_argument(
        "--offered-rate",
        type=_rates,
        default=_rates(OFFERED_RATES),
        help="also run the API as open loops at these registrations/s, in turn until its p95 "
        "(from each request's due time) reaches 250 ms, and report the highest rate under it "
        f"({OFFERED_RATES}; one rate runs just that; 0 skips them)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=PROJECT_ROOT / ".aqstream" / "bench",
        help="where the benchmark's local stack lives (.aqstream/bench)",
    )
    parser.add_argument("--keep-stack", action="store_true", help="leave the local servers up")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if min(args.clients, args.seats, args.workers) < 1:
        parser.error("--clients, --seats and --workers must be positive")
    return args


def _rates(text: str) -> list[float]:
    """ "60,90,150" -> [60.0, 90.0, 150.0], ascending; "0" or "" -> [] (no open loop)."""
    try:
        rates = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from None
    if any(r < 0 for r in rates):
        raise argparse.ArgumentTypeError("rates are registrations/s, not negative")
    return [r for r in rates if r > 0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    # Ctrl-C and SIGTERM stop it cleanly, also when started from a script that ignores SIGINT.
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    info: dict[str, Any] = {
        **machine(),
        "clients": args.clients,
        "seats": args.seats,
        "workers": args.workers,
        "event_capacity": args.event_capacity,
        "load_before": load_average(),
    }
    # Enough participants to see every sale sell out.
    people = args.seats + 2 * max(args.clients, SPREAD_TYPES)
    results: list[Result] = []
    try:
        with bench_stack(args.state_dir, args.keep_stack) as (settings, pids):
            owner_dsn = url_dsn(settings.owner_url)
            with psycopg.connect(owner_dsn) as conn:
                info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
                info["postgres_settings"] = dict(
                    conn.execute(
                        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', "
                        "'synchronous_commit', 'shared_buffers', 'max_connections')"
                    ).fetchall()
                )
            log = args.state_dir / "logs" / "bench-api.log"
            with api_server(
                settings,
                workers=args.workers,
                log=log,
                # A flash sale from one client IP: the limits are not what is measured (they
                # still run, in Redis, on every request).
                AQSTREAM_RATE_LIMIT_USER=UNLIMITED,
                AQSTREAM_RATE_LIMIT_IP=UNLIMITED,
                AQSTREAM_RATE_LIMIT_AUTH=UNLIMITED,
                AQSTREAM_LOG_JSON="false",
                AQSTREAM_LOG_LEVEL="WARNING",
            ) as (url, server_pid):
                say(f"API server on {url} ({args.workers} workers); {people} participants ...")
                world = found_world(url, settings, people)
                cap = args.event_capacity

                def sale(title: str, types: int = 1) -> Sale:
                    return open_sale(url, world, args.seats, title, types=types, event_capacity=cap)

                runs: list[tuple[str, str, Sale, Callable[[Sale], Buyer]]] = [
                    ("API", "figure", sale("API"), lambda s: api_buyer(url, world, s)),
                    ("raw SQL", "baseline", sale("raw SQL"),
                     lambda s: sql_buyer(settings, world, s, with_reads=False)),
                ]  # fmt: skip
                if not args.no_analysis:
                    runs += [
                        ("raw SQL + the service's reads", "analysis", sale("raw SQL + reads"),
                         lambda s: sql_buyer(settings, world, s, with_reads=True)),
                        (f"API, {SPREAD_TYPES} ticket types", "analysis",
                         sale("API spread", SPREAD_TYPES), lambda s: api_buyer(url, world, s)),
                        (f"raw SQL, {SPREAD_TYPES} ticket types", "analysis",
                         sale("raw SQL spread", SPREAD_TYPES),
                         lambda s: sql_buyer(settings, world, s, with_reads=False)),
                    ]  # fmt: skip
                cpu = CpuAccount(
                    trees={"API server": server_pid}
                    | {SERVER_NAMES.get(k, k): pid for k, pid in pids.items()},
                    alone={"client": os.getpid()},
                )
                _warm_up(url, world, args.clients)
                # The API runs while its server is up; the raw SQL ones after it has stopped,
                # so that they have the machine to themselves.
                for name, role, sold, buyer in runs:
                    if name.startswith("API"):
                        results.append(
                            run_sale(
                                name, role, sold, buyer(sold), args.clients, people, cpu, owner_dsn
                            )
                        )
                steps = open_loop(url, world, args, people, cpu, owner_dsn, cap)
            for name, role, sold, buyer in runs:
                if not name.startswith("API"):
                    results.append(
                        run_sale(
                            name, role, sold, buyer(sold), args.clients, people, cpu, owner_dsn
                        )
                    )
            order = [name for name, *_ in runs]
            results.sort(key=lambda r: order.index(r.name))
            failed = False
            for result, (_, _, sold, _) in zip(results, runs, strict=True):
                failed |= not _checked(settings, result, sold)
            for result, sold in steps:
                failed |= not _checked(settings, result, sold)
                results.append(result)
            info["load_after"] = load_average()
            figures = report(results, info)
            if args.json:
                args.json.write_text(json.dumps(figures, indent=2) + "\n")
                say(f"figures written to {args.json}")
    except KeyboardInterrupt:
        say("interrupted: what was started has been stopped")
        return 130
    return 1 if failed else 0


def open_loop(
    url: str, world: World, args: argparse.Namespace, people: int, cpu: CpuAccount,
    owner_dsn: str, event_capacity: bool,
) -> list[tuple[Result, Sale]]:  # fmt: skip
    """The API as open loops at rising offered rates, each on a sale of its own with about
    STEP_SECONDS of seats, until one's p95 reaches the target or it answers errors (the higher
    rates would say no more)."""
    steps: list[tuple[Result, Sale]] = []
    for rate in args.offered_rate:
        seats = min(args.seats, max(MIN_STEP_SEATS, round(rate * STEP_SECONDS)))
        sold = open_sale(
            url, world, seats, f"API open loop {rate:g}/s", event_capacity=event_capacity
        )
        result = run_sale(
            f"API, open loop at {rate:g}/s", "open loop", sold, api_buyer(url, world, sold),
            args.clients, people, cpu, owner_dsn, rate,
        )  # fmt: skip
        steps.append((result, sold))
        if result.p95_ms >= TARGET_P95_MS or set(result.answers) - {"ok", "sold_out"}:
            break
    return steps


def _checked(settings: Settings, result: Result, sold: Sale) -> bool:
    """Check a sale's counters and answers; record a problem on its result (False)."""
    problem = check_sale(settings, sold)
    odd = set(result.answers) - {"ok", "sold_out"}
    if problem or odd:
        result.check = problem or f"unexpected answers: {sorted(odd)}"
        return False
    return True


def _warm_up(url: str, world: World, clients: int) -> None:
    """Fill every worker's connection pool and run its code paths before any clock starts."""

    def touch(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for _ in range(5):
                http.get("/api/v1/users/me/registrations", headers=world.headers[i])

    threads = [threading.Thread(target=touch, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    sys.exit(main())
