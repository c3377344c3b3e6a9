"""Seat counters: the old hot-row counter against the sharded counters, raw SQL, side by side.

Both runs are the flash sale's raw SQL transaction (bench/flash_sale.py, ``sql_buyer``): as the
application role with its row level security context, insert the registration and its two outbox
events, then take the seat with ``take_seats`` sent with the COMMIT in one round trip; N clients
until the seats of one hot ticket type are sold out.

- **old schema**: the counters before migration 0023, rebuilt in a schema ``legacy`` of the
  bench database: ``events`` and ``ticket_types`` with their ``sold`` columns and CHECKs,
  ``registrations`` and ``outbox`` with the same columns, indexes, triggers, foreign keys and
  row level security policies, and 0004's ``claim_seats`` / ``take_seats`` (the conditional
  update of the ticket type's row, then the event's), taken from sql/ddl/0004.
- **new schema**: the migrated database as it is: ``take_seats`` claims a shard of
  ``seat_counters`` (16 per counter) and writes it on the registration, as the service does.

The rounds alternate (old, new, new, old, ...) so that drift on a shared machine hits both.
Everything runs on a local stack of its own (``.aqstream/bench``) and a fresh database::

    flock /tmp/bench.lock python -m bench.seat_counters [--clients 64] [--seats 2000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from aqstream.apiserver import api_server
from bench.flash_sale import Buyer, CpuAccount, Result, bench_stack, run_sale
from bench.kit import Sale, found_world, load_average, machine, open_sale, say, show_table, url_dsn
from bench.summary import ratio_line
from core.settings import PROJECT_ROOT, Settings
from domain.db import uuid7

TARGET_RATIO = 2.0  # issue 24: the new counters sell at least twice as fast as the old ones
SQL_DIR = PROJECT_ROOT / "sql" / "ddl"

SET_CONTEXT = (
    "SELECT set_config('app.user_id', %s, true), set_config('app.tenant_id', '', true), "
    "set_config('app.platform_admin', '', true)"
)
INSERT_REGISTRATION = (
    "INSERT INTO {schema}.registrations (id, tenant_id, event_id, ticket_type_id, user_id, "
    "quantity, status, payment_mode, currency, amount_total, amount_due_now, amount_paid, "
    "ticket_secret, confirmed_at) "
    "VALUES (%s, %s, %s, %s, %s, 1, 'confirmed', 'free', 'EUR', 0, 0, 0, %s, now())"
)
INSERT_OUTBOX = (
    "INSERT INTO {schema}.outbox (id, tenant_id, aggregate_type, aggregate_id, event_type, "
    "schema_version, payload, headers) VALUES "
    "(%s, %s, 'registration', %s, 'registration.created', 1, %s, %s), "
    "(%s, %s, 'registration', %s, 'registration.confirmed', 1, %s, %s)"
)
TAKE = {
    "legacy": "SELECT legacy.take_seats(%s, 1, false)",
    "public": "SELECT public.take_seats(%s, 1, false, %s, NULL)",  # as the service: the shard
}


# --- the old schema, rebuilt ----------------------------------------------------------------------

LEGACY_TABLES = ("events", "ticket_types", "registrations", "outbox")
LEGACY_FKS = (
    "ALTER TABLE legacy.ticket_types ADD FOREIGN KEY (event_id) REFERENCES legacy.events (id)",
    "ALTER TABLE legacy.ticket_types ADD FOREIGN KEY (tenant_id) REFERENCES organizations (id)",
    "ALTER TABLE legacy.events ADD FOREIGN KEY (tenant_id) REFERENCES organizations (id)",
    "ALTER TABLE legacy.events ADD FOREIGN KEY (created_by) REFERENCES users (id)",
    "ALTER TABLE legacy.registrations ADD FOREIGN KEY (event_id) REFERENCES legacy.events (id)",
    "ALTER TABLE legacy.registrations "
    "ADD FOREIGN KEY (ticket_type_id) REFERENCES legacy.ticket_types (id)",
    "ALTER TABLE legacy.registrations ADD FOREIGN KEY (tenant_id) REFERENCES organizations (id)",
    "ALTER TABLE legacy.registrations ADD FOREIGN KEY (user_id) REFERENCES users (id)",
    "ALTER TABLE legacy.registrations "
    "ADD FOREIGN KEY (reservation_id) REFERENCES reservations (id)",
)


def old_seat_functions() -> str:
    """0004's claim_seats and take_seats, verbatim, in schema legacy (its tables first)."""
    ddl = (SQL_DIR / "0004_events_registrations.sql").read_text()
    start = ddl.index("CREATE FUNCTION claim_seats(")
    end = ddl.index("-- What claim_seats would answer")
    functions = ddl[start:end].replace("CREATE FUNCTION ", "CREATE FUNCTION legacy.")
    functions = functions.replace(
        "SET search_path = public, pg_temp", "SET search_path = legacy, public, pg_temp"
    )
    return functions.replace(":= claim_seats(", ":= legacy.claim_seats(")


