"""The tracking topic ``<namespace>.tracking.v1``: the API's producer, and the worker's consumer.

**Producer** (``publish_tracking``, what the API imports: no Faust, no worker): the API sends
tracked actions straight to the topic (no database, no outbox), key = the event id, the eight
headers of every record (``domain/outbox/records.py``), and answers only once the broker
acknowledged every record of the batch (``acks=all``).

**Consumer** (``tracking_service``, a service of the worker's Faust app): reads the topic with
aiokafka and stores it in ``AQSTREAM_ANALYTICS_STORE_CONCURRENCY`` lanes at once (by partition; a
lane's batch is what waited for it, up to ``AQSTREAM_ANALYTICS_BATCH_MAX`` records), mapped and
stored by the analytics agent (``streams/analytics.py``). Faust's ``mode`` and aiokafka are
imported only when the worker builds it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.logging import get_logger
from core.settings import Settings
from domain.analytics.tracking import SCHEMA_VERSION, TrackingRecord
from domain.outbox.records import encode_headers
from streams.producer import make_producer
from streams.topics import TRACKING, ensure_topics, tracking_topic

if TYPE_CHECKING:
    from mode import Service

    from domain.analytics.facts import Fact
    from streams.analytics import AnalyticsAgent

log = get_logger(__name__)


# --- the API's producer --------------------------------------------------------------------------


class TrackingUnavailable(RuntimeError):
    """The broker did not take (or acknowledge) the batch in time."""


def make_tracking_producer(settings: Settings) -> Any:
    """kafka-python producer of the tracking topic (creates the topic if missing). Raises when
    the broker cannot be reached within ``AQSTREAM_ANALYTICS_PUBLISH_TIMEOUT_S``."""
    if not settings.kafka_bootstrap:
        raise TrackingUnavailable("AQSTREAM_KAFKA_BOOTSTRAP is not set")
    timeout_s = settings.analytics_publish_timeout_s
    ensure_topics(
        settings.kafka_bootstrap, [tracking_topic(settings)], timeout_ms=int(timeout_s * 1000)
    )
    return make_producer(settings, "aqstream-api-tracking", timeout_s=timeout_s)


def tracking_headers(record: TrackingRecord, correlation_id: str | None) -> list[tuple[str, bytes]]:
    """The headers of a tracked action's record (``domain.outbox.records.encode_headers``)."""
    return encode_headers(
        event_id=record.id,
        event_type=record.event_type,
        schema_version=str(SCHEMA_VERSION),
        aggregate_type=TRACKING,
        tenant_id=str(record.tenant_id),
        correlation_id=correlation_id or "",
        occurred_at=record.value["occurred_at"],
    )


