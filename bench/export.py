"""Exports: rows/s of a whole export (Parquet, CSV) against a raw ``COPY (same query) TO STDOUT``
of the same rows, in the same run.

A fresh database on a local stack of its own (``.aqstream/bench-export``) gets N registrations of
one organization, made by ``generate_series`` SQL (1,000 participants x N/1,000 events, a third
checked in). Then, in rounds, alternating which goes first:

- **raw COPY** (the baseline): as the application role in the tenant's context (row level
  security applies), ``COPY (<the registrations dataset's query>) TO STDOUT (FORMAT csv)``, every
  byte read by psycopg and thrown away;
- **export to Parquet / CSV** (the figures): the platform's runner end to end on a queued export
  row: claim, count, the same COPY, Arrow batches and the Parquet writer (or the CSV written
  through), the upload to the S3 server (multipart), the outcome recorded.

The dataset is read as an owner's export: with the participants' names and e-mails (a join with
``users``, in both runs). Printed: rows/s of each, the ratios (target: Parquet >= 0.5 of raw),
the files' sizes, and the growth of this process's peak memory (the export streams: it must not
grow with N). Everything is stopped and removed at the end::

    python -m bench.export [--rows 5000000] [--rounds 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.kit import bench_stack, load_average, machine, say, show_table
from bench.summary import ratio_line
from core.resources import ensure_bucket, make_s3
from core.settings import PROJECT_ROOT, Settings
from domain.db import make_engine, make_sessionmaker
from domain.exports.models import Dataset, ExportStatus
from streams.relay import psycopg_dsn
from warehouse.exports import runner
from warehouse.exports.datasets import Filters, spec

TARGET_PARQUET = 0.5
TARGET_CSV = 0.5
PER_EVENT = 1000  # participants, each registered once for every event


# --- data -------------------------------------------------------------------------------------------


def _uuid(prefix: str, column: str) -> str:
    """A time-ordered-looking UUID from an integer column: sequential keys, cheap to index."""
    return f"('{prefix}-0000-7000-8000-' || lpad(to_hex({column}), 12, '0'))::uuid"


def prepare(settings: Settings, rows: int) -> uuid.UUID:
    """N registrations of one organization, by SQL as the owner; answers the tenant id."""
    events = max(1, -(-rows // PER_EVENT))
    tenant = uuid.UUID("00000000-0000-7000-8000-00000000000a")
    owner = uuid.UUID("00000000-0000-7000-8000-00000000000b")
    started = time.monotonic()
    with psycopg.connect(psycopg_dsn(settings), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email, display_name) VALUES (%s, 'owner@bench.example.org', "
            "'Owner')",
            (owner,),
        )
        conn.execute(
            f"INSERT INTO users (id, email, display_name, telegram_username) "
            f"SELECT {_uuid('00000001', 'i')}, 'participant' || i || '@bench.example.org', "
            f"'Participant ' || i, 'p' || i FROM generate_series(1, {PER_EVENT}) i"
        )
        request = uuid.uuid4()
        conn.execute(
            "INSERT INTO organization_requests (id, user_id, name, slug, status) "
            "VALUES (%s, %s, 'Bench', 'bench', 'approved')",
            (request, owner),
        )
        conn.execute(
            "INSERT INTO organizations (id, name, slug, request_id, created_by) "
            "VALUES (%s, 'Bench', 'bench', %s, %s)",
            (tenant, request, owner),
        )
        conn.execute(
            "INSERT INTO organization_members (id, tenant_id, user_id, role) "
            "VALUES (%s, %s, %s, 'owner')",
            (uuid.uuid4(), tenant, owner),
        )
        conn.execute(
            f"INSERT INTO events (id, tenant_id, title, starts_at, ends_at, timezone, status, "
            f"created_by) SELECT {_uuid('00000002', 'e')}, %s, 'Bench event ' || e, "
            f"now() - interval '1 day', now() - interval '20 hours', 'UTC', 'published', %s "
            f"FROM generate_series(1, {events}) e",
            (tenant, owner),
        )
        conn.execute(
            f"INSERT INTO ticket_types (id, tenant_id, event_id, name, capacity, sold) "
            f"SELECT {_uuid('00000003', 'e')}, %s, {_uuid('00000002', 'e')}, 'Standard', "
            f"{PER_EVENT}, {PER_EVENT} FROM generate_series(1, {events}) e",
            (tenant,),
        )
        say(
            f"inserting {rows:,} registrations ({events:,} events x {PER_EVENT:,} participants) ..."
        )
        conn.execute(
            f"""
            INSERT INTO registrations (id, tenant_id, event_id, ticket_type_id, user_id,
                quantity, status, payment_mode, currency, amount_total, amount_due_now,
                amount_paid, ticket_secret, created_at, confirmed_at, checked_in_at)
            SELECT {_uuid("00000004", "n")}, %s, {_uuid("00000002", "e")},
                   {_uuid("00000003", "e")}, {_uuid("00000001", "u")}, 1, 'confirmed', 'free',
                   'EUR', 0, 0, 0, substr(md5(n::text), 1, 32),
                   now() - make_interval(secs => n), now() - make_interval(secs => n),
                   CASE WHEN n %% 3 = 0 THEN now() - interval '22 hours' END
            FROM (SELECT n, (n - 1) / {PER_EVENT} + 1 AS e, (n - 1) %% {PER_EVENT} + 1 AS u
                  FROM generate_series(1, {rows}) n) g
            """,
            (tenant,),
        )
        conn.execute("VACUUM ANALYZE registrations")
        conn.execute("VACUUM ANALYZE users")
    say(f"prepared in {time.monotonic() - started:.1f} s")
    return tenant


# --- the runs ---------------------------------------------------------------------------------------


def raw_copy(settings: Settings, tenant: uuid.UUID) -> tuple[float, int, int]:
    """The baseline: seconds, rows and bytes of the dataset's COPY, read and discarded."""
    query = spec(Dataset.REGISTRATIONS).query(Filters(), True)
    with psycopg.connect(
        settings.app_url.set(drivername="postgresql").render_as_string(hide_password=False)
    ) as conn:
        started = time.monotonic()
        conn.execute(
            "SELECT set_config('app.tenant_id', %s, true), set_config('statement_timeout', "
            "'0', true), set_config('TimeZone', 'UTC', true)",
            (str(tenant),),
        )
        size = 0
        with conn.cursor() as cursor:
            statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
            with cursor.copy(statement) as copy:
                for data in copy:
                    size += len(data)
            rows = cursor.rowcount
        conn.rollback()
        return time.monotonic() - started, rows, size


