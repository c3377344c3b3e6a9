"""The worker's Prometheus metrics count what its processor did: handled records, retries, dead
letters and skipped replays, per agent."""

from __future__ import annotations

import asyncio
import json
import uuid

from aqstream.settings import Settings
from streams.worker import REPLAY_FOR, Deps, Processor, Record


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