def publish_tracking(
    producer: Any,
    topic: str,
    records: Sequence[TrackingRecord],
    *,
    timeout_s: float,
    correlation_id: str | None = None,
) -> None:
    """Send ``records`` and wait until the broker acknowledged every one (blocking); raise
    ``TrackingUnavailable`` otherwise (some may have landed: a retry with the same action ids is
    harmless, the warehouse stores a fact once)."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    try:
        futures = [
            producer.send(
                topic,
                key=record.key.encode(),
                value=json.dumps(record.value, separators=(",", ":")).encode(),
                headers=tracking_headers(record, correlation_id),
            )
            for record in records
        ]
        producer.flush(timeout=max(0.0, deadline - time.monotonic()))
        for future in futures:
            future.get(timeout=max(0.01, deadline - time.monotonic()))
    except KafkaError as exc:
        raise TrackingUnavailable(f"the broker did not acknowledge the batch: {exc!r}") from exc


# --- the worker's consumer -----------------------------------------------------------------------


def tracking_service(group: str, agent: AnalyticsAgent) -> type[Service]:
    """The worker's consumer of the tracking topic, a service of the Faust app (started and
    stopped with it) that reads with aiokafka instead of a Faust stream.

    Why not an agent: tracking is the platform's one high-volume topic, and a Faust stream
    costs about 300 microseconds of the event loop per record here (it wraps every record in an
    event and awaits two tasks for it): measured with a sink that did nothing, the worker
    delivered 2,700 records/s where a plain aiokafka loop reads 60,000-85,000
    (docs/benchmarks.md). Each batch is mapped and stored (or dead-lettered) by
    ``AnalyticsAgent`` before its offsets are committed, in the consumer group
    ``<worker group>.tracking``: at least once, and the sink stores a fact once."""
    from mode import Service

    settings = agent.settings

    class TrackingService(Service):
        consumer: Any = None

        async def on_start(self) -> None:
            from aiokafka import AIOKafkaConsumer

            assert settings.kafka_bootstrap
            self.consumer = AIOKafkaConsumer(
                tracking_topic(settings).name,
                bootstrap_servers=settings.kafka_bootstrap,
                client_id=f"{group}.tracking",
                group_id=f"{group}.tracking",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=settings.worker_fetch_max_wait_ms,
                max_poll_records=settings.analytics_batch_max,
                session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
                heartbeat_interval_ms=int(settings.worker_heartbeat_interval_s * 1000),
                rebalance_timeout_ms=int(settings.worker_rebalance_timeout_s * 1000),
            )
            await self.consumer.start()

        async def on_shutdown(self) -> None:
            """After the consuming task is cancelled (``on_stop`` would come before it, and a
            fetch on a stopped consumer raises): leave the group."""
            if self.consumer is not None:
                await self.consumer.stop()

        @Service.task
        async def _consume(self) -> None:
            """Fetch records and deal them to the lanes: partition ``p`` goes to lane
            ``p % AQSTREAM_ANALYTICS_STORE_CONCURRENCY``. Each lane, whenever it is free, takes
            the records waiting for it (up to ``AQSTREAM_ANALYTICS_BATCH_MAX``, oldest first),
            maps them in a thread, stores them in one transaction and commits their offsets (a
            partition is in one lane, so its offsets are committed in order). So a batch is
            what came while the lane was busy: small under light load, full under a backlog.
            The lanes store at the same time; the topic is keyed by event, so they hold disjoint
            events and rollup rows (the sink's per-event locks would keep them apart anyway).
            The fetch takes ``_CHUNK`` records at a time and then lets the lanes run: aiokafka
            unpacks a fetch without yielding, and a lane whose store has ended waits for the
            event loop to commit and take its next batch. At most ``2 x BATCH_MAX`` records
            wait per lane: the fetch waits for a full lane (docs/benchmarks.md)."""
            size = settings.analytics_batch_max
            lanes = [_Lane() for _ in range(settings.analytics_store_concurrency)]
            tasks = [asyncio.ensure_future(self._lane(lane, size)) for lane in lanes]
            within_ms = int(settings.analytics_batch_within_s * 1000)
            try:
                while not self.should_stop:
                    fetched = await self.consumer.getmany(
                        timeout_ms=within_ms, max_records=min(size, _CHUNK)
                    )
                    _deal(fetched, lanes)
                    await asyncio.sleep(0)
                    for lane, task in zip(lanes, tasks, strict=True):
                        await lane.room(2 * size, task)
            finally:
                for task in tasks:
                    task.cancel()

        async def _lane(self, lane: _Lane, size: int) -> None:
            """Store the lane's batches in turn, each mapped while the one before is stored
            (mapping is about a fifth of a batch's time), and commit a batch's offsets once it
            is stored."""

            async def next_batch() -> tuple[list[Any], list[Fact], list[Any]]:
                messages = await lane.take(size)
                return messages, *await agent.prepare_tracking(messages)

            messages, facts, sources = await next_batch()
            while True:
                storing = asyncio.ensure_future(agent.store(facts, sources))
                mapping = asyncio.ensure_future(next_batch())
                try:
                    await storing
                    await self._commit(_offsets(messages))
                except BaseException:
                    mapping.cancel()
                    raise
                messages, facts, sources = await mapping

        async def _commit(self, offsets: dict[Any, int]) -> None:
            from aiokafka.errors import CommitFailedError, IllegalStateError

            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:  # a rebalance took them
                log.warning("tracking_commit_failed", error=repr(exc))

    return TrackingService


# Records the tracking service's fetch unpacks before it lets the lanes run (about 15 ms of the
# event loop at some 14 µs a record).
_CHUNK = 1000


def _offsets(messages: Sequence[Any]) -> dict[Any, int]:
    """The offsets to commit once ``messages`` are stored: the next one of each partition."""
    from aiokafka import TopicPartition

    offsets = {}
    for message in messages:  # in order: the last of each partition wins
        offsets[TopicPartition(message.topic, message.partition)] = message.offset + 1
    return offsets


def _deal(fetched: dict[Any, list[Any]], lanes: Sequence[_Lane]) -> None:
    """Put a fetch's records (by topic partition) in their lanes: partition ``p``'s go to lane
    ``p % len(lanes)``, in order."""
    for tp, records in fetched.items():
        lanes[tp.partition % len(lanes)].put(records)


class _Lane:
    """The records waiting for one lane of the tracking service, oldest first: the fetch puts
    them in, the lane takes them out a batch at a time."""

    def __init__(self) -> None:
        self.waiting: deque[Any] = deque()
        self._changed = asyncio.Event()

    def put(self, records: Sequence[Any]) -> None:
        self.waiting.extend(records)
        self._changed.set()

    async def take(self, size: int) -> list[Any]:
        """The oldest ``size`` records at most, waiting for one if there is none."""
        while not self.waiting:
            self._changed.clear()
            await self._changed.wait()
        batch = [self.waiting.popleft() for _ in range(min(size, len(self.waiting)))]
        self._changed.set()
        return batch

    async def room(self, most: int, task: asyncio.Future[None]) -> None:
        """Return once fewer than ``most`` records wait; a lane that failed (a dead letter that
        could not be sent) fails the fetch instead of blocking it."""
        while len(self.waiting) >= most and not task.done():
            self._changed.clear()
            changed = asyncio.ensure_future(self._changed.wait())
            await asyncio.wait({changed, task}, return_when=asyncio.FIRST_COMPLETED)
            changed.cancel()
        if task.done():
            task.result()  # raises: a lane ends only by failing
            raise RuntimeError("a tracking lane stopped")