def export(
    settings: Settings, sessions, s3, tenant: uuid.UUID, fmt: str, spool: bool = False
) -> tuple[float, int, int]:
    """The figure: seconds, rows and file size of a whole export run by the runner."""
    export_id = uuid.uuid4()
    with psycopg.connect(psycopg_dsn(settings), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO exports (id, tenant_id, requested_by, dataset, format, personal_data, "
            "file_name) VALUES (%s, %s, '00000000-0000-7000-8000-00000000000b', "
            "'registrations', %s, true, %s)",
            (export_id, tenant, fmt, f"registrations_bench_{export_id}.{fmt}"),
        )
    started = time.monotonic()
    job = runner.claim(sessions, export_id, tenant)
    assert job is not None
    status = runner.run(sessions, s3, settings.s3_bucket, job, spool=spool)
    seconds = time.monotonic() - started
    with psycopg.connect(psycopg_dsn(settings)) as conn:
        rows, size, error = conn.execute(
            "SELECT rows, size_bytes, error FROM exports WHERE id = %s", (export_id,)
        ).fetchone()
    if status is not ExportStatus.SUCCEEDED:
        raise RuntimeError(f"the export failed: {error}")
    key = runner.object_key(tenant, export_id, job.export.file_name)
    s3.delete_object(Bucket=settings.s3_bucket, Key=key)
    return seconds, rows, size


@dataclass
class Round:
    raw_s: float
    parquet_s: float
    csv_s: float
    rows: int
    raw_bytes: int
    parquet_bytes: int
    csv_bytes: int
    # Analysis (--spool): the same exports written to a temporary file and uploaded afterwards.
    parquet_spool_s: float | None = None
    csv_spool_s: float | None = None

    def per_s(self, seconds: float) -> float:
        return self.rows / seconds if seconds else 0.0

    @property
    def parquet_ratio(self) -> float:
        return self.raw_s / self.parquet_s

    @property
    def csv_ratio(self) -> float:
        return self.raw_s / self.csv_s


def rounds(
    settings: Settings, tenant: uuid.UUID, count: int, spool: bool = False
) -> tuple[list[Round], float]:
    engine = make_engine(settings.app_url, pool_size=4, application_name="aqstream-bench-export")
    sessions = make_sessionmaker(engine)
    s3 = make_s3(settings, timeout_s=120)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = []
    try:
        for n in range(count):
            # Alternate the order, so caches favour neither side.
            order = ["raw", "parquet", "csv"] + (["parquet-spool", "csv-spool"] if spool else [])
            if n % 2:
                order.reverse()
            times: dict[str, tuple[float, int, int]] = {}
            for what in order:
                say(f"round {n + 1}: {what} ...")
                if what == "raw":
                    times[what] = raw_copy(settings, tenant)
                else:
                    fmt, _, spooled = what.partition("-")
                    times[what] = export(settings, sessions, s3, tenant, fmt, bool(spooled))
                say(f"  {times[what][0]:.1f} s, {times[what][1]:,} rows")
            rows = {t[1] for t in times.values()}
            assert len(rows) == 1, f"the runs saw different rows: {times}"
            result.append(
                Round(
                    raw_s=times["raw"][0],
                    parquet_s=times["parquet"][0],
                    csv_s=times["csv"][0],
                    rows=rows.pop(),
                    raw_bytes=times["raw"][2],
                    parquet_bytes=times["parquet"][2],
                    csv_bytes=times["csv"][2],
                    parquet_spool_s=times.get("parquet-spool", (None,))[0],
                    csv_spool_s=times.get("csv-spool", (None,))[0],
                )
            )
    finally:
        engine.dispose()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return result, grown_mib


# --- report -----------------------------------------------------------------------------------------


def report(results: list[Round], grown_mib: float, info: dict[str, Any]) -> dict[str, Any]:
    parquet = statistics.median(r.parquet_ratio for r in results)
    csv = statistics.median(r.csv_ratio for r in results)
    say()
    say(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']} GiB RAM, "
        f"PostgreSQL {info['postgres']}, Python {info['python']}; load average before/after "
        f"{info['load_before']} / {info['load_after']}"
    )
    head = ("round", "rows", "raw COPY rows/s", "Parquet rows/s", "ratio", "CSV rows/s", "ratio")
    lines = [
        (
            str(n + 1),
            f"{r.rows:,}",
            f"{r.per_s(r.raw_s):,.0f}",
            f"{r.per_s(r.parquet_s):,.0f}",
            f"{r.parquet_ratio:.2f}",
            f"{r.per_s(r.csv_s):,.0f}",
            f"{r.csv_ratio:.2f}",
        )
        for n, r in enumerate(results)
    ]
    show_table("Export of the registrations dataset against a raw COPY", head, lines)
    last = results[-1]
    say(
        f"sizes: raw CSV stream {last.raw_bytes / 2**20:,.0f} MiB, CSV file "
        f"{last.csv_bytes / 2**20:,.0f} MiB, Parquet file {last.parquet_bytes / 2**20:,.0f} MiB; "
        f"peak memory of this process grew by {grown_mib:,.0f} MiB over all runs"
    )
    met = "met" if parquet >= TARGET_PARQUET else "NOT MET"
    say(f"Parquet export / raw COPY, median: {parquet:.2f} (target >= {TARGET_PARQUET}): {met}")
    say(f"CSV export / raw COPY, median: {csv:.2f}")
    spooled = [r for r in results if r.parquet_spool_s]
    if spooled:
        say(
            "analysis, spooled to a temporary file and uploaded afterwards: Parquet "
            + " / ".join(f"{r.raw_s / r.parquet_spool_s:.2f}" for r in spooled)
            + ", CSV "
            + " / ".join(f"{r.raw_s / r.csv_spool_s:.2f}" for r in spooled)
            + " of raw (rounds)"
        )
    summary = [
        ratio_line(
            "export",
            "Parquet export rows/s vs raw COPY",
            last.per_s(statistics.median(r.parquet_s for r in results)),
            last.per_s(statistics.median(r.raw_s for r in results)),
            "raw COPY TO STDOUT",
            "rows/s",
            TARGET_PARQUET,
        ),
        ratio_line(
            "export",
            "CSV export rows/s vs raw COPY",
            last.per_s(statistics.median(r.csv_s for r in results)),
            last.per_s(statistics.median(r.raw_s for r in results)),
            "raw COPY TO STDOUT",
            "rows/s",
            TARGET_CSV,
        ),
    ]
    return {
        "machine": info,
        "rounds": [asdict(r) for r in results],
        "parquet_ratio_median": round(parquet, 3),
        "csv_ratio_median": round(csv, 3),
        "peak_rss_growth_mib": round(grown_mib, 1),
        "summary": [line.asdict() for line in summary],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.export",
        description="Export rows/s (Parquet, CSV) against a raw COPY of the same rows.",
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="registrations (5,000,000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, median reported (1)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=PROJECT_ROOT / ".aqstream" / "bench-export",
        help="where its local stack lives",
    )
    parser.add_argument(
        "--spool",
        action="store_true",
        help="also run each export spooled to a temporary file, uploaded afterwards (analysis)",
    )
    parser.add_argument("--keep-stack", action="store_true", help="leave the local servers up")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser.parse_args(argv)


def _terminated(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    info: dict[str, Any] = {**machine(), "rows": args.rows, "load_before": load_average()}
    try:
        with bench_stack(args.state_dir, args.keep_stack, "aqstream_bench_export") as settings:
            settings = settings.model_copy(
                update={"s3_bucket": f"bench-export-{uuid.uuid4().hex[:8]}"}
            )
            ensure_bucket(settings)
            with psycopg.connect(psycopg_dsn(settings)) as conn:
                info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
            tenant = prepare(settings, args.rows)
            results, grown = rounds(settings, tenant, args.rounds, args.spool)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    info["load_after"] = load_average()
    result = report(results, grown, info)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
