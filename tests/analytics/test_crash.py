"""`kill -9` of an `aqstream worker` process while its analytics agent works through a backlog of
tracked actions, then a restart: every action is one fact, and the rollups hold exactly the
numbers the actions imply (views, unique views, selections, checkouts), nothing lost or
doubled."""

from __future__ import annotations

import signal
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from domain.analytics.tracking import Action, PublishedEvent, to_record
from streams.topics import tracking_topic
from streams.tracking import make_tracking_producer, publish_tracking
from tests.factories import Organizer
from tests.worker.conftest import stop_worker, wait_for, worker_process

N = 30_000
VISITORS = 700


def _count(engine: Engine, tenant: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM warehouse.facts WHERE tenant_id = :t"), {"t": tenant}
        ).scalar_one()


def _unique_views(records) -> int:
    """The warehouse's rule (warehouse/rollups.py): a view is unique when the same visitor had
    no view of the event in the 30 minutes before it (ties broken by fact id)."""
    by_visitor = defaultdict(list)
    for r in records:
        if r.value["type"] == "page_view":
            at = datetime.fromisoformat(r.value["occurred_at"])
            by_visitor[r.value["visitor_id"]].append((at, uuid.UUID(r.id)))
    unique = 0
    for views in by_visitor.values():
        views.sort()
        for i, (at, _) in enumerate(views):
            if i == 0 or views[i - 1][0] < at - timedelta(minutes=30):
                unique += 1
    return unique


@pytest.mark.slow
def test_kill_9_mid_backlog_then_restart_counts_every_action_once(
    client, api, admin, owner_engine, worker_settings, tmp_path: Path
) -> None:
    org = Organizer(client, api, admin)
    event, tt = org.published_event(capacity=10)
    tenant = org.org["id"]
    published = PublishedEvent(uuid.UUID(event["id"]), uuid.UUID(tenant), frozenset())
    now = datetime.now(UTC)
    records = [
        to_record(
            Action(
                type=("page_view", "page_view", "ticket_selected", "checkout_started")[i % 4],
                event_id=published.event_id,
                visitor_id=f"v{(i * 7919) % VISITORS}",
                session_id=f"s{i % 3000}",
                occurred_at=now - timedelta(seconds=3000 * (N - i) / N),
                ticket_type_id=uuid.UUID(tt["id"]) if i % 4 else None,
            ),
            published,
            now,
            "desktop",
        )
        for i in range(N)
    ]
    producer = make_tracking_producer(worker_settings)
    try:
        for start in range(0, N, 5000):
            publish_tracking(
                producer,
                tracking_topic(worker_settings).name,
                records[start : start + 5000],
                timeout_s=60,
            )
    finally:
        producer.close()

    log = tmp_path / "worker.log"
    first = worker_process(
        worker_settings, log, AQSTREAM_ANALYTICS_BATCH_MAX="200", AQSTREAM_WORKER_METRICS_PORT="0"
    )
    try:
        wait_for(lambda: _count(owner_engine, tenant) >= N // 5, 90, "the middle of the backlog")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = _count(owner_engine, tenant)
    assert at_kill < N, "the backlog was done before the kill: nothing tested"

    second = worker_process(
        worker_settings, log, AQSTREAM_ANALYTICS_BATCH_MAX="200", AQSTREAM_WORKER_METRICS_PORT="0"
    )
    try:
        wait_for(lambda: _count(owner_engine, tenant) >= N, 120, "the restarted worker")
    finally:
        stop_worker(second)

    assert _count(owner_engine, tenant) == N
    kinds = defaultdict(int)
    for r in records:
        kinds[r.value["type"]] += 1
    with owner_engine.connect() as conn:
        facts = dict(
            conn.execute(
                text(
                    "SELECT kind, count(*) FROM warehouse.facts WHERE tenant_id = :t GROUP BY kind"
                ),
                {"t": tenant},
            ).all()
        )
        totals = conn.execute(
            text(
                "SELECT sum(views), sum(unique_views), sum(ticket_selected), "
                "sum(checkout_started) FROM warehouse.event_minute WHERE tenant_id = :t"
            ),
            {"t": tenant},
        ).one()
        by_day = conn.execute(
            text("SELECT sum(views) FROM warehouse.traffic_day WHERE tenant_id = :t"),
            {"t": tenant},
        ).scalar_one()
    assert facts == dict(kinds)
    assert tuple(map(int, totals)) == (
        kinds["page_view"],
        _unique_views(records),
        kinds["ticket_selected"],
        kinds["checkout_started"],
    )
    assert int(by_day) == kinds["page_view"]
    print(f"killed with {at_kill} of {N} facts stored")
