"""Analytics warehouse: the sink's throughput against storing the same facts raw, and the dashboard
API's latency with millions of tracked events in the warehouse.

On a local stack of its own (``.aqstream/bench-warehouse``) and a fresh database:

1. **Sink.** Batches of 1,000 facts as the analytics agent hands them over (mostly page views of
   a few live events, some funnel, registration and payment facts, timestamps moving forward
   like live traffic): ``warehouse.sink.ingest`` (raw facts + minute/hour/day rollups) against
   the baseline side by side, the raw facts alone stored with one ``INSERT ... unnest`` per
   batch. Rounds alternate; the figure is the median ratio.
2. **Dashboard.** ``--facts`` tracked events (default 10 M) over ``--days`` days and 20 events of
   one organization, written server-side and aggregated with ``aqstream backfill``'s code; then
   ``GET /analytics/events/{id}/dashboard`` through the app (in-process ASGI: auth, tenancy,
   serialisation included) for random events: the whole history (hourly), the last 7 days
   (hourly) and one day by the minute. p50/p95 per shape.

::

    python -m bench.warehouse [--facts 10000000] [--days 60] [--batches 30] [--rounds 3]
                              [--requests 200] [--json out.json] [--keep-stack]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.kit import bench_stack, load_average, machine, say
from bench.summary import bound_line, ratio_line
from core.settings import PROJECT_ROOT
from domain.analytics.facts import Fact, FactKind
from domain.db import make_engine
from warehouse.engine import warehouse_engine
from warehouse.rollups import floor
from warehouse.sink import ingest

_SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"
# The baseline's statement: the same columns, unnested, no rollups, no uniqueness.
_RAW_INSERT = (
    "INSERT INTO warehouse.facts (tenant_id, fact_id, occurred_at, kind, event_id, visitor_id,"
    " source, device, amount, currency, purpose) SELECT %s::uuid, * FROM unnest(%s::uuid[],"
    " %s::timestamptz[], %s::text[], %s::uuid[], %s::text[], %s::text[], %s::text[],"
    " %s::bigint[], %s::text[], %s::text[]) ON CONFLICT DO NOTHING"
)


def _raw_columns(tenant: uuid.UUID, facts: list[Fact]) -> tuple[object, ...]:
    return (
        tenant,
        [f.fact_id for f in facts],
        [f.occurred_at for f in facts],
        [str(f.kind) for f in facts],
        [f.event_id for f in facts],
        [f.visitor_id for f in facts],
        [f.source for f in facts],
        [f.device for f in facts],
        [f.amount for f in facts],
        [f.currency for f in facts],
        [f.purpose for f in facts],
    )


TARGET_P95_MS = 100.0
KINDS = (
    [FactKind.PAGE_VIEW] * 80
    + [FactKind.TICKET_SELECTED] * 10
    + [FactKind.CHECKOUT_STARTED] * 5
    + [FactKind.REGISTRATION] * 3
    + [FactKind.PAYMENT] * 2
)


def live_batches(n: int, size: int, seed: int) -> list[list[Fact]]:
    """``n`` batches of ``size`` facts of 3 tenants x 4 events, about 2 s of traffic each."""
    rng = random.Random(seed)
    tenants = [uuid.uuid4() for _ in range(3)]
    events = [(t, uuid.uuid4()) for t in tenants for _ in range(4)]
    at = datetime.now(UTC) - timedelta(hours=1)
    batches = []
    for _ in range(n):
        batch = []
        for _ in range(size):
            at += timedelta(milliseconds=rng.randint(0, 4))
            tenant, event = rng.choice(events)
            kind = rng.choice(KINDS)
            extra: dict[str, Any] = {}
            if kind in (FactKind.PAGE_VIEW, FactKind.TICKET_SELECTED, FactKind.CHECKOUT_STARTED):
                extra = {
                    "visitor_id": f"v{rng.randint(1, 20_000)}",
                    "source": rng.choice(["direct", "newsletter", "twitter", "google"]),
                    "device": rng.choice(["desktop", "mobile", "tablet"]),
                }
            elif kind == FactKind.PAYMENT:
                extra = {"amount": 4900, "currency": "EUR", "purpose": "full"}
            batch.append(Fact(uuid.uuid4(), kind, tenant, event, at, **extra))
        batches.append(batch)
    return batches


def run_sink(writer, batches: list[list[Fact]]) -> float:
    start = time.perf_counter()
    for batch in batches:
        with Session(writer) as session, session.begin():
            ingest(session, batch)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def run_raw(writer, batches: list[list[Fact]]) -> float:
    """The baseline: the same facts stored raw, one INSERT per tenant and batch, no rollups."""
    start = time.perf_counter()
    for batch in batches:
        with Session(writer) as session, session.begin():
            pg = session.connection().connection.driver_connection
            by_tenant: dict[uuid.UUID, list[Fact]] = {}
            for f in batch:
                by_tenant.setdefault(f.tenant_id, []).append(f)
            with pg.pipeline():
                for tenant, facts in by_tenant.items():
                    pg.execute(_SET_TENANT, (str(tenant),))
                    pg.execute(_RAW_INSERT, _raw_columns(tenant, facts))
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def sink_benchmark(writer, batches: int, rounds: int) -> dict[str, Any]:
    ratios, sink_rates, raw_rates = [], [], []
    for r in range(rounds):
        a, b = live_batches(batches, 1000, seed=2 * r), live_batches(batches, 1000, seed=2 * r + 1)
        if r % 2:
            raw, sink = run_raw(writer, a), run_sink(writer, b)
        else:
            sink, raw = run_sink(writer, a), run_raw(writer, b)
        say(f"  round {r + 1}: sink {sink:,.0f} facts/s, raw insert {raw:,.0f} facts/s")
        sink_rates.append(sink)
        raw_rates.append(raw)
        ratios.append(sink / raw)
    return {
        "sink_facts_per_s": statistics.median(sink_rates),
        "raw_facts_per_s": statistics.median(raw_rates),
        "ratio": statistics.median(ratios),
    }


# --- the dashboard at scale -------------------------------------------------------------------


def load(client, owner_engine, writer, facts: int, days: int) -> tuple[dict, list[str]]:
    """An organization with 20 events, and ``facts`` tracked facts (plus funnel facts) of them
    written server-side, then aggregated by the backfill's statements."""
    from warehouse.backfill import backfill

    email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
    body = {"email": email, "password": "correct horse battery"}
    user = client.post("/api/v1/auth/register", json=body).json()
    headers = {"Authorization": f"Bearer {user['access_token']}"}
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET is_platform_admin = true WHERE id = :id"),
            {"id": user["user"]["id"]},
        )
    request = client.post(
        "/api/v1/organization-requests",
        json={"name": "Bench", "slug": f"bench-{uuid.uuid4().hex[:8]}"},
        headers=headers,
    ).json()
    client.post(f"/api/v1/organization-requests/{request['id']}/approve", headers=headers)
    org = client.post(
        "/api/v1/organizations", json={"request_id": request["id"]}, headers=headers
    ).json()
    events = []
    for i in range(20):
        event = client.post(
            "/api/v1/events",
            headers=headers,
            json={
                "organization_id": org["id"],
                "title": f"Bench event {i}",
                "starts_at": "2027-04-01T09:00:00+02:00",
                "ends_at": "2027-04-01T18:00:00+02:00",
                "timezone": "Europe/Berlin",
            },
        ).json()
        events.append(event["id"])
    end = floor(datetime.now(UTC), "hour")
    start = end - timedelta(days=days)
    say(f"writing {facts:,} tracked facts over {days} days and 20 events ...")
    t = time.perf_counter()
    # Events get uneven shares (a few big ones); visitors revisit; 1 in 50 views registers.
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO warehouse.facts (tenant_id, fact_id, occurred_at, kind, event_id,
                    visitor_id, session_id, source, device)
                SELECT :tenant, gen_random_uuid(),
                       :start + (random() * :span) * interval '1 second',
                       (ARRAY['page_view','page_view','page_view','page_view','page_view',
                              'page_view','page_view','ticket_selected','ticket_selected',
                              'checkout_started'])[1 + (i % 10)],
                       (CAST(:events AS uuid[]))[1 + floor(20 * power(random(), 2))::int],
                       'v' || floor(random() * 500000)::int, NULL,
                       (ARRAY['direct','newsletter','twitter','google'])[1 + (i % 4)],
                       (ARRAY['desktop','mobile','tablet'])[1 + (i % 3)]
                FROM generate_series(1, :n) AS i
                """
            ),
            {
                "tenant": org["id"],
                "start": start,
                "span": (end - start).total_seconds(),
                "events": events,
                "n": facts,
            },
        )
        conn.execute(
            text(
                """
                INSERT INTO warehouse.facts (tenant_id, fact_id, occurred_at, kind, event_id,
                    quantity, amount, currency, purpose)
                SELECT tenant_id, gen_random_uuid(), occurred_at + interval '3 minutes',
                       k, event_id, 1, CASE WHEN k = 'payment' THEN 4900 ELSE 0 END,
                       CASE WHEN k = 'payment' THEN 'EUR' END,
                       CASE WHEN k = 'payment' THEN 'full' END
                FROM warehouse.facts, unnest(ARRAY['registration', 'payment']) AS k
                WHERE kind = 'checkout_started' AND random() < 0.2
                """
            )
        )
        conn.execute(text("ANALYZE warehouse.facts"))
    say(f"  written in {time.perf_counter() - t:.0f} s; aggregating (backfill) ...")
    t = time.perf_counter()
    result = backfill(owner_engine, writer)
    say(
        f"  {result.facts:,} facts into {result.minute_rows:,} minute rows "
        f"in {time.perf_counter() - t:.0f} s"
    )
    with owner_engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return headers, events


def dashboard_benchmark(client, headers: dict, events: list[str], requests: int) -> dict:
    now = floor(datetime.now(UTC), "hour")
    shapes = {
        "whole history, hourly": {},
        "last 7 days, hourly": {
            "from": (now - timedelta(days=7)).isoformat(),
            "to": now.isoformat(),
            "granularity": "hour",
        },
        "one day by the minute": {
            "from": (now - timedelta(days=2)).isoformat(),
            "to": (now - timedelta(days=1)).isoformat(),
            "granularity": "minute",
        },
    }
    rng = random.Random(1)
    out = {}
    for name, params in shapes.items():
        for event in events[:3]:  # warm-up
            client.get(
                f"/api/v1/analytics/events/{event}/dashboard", params=params, headers=headers
            )
        times = []
        for _ in range(requests):
            event = rng.choice(events)
            t = time.perf_counter()
            response = client.get(
                f"/api/v1/analytics/events/{event}/dashboard", params=params, headers=headers
            )
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, response.text
        times.sort()
        out[name] = {
            "p50_ms": statistics.median(times),
            "p95_ms": times[int(0.95 * len(times)) - 1],
            "max_ms": times[-1],
        }
        say(f"  {name}: p50 {out[name]['p50_ms']:.1f} ms, p95 {out[name]['p95_ms']:.1f} ms")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-stack", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from fastapi.testclient import TestClient

    from api.app import create_app

    args = parse_args(argv)
    say(f"machine: {machine()}, load {load_average()}")
    state = PROJECT_ROOT / ".aqstream" / "bench-warehouse"
    with bench_stack(state, args.keep_stack, db_prefix="aqstream_bench_wh") as settings:
        owner_engine = make_engine(settings.owner_url, pool_size=2, statement_timeout_ms=0)
        writer = warehouse_engine(settings, pool_size=2, statement_timeout_ms=0)
        say(f"sink: {args.rounds} rounds of {args.batches} batches of 1,000 facts")
        sink = sink_benchmark(writer, args.batches, args.rounds)
        # the dashboard's latency, not the API's rate limit (600 requests a minute per user,
        # which the three shapes' requests outrun), as bench.analytics runs its API
        unlimited = settings.model_copy(update={"rate_limit_enabled": False})
        with TestClient(create_app(unlimited)) as client:
            headers, events = load(client, owner_engine, writer, args.facts, args.days)
            say(f"dashboard: {args.requests} requests per shape")
            dash = dashboard_benchmark(client, headers, events, args.requests)
        owner_engine.dispose()
        writer.dispose()
    worst = max(v["p95_ms"] for v in dash.values())
    summary = [
        ratio_line(
            "warehouse",
            "facts/s, sink (facts + rollups) vs raw insert",
            sink["sink_facts_per_s"],
            sink["raw_facts_per_s"],
            "raw INSERT of the facts",
            "facts/s",
            0.3,
        ).asdict(),
        bound_line(
            "warehouse",
            f"dashboard p95, {args.facts / 1e6:g} M tracked events (worst shape)",
            worst,
            "ms",
            TARGET_P95_MS,
        ).asdict(),
    ]
    result = {"sink": sink, "dashboard": dash, "facts": args.facts, "summary": summary}
    say(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
