"""The analytics agent in the real Faust worker against the real broker, with a sink of the test's
own: batches (never more than the batch size, one transaction each), every record once, a fact
that keeps failing dead-lettered alone (its batch's others stored), unreadable records
dead-lettered at once, other types skipped."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from domain.analytics.facts import FactKind
from domain.analytics.tracking import Action, PublishedEvent, to_record
from streams.analytics import ANALYTICS
from streams.topics import dlq_topic, tracking_topic
from streams.tracking import make_tracking_producer, publish_tracking
from tests.analytics.conftest import read_topic
from tests.worker.conftest import wait_for

N = 450
BATCH = 100


class RecordingSink:
    """Keeps the facts of every batch that committed; refuses any batch holding the poison."""

    def __init__(self, poison: str) -> None:
        self.poison = poison
        self.batches: list[list] = []
        self.refused = 0
        self.lock = threading.Lock()

    def __call__(self, session: Session, facts) -> None:
        assert session.in_transaction()
        session.execute(text("SELECT 1"))  # a live connection of the agent's transaction
        if any(f.visitor_id == self.poison for f in facts):
            with self.lock:
                self.refused += 1
            raise RuntimeError("the warehouse refuses this fact")
        with self.lock:
            self.batches.append(list(facts))

    @property
    def facts(self) -> list:
        with self.lock:
            return [f for batch in self.batches for f in batch]


@pytest.mark.slow
def test_the_agent_stores_batches_once_and_dead_letters_only_what_fails(
    worker_settings, analytics_workers
) -> None:
    settings = worker_settings.model_copy(
        update={"analytics_batch_max": BATCH, "analytics_batch_within_s": 0.2}
    )
    tenant, event = uuid.uuid4(), uuid.uuid4()
    published = PublishedEvent(event, tenant, frozenset())
    now = datetime.now(UTC)
    poison = "poison"
    actions = [
        Action(
            type=("page_view", "ticket_selected", "checkout_started")[i % 3],
            event_id=event,
            visitor_id=poison if i == 200 else f"v{i % 40}",
            session_id=f"s{i}",
            occurred_at=now - timedelta(seconds=N - i),
        )
        for i in range(N)
    ]
    records = [to_record(a, published, now, "desktop") for a in actions]
    sink = RecordingSink(poison)
    worker = analytics_workers(settings, sink=sink)

    producer = make_tracking_producer(settings)
    try:
        topic = tracking_topic(settings).name
        publish_tracking(producer, topic, records, timeout_s=10)
        # not counted: another type on the same topic; unreadable: no JSON, a fact without ids
        producer.send(topic, key=b"x", value=b"{}", headers=[("event_type", b"tracking.other")])
        producer.send(
            topic,
            key=b"x",
            value=b"not json",
            headers=[
                ("event_type", b"tracking.page_view"),
                ("event_id", str(uuid.uuid4()).encode()),
            ],
        )
        producer.flush(10)
    finally:
        producer.close()

    expected = {r.id for r in records if r.value["visitor_id"] != poison}
    wait_for(lambda: {str(f.fact_id) for f in sink.facts} >= expected, 60, "every good fact")
    dead = read_topic(
        settings.kafka_bootstrap,
        dlq_topic(settings).name,
        2,
        where=lambda item: item.headers.get("dlq_consumer") == ANALYTICS,
    )
    stored = sink.facts
    assert sorted(str(f.fact_id) for f in stored) == sorted(expected)  # each once
    assert all(len(batch) <= BATCH for batch in sink.batches)
    singles = [batch for batch in sink.batches if len(batch) == 1]
    assert len(singles) < BATCH  # the poisoned batch, tried fact by fact
    assert len(sink.batches) - len(singles) < N / 10, "not batched"
    assert sink.refused >= settings.worker_retry_attempts + 1  # its batch's tries, then alone
    kinds = {f.kind for f in stored}
    assert kinds == {FactKind.PAGE_VIEW, FactKind.TICKET_SELECTED, FactKind.CHECKOUT_STARTED}
    assert all(f.tenant_id == tenant and f.event_id == event for f in stored)

    poisoned = next(r for r in records if r.value["visitor_id"] == poison)
    by_error = {d.headers["dlq_error"].split(":")[0].rsplit(".", 1)[-1]: d for d in dead}
    assert set(by_error) == {"RuntimeError", "UnreadableRecord"}, list(by_error)
    assert "DecodeError" in by_error["UnreadableRecord"].headers["dlq_error"]
    assert by_error["RuntimeError"].headers["event_id"] == poisoned.id
    assert by_error["RuntimeError"].headers["dlq_topic"] == tracking_topic(settings).name

    assert worker.processor is not None
    metrics = worker.processor.metrics
    assert metrics.records.labels(ANALYTICS, "ok")._value.get() == len(expected)
    assert metrics.records.labels(ANALYTICS, "dead_letter")._value.get() == 2
    assert metrics.records.labels(ANALYTICS, "skipped")._value.get() >= 1
    views = sum(1 for f in stored if f.kind == FactKind.PAGE_VIEW)
    assert metrics.facts.labels("page_view")._value.get() == views