def build_legacy(settings: Settings) -> None:
    """Schema ``legacy``: the counter tables as before 0023, with what bears on a registration's
    transaction copied from the live tables (columns, defaults, CHECKs, indexes, triggers, row
    level security and its policies, grants), and the old seat functions."""
    app = settings.app_db_user
    with psycopg.connect(url_dsn(settings.owner_url), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA legacy")
        conn.execute(f'GRANT USAGE ON SCHEMA legacy TO "{app}"')
        policies = conn.execute(
            "SELECT tablename, policyname, permissive, cmd, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' AND tablename = ANY(%s)",
            (list(LEGACY_TABLES),),
        ).fetchall()
        triggers = conn.execute(
            "SELECT c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE NOT t.tgisinternal AND c.relname = ANY(%s)"
            " AND c.relnamespace = 'public'::regnamespace",
            (["registrations", "outbox"],),
        ).fetchall()
        with conn.transaction():
            for table in LEGACY_TABLES:
                conn.execute(f"CREATE TABLE legacy.{table} (LIKE public.{table} INCLUDING ALL)")
                conn.execute(f"ALTER TABLE legacy.{table} ENABLE ROW LEVEL SECURITY")
                conn.execute(f'GRANT SELECT, INSERT, UPDATE ON legacy.{table} TO "{app}"')
            conn.execute(
                "ALTER TABLE legacy.ticket_types ADD COLUMN sold INTEGER DEFAULT 0 NOT NULL,"
                " ADD CONSTRAINT ck_ticket_types_within_capacity"
                " CHECK (sold >= 0 AND sold <= capacity)"
            )
            conn.execute(
                "ALTER TABLE legacy.events ADD COLUMN sold INTEGER DEFAULT 0 NOT NULL,"
                " ADD CONSTRAINT ck_events_within_capacity"
                " CHECK (sold >= 0 AND (capacity IS NULL OR sold <= capacity))"
            )
            for statement in LEGACY_FKS:
                conn.execute(statement)
            # The policies' text names tables unqualified (search_path public): with legacy
            # first, each names the legacy copy where there is one (outbox_append reads
            # legacy.registrations, as the live one reads the live table).
            conn.execute("SET LOCAL search_path = legacy, public")
            for table, name, permissive, cmd, qual, check in policies:
                conn.execute(
                    f"CREATE POLICY {name} ON legacy.{table} AS {permissive} FOR {cmd}"
                    + (f" USING ({qual})" if qual else "")
                    + (f" WITH CHECK ({check})" if check else "")
                )
            for table, definition in triggers:
                conn.execute(
                    re.sub(rf" ON (public\.)?{table} ", f" ON legacy.{table} ", definition)
                )
            conn.execute(old_seat_functions())
            conn.execute(
                "REVOKE ALL ON FUNCTION legacy.claim_seats(uuid, int, boolean),"
                " legacy.take_seats(uuid, int, boolean) FROM PUBLIC"
            )
            conn.execute(
                "GRANT EXECUTE ON FUNCTION legacy.claim_seats(uuid, int, boolean),"
                f' legacy.take_seats(uuid, int, boolean) TO "{app}"'
            )


def copy_to_legacy(settings: Settings, sale: Sale) -> None:
    """The sale's event and ticket types, with the same ids, in the legacy tables."""
    columns = {}
    with psycopg.connect(url_dsn(settings.owner_url)) as conn:
        for table in ("events", "ticket_types"):
            columns[table] = ", ".join(
                conn.execute(
                    "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)"
                    " FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
                    " AND NOT attisdropped",
                    (f"public.{table}",),
                ).fetchone()
            )
        conn.execute(
            f"INSERT INTO legacy.events ({columns['events']}, sold)"
            f" SELECT {columns['events']}, 0 FROM public.events WHERE id = %s",
            (sale.event_id,),
        )
        conn.execute(
            f"INSERT INTO legacy.ticket_types ({columns['ticket_types']}, sold)"
            f" SELECT {columns['ticket_types']}, 0 FROM public.ticket_types WHERE event_id = %s",
            (sale.event_id,),
        )


# --- buying a seat ---------------------------------------------------------------------------------


def sql_buyer(settings: Settings, world: Any, sale: Sale, schema: str) -> Buyer:
    """One transaction per registration, as the application role under RLS, in ``schema``
    ("legacy": the old counters; "public": the sharded ones)."""
    dsn = url_dsn(settings.app_url)
    application_name = f"bench-seats-{schema}"
    insert_registration = INSERT_REGISTRATION.format(schema=schema)
    insert_outbox = INSERT_OUTBOX.format(schema=schema)
    take = TAKE[schema]

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
        created = {**common, "ticket_type_id": tt, "quantity": 1, "status": "confirmed",
                   "payment_mode": "free", "currency": "EUR", "amount_total": 0,
                   "amount_due_now": 0, "reservation_id": None}  # fmt: skip
        headers = Jsonb({"correlation_id": uuid.uuid4().hex})
        with conn.cursor() as cur:
            cur.execute(SET_CONTEXT, (str(user),))
            cur.execute(
                insert_registration,
                (registration, sale.tenant_id, sale.event_id, tt, user, secrets.token_urlsafe(16)),
            )
            cur.execute(
                insert_outbox,
                (
                    *(uuid7(), sale.tenant_id, registration, Jsonb(created), headers),
                    *(uuid7(), sale.tenant_id, registration, Jsonb({**common, "quantity": 1}), headers),
                ),
            )  # fmt: skip
        args = (tt,) if schema == "legacy" else (tt, registration)
        error: psycopg.Error | None = None
        try:
            with conn.pipeline():
                try:
                    conn.execute(take, args)
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


def check_sale(settings: Settings, sale: Sale, schema: str) -> str | None:
    """The counters agree with the rows, every seat is sold, none twice; a message if not."""
    with psycopg.connect(url_dsn(settings.owner_url)) as conn:
        sold, capacity, event_sold, rows = conn.execute(
            f"SELECT sum(t.sold), sum(t.capacity), e.sold,"
            f"  (SELECT count(*) FROM {schema}.registrations r"
            f"   WHERE r.event_id = e.id AND r.status <> 'cancelled')"
            f" FROM {schema}.ticket_types t JOIN {schema}.events e ON e.id = t.event_id"
            f" WHERE e.id = %s GROUP BY e.id, e.capacity",
            (sale.event_id,),
        ).fetchone()
        if schema == "public":
            unstamped = conn.execute(
                "SELECT count(*) FROM registrations WHERE event_id = %s AND seat_shard IS NULL",
                (sale.event_id,),
            ).fetchone()[0]
            if unstamped:
                return f"{unstamped} registrations without their shard"
    if sold == capacity == rows == sale.seats and event_sold in (0, sold):
        return None
    return f"ticket type sold {sold} of {capacity}, event sold {event_sold}, registrations {rows}"


# --- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seat_counters",
        description="Raw SQL flash sale: the old hot-row counter against the sharded counters.",
    )
    parser.add_argument("--clients", type=int, default=64, help="concurrent buyers (64)")
    parser.add_argument("--seats", type=int, default=2000, help="seats on sale (2000)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each schema (2)")
    parser.add_argument(
        "--event-capacity",
        action="store_true",
        help="cap the event as well: a second counter in every transaction",
    )
    parser.add_argument(
        "--no-notify",
        action="store_true",
        help="turn the outbox's NOTIFY wake-up hint off (aqstream.outbox_notify = off, as "
        "migration 0002 allows): a notifying commit holds a cluster-wide lock through its WAL "
        "flush, so with it on, commits go one at a time whatever the counters do",
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
    if min(args.clients, args.seats, args.rounds) < 1:
        parser.error("--clients, --seats and --rounds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info: dict[str, Any] = {
        **machine(),
        "clients": args.clients,
        "seats": args.seats,
        "event_capacity": args.event_capacity,
        "outbox_notify": not args.no_notify,
        "load_before": load_average(),
    }
    order = [
        ("legacy", "public") if k % 2 == 0 else ("public", "legacy") for k in range(args.rounds)
    ]
    schedule = [schema for pair in order for schema in pair]
    people = args.seats + 2 * args.clients  # the same participants buy in every sale
    results: list[tuple[str, Result]] = []
    failed = False
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
        build_legacy(settings)
        if args.no_notify:
            with psycopg.connect(owner_dsn, autocommit=True) as conn:
                database = conn.execute("SELECT current_database()").fetchone()[0]
                conn.execute(f'ALTER DATABASE "{database}" SET aqstream.outbox_notify = off')
        log = args.state_dir / "logs" / "bench-seat-counters-api.log"
        # The API only founds the organizer and opens the sales; it is stopped before any run.
        with api_server(settings, workers=1, log=log, AQSTREAM_LOG_JSON="false") as (url, _):
            say(f"{people} participants, {len(schedule)} sales of {args.seats} seats ...")
            world = found_world(url, settings, people)
            sales = [
                open_sale(url, world, args.seats, f"{schema} {k}",
                          event_capacity=args.event_capacity)
                for k, schema in enumerate(schedule)
            ]  # fmt: skip
        for sale, schema in zip(sales, schedule, strict=True):
            if schema == "legacy":
                copy_to_legacy(settings, sale)
        cpu = CpuAccount(trees={k: pid for k, pid in pids.items()}, alone={})
        for k, (sale, schema) in enumerate(zip(sales, schedule, strict=True)):
            name = f"{'old' if schema == 'legacy' else 'new'} schema, run {k // 2 + 1}"
            result = run_sale(
                name, schema, sale, sql_buyer(settings, world, sale, schema),
                args.clients, people, cpu, owner_dsn,
            )  # fmt: skip
            problem = check_sale(settings, sale, schema)
            odd = set(result.answers) - {"ok", "sold_out"}
            if problem or odd:
                failed = True
                result.check = problem or f"unexpected answers: {sorted(odd)}"
            results.append((schema, result))
    info["load_after"] = load_average()
    figures = report(results, info)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        say(f"figures written to {args.json}")
    return 1 if failed else 0


def report(results: list[tuple[str, Result]], info: dict[str, Any]) -> dict[str, Any]:
    old = statistics.mean(r.per_second for s, r in results if s == "legacy")
    new = statistics.mean(r.per_second for s, r in results if s == "public")
    ratio = new / old if old else 0.0
    say()
    say(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram_gib']} GiB RAM, "
        f"PostgreSQL {info['postgres']} (fsync={info['postgres_settings'].get('fsync')}, "
        f"synchronous_commit={info['postgres_settings'].get('synchronous_commit')}), "
        f"Python {info['python']}; load average before/after {info['load_before']} / "
        f"{info['load_after']}"
    )
    say(
        f"{info['clients']} clients, {info['seats']} seats of one ticket type per run, "
        f"event capacity {'set' if info['event_capacity'] else 'unset'}, "
        f"outbox NOTIFY {'on' if info['outbox_notify'] else 'off'}"
    )
    head = ("run", "reg/s", "sold", "s", "p50 ms", "p95 ms", "answers", "check")
    rows = [
        (r.name, f"{r.per_second:,.0f}", str(r.sold), f"{r.seconds:.1f}", f"{r.p50_ms:.1f}",
         f"{r.p95_ms:.1f}", ", ".join(f"{k} {v}" for k, v in sorted(r.answers.items())), r.check)
        for _, r in results
    ]  # fmt: skip
    show_table("Raw SQL flash sale: old counters vs sharded counters", head, rows)
    for _, r in results:
        shares = ", ".join(f"{k} {v}" for k, v in r.backends.items() if v >= 1.0)
        say(f"{r.name}: PostgreSQL backends, % of samples: {shares}")
        pg = r.cpu_seconds.get("postgres")
        if pg is not None and r.sold:
            say(f"  PostgreSQL CPU {1000 * pg / r.sold:.2f} ms per registration")
    met = "met" if ratio >= TARGET_RATIO else "NOT MET"
    say()
    say(
        f"new / old schema: {new:,.0f} / {old:,.0f} registrations/s = {ratio:.2f} "
        f"(target >= {TARGET_RATIO:g}): {met}"
    )
    line = ratio_line(
        "seat counters",
        f"registrations/s, raw SQL, sharded counters ({info['clients']} clients)",
        round(new, 1),
        round(old, 1),
        "raw SQL, old counters",
        "reg/s",
        TARGET_RATIO,
    )
    return {
        "machine": info,
        "results": [{"schema": s, **r.__dict__} for s, r in results],
        "verdict": {"new_per_second": new, "old_per_second": old, "ratio": round(ratio, 3)},
        "summary": [line.asdict()],
    }


if __name__ == "__main__":
    sys.exit(main())
