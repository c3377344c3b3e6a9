"""The worker's Prometheus metrics count what its processor did: handled records, retries, dead
letters and skipped replays, per agent."""

from __future__ import annotations

import asyncio
import json
import uuid

from prometheus_client import CollectorRegistry, Histogram

from core.settings import Settings
from streams.dlq import REPLAY_FOR
from streams.metrics import observe_many
from streams.processor import Deps, Processor
from streams.records import Record


def _record(**headers: str) -> Record:
    return Record(
        topic="t",
        partition=0,
        offset=7,
        key=b"k",
        value=json.dumps({}).encode(),
        headers={"event_id": str(uuid.uuid4()), "event_type": "x.y", **headers},
    )


def _value(processor: Processor, name: str, **labels: str) -> float:
    return processor.metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_counters_follow_what_the_processor_did(settings: Settings) -> None:
    quick = settings.model_copy(update={"worker_retry_attempts": 3, "worker_retry_base_s": 0.0})
    sent: list[str] = []

    async def send(topic, key, value, headers) -> None:
        sent.append(topic)

    processor = Processor(Deps(quick, None, None, None), send)  # type: ignore[arg-type]
    tries = {"flaky": 0}

    async def flaky(deps, record) -> None:
        tries["flaky"] += 1
        if tries["flaky"] == 1:
            raise RuntimeError("once")

    async def broken(deps, record) -> None:
        raise RuntimeError("always")

    async def scenario() -> None:
        await processor.process("a", flaky, _record(occurred_at="2026-01-01T00:00:00+00:00"))
        await processor.process("a", broken, _record())
        await processor.process("a", broken, _record(**{REPLAY_FOR: "b"}))

    asyncio.run(scenario())

    assert _value(processor, "aqstream_worker_records_total", agent="a", outcome="ok") == 1
    assert _value(processor, "aqstream_worker_records_total", agent="a", outcome="dead_letter") == 1
    assert _value(processor, "aqstream_worker_records_total", agent="a", outcome="skipped") == 1
    assert _value(processor, "aqstream_worker_retries_total", agent="a") == 1 + 2
    assert _value(processor, "aqstream_worker_record_seconds_count", agent="a") == 2
    assert _value(processor, "aqstream_worker_lag_seconds_count", agent="a") == 1
    assert len(sent) == 1  # the dead letter


def test_observe_many_is_observe_for_each_value() -> None:
    """The batch form the analytics agent uses for its facts' lags puts every value in the same
    bucket as ``observe`` (bounds included: a value equal to a bound is in that bucket) and adds
    the same sum."""
    registry = CollectorRegistry()
    histogram = Histogram("h", "h", ["way"], buckets=(0.01, 0.5, 1, 300), registry=registry)
    values = [0.0, 0.01, 0.0100001, 0.3, 0.5, 1.0, 1.5, 299.9, 300.0, 301.0, 1e9] * 3
    for value in values:
        histogram.labels("one").observe(value)
    observe_many(histogram.labels("many"), values)

    def samples(way: str) -> dict[tuple[str, str | None], float]:
        return {
            (s.name, s.labels.get("le")): s.value
            for family in registry.collect()
            for s in family.samples
            if s.labels.get("way") == way and not s.name.endswith("_created")
        }

    one, many = samples("one"), samples("many")
    assert one == many
    assert many[("h_bucket", "0.01")] == 6 and many[("h_bucket", "+Inf")] == len(values)
