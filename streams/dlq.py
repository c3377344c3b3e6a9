"""The dead-letter topic ``<namespace>.dlq.v1``: what a dead letter carries, and its replay.

A record the worker gave up on is published there with its original key, value and headers plus
``dlq_*`` headers (where it came from, which agent, the error, the tries, when).
``replay_dead_letters`` (``aqstream dlq replay``) sends dead letters back to their topics,
addressed to the agent that failed (header ``replay_for``); the other agents skip them.
"""

from __future__ import annotations

import time
import traceback
from datetime import UTC, datetime

from core.logging import get_logger
from core.settings import Settings
from domain.outbox.records import decode_headers
from streams.producer import make_producer
from streams.records import Record
from streams.topics import dlq_topic

log = get_logger(__name__)

REPLAY_FOR = "replay_for"  # header of a replayed dead letter: the one agent it is meant for
ERROR_CHARS = 4000
REPLAY_TIMEOUT_S = 30.0


def _original(name: str) -> bool:
    """Whether a header is the record's own, not one a dead letter or a replay added."""
    return not name.startswith("dlq_") and name != REPLAY_FOR


def dead_letter_headers(
    agent: str, record: Record, exc: BaseException, attempts: int
) -> list[tuple[str, bytes]]:
    """The record's own headers and the ``dlq_*`` ones of ``agent`` giving up on it."""
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    headers = [(k, v.encode()) for k, v in record.headers.items() if _original(k)]
    headers += [
        ("dlq_topic", record.topic.encode()),
        ("dlq_partition", str(record.partition).encode()),
        ("dlq_offset", str(record.offset).encode()),
        ("dlq_consumer", agent.encode()),
        ("dlq_error", error[:ERROR_CHARS].encode()),
        ("dlq_attempts", str(attempts).encode()),
        ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    return headers


def _caught_up(consumer, settings: Settings) -> bool:  # type: ignore[no-untyped-def]
    """Whether the consumer has read every partition assigned to it to its end. Only Apache
    Kafka's end offsets are trusted: Tansu reports wrong ones, so there an idle wait decides."""
    assigned = consumer.assignment()
    if settings.kafka_flavor != "kafka" or not assigned:
        return False
    ends = consumer.end_offsets(list(assigned))
    return all(consumer.position(tp) >= ends[tp] for tp in assigned)


def replay_dead_letters(
    settings: Settings, *, limit: int | None = None, idle_s: float = 3.0
) -> int:
    """Send dead letters back to the topics they came from, addressed to the agent that gave
    up on them (``replay_for``); answer how many. Progress is a consumer group's committed
    offsets (``<namespace>.dlq-replay``): each dead letter is replayed once, the first ``limit``
    not yet replayed, stopping at the topic's end (on Apache Kafka) or when none arrived for
    ``idle_s``."""
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata

    assert settings.kafka_bootstrap, "AQSTREAM_KAFKA_BOOTSTRAP is not set"
    consumer = KafkaConsumer(
        dlq_topic(settings).name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.topic_namespace}.dlq-replay",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.worker_fetch_max_wait_ms,
        session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.worker_heartbeat_interval_s * 1000),
        max_poll_records=1 if limit else 500,
    )
    producer = make_producer(settings, "aqstream-dlq-replay", timeout_s=REPLAY_TIMEOUT_S)
    replayed = 0
    try:
        last = time.monotonic()
        while limit is None or replayed < limit:
            batches = consumer.poll(timeout_ms=200)
            if not batches:
                if _caught_up(consumer, settings) or (
                    consumer.assignment() and time.monotonic() - last > idle_s
                ):
                    break
                if time.monotonic() - last > idle_s + 30:  # never joined: the broker is away
                    raise TimeoutError("no partition of the dead-letter topic was assigned")
                continue
            for tp, records in batches.items():
                for r in records:
                    if limit is not None and replayed >= limit:
                        break
                    letter = decode_headers(r.headers, ("dlq_topic", "dlq_consumer", "event_id"))
                    topic, agent = letter["dlq_topic"], letter.get("dlq_consumer", "")
                    out = [(k, v) for k, v in r.headers if _original(k)]
                    out.append((REPLAY_FOR, agent.encode()))
                    producer.send(topic, key=r.key, value=r.value, headers=out).get(
                        timeout=REPLAY_TIMEOUT_S
                    )
                    consumer.commit({tp: OffsetAndMetadata(r.offset + 1, "", -1)})
                    replayed += 1
                    log.info(
                        "dead_letter_replayed",
                        topic=topic,
                        agent=agent,
                        event_id=letter.get("event_id", ""),
                    )
            last = time.monotonic()
        return replayed
    finally:
        producer.close()
        consumer.close()
