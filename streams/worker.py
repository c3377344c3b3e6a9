"""The stream worker (`aqstream worker`): a Faust app assembled from the capability modules.

- ``payment-saga`` (``streams/payment.py``) and ``notifications`` (``streams/notification.py``):
  thin loops over single records (decode the record, call the domain, deduplicated by event id).
- ``analytics`` (``streams/analytics.py``) takes batches of the topics of the counted events, and
  the tracking service (``streams/tracking.py``) those of the tracking topic: records to
  warehouse facts, one transaction per batch.

Every agent runs through one ``Processor`` (``streams/processor.py``): database work in a thread
(``asyncio.to_thread``), since it blocks and the consumer's heartbeats and fetches must go on
meanwhile; a failing record retried with backoff, then dead-lettered (``streams/dlq.py``, which
also replays dead letters).

Offsets are committed every ``AQSTREAM_WORKER_COMMIT_INTERVAL_S`` for records handled: at least
once, so after a crash the records since the last commit come again, and the inbox and the
notification log make that harmless.
"""

from __future__ import annotations

import asyncio

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from core.logging import get_logger
from core.settings import Settings
from streams import analytics, tracking
from streams.notification import NOTIFICATION_EVENT_TYPES, NOTIFICATIONS, notification_handler
from streams.payment import SAGA, SAGA_EVENT_TYPES, saga_handler
from streams.processor import Deps, Handler, Processor
from streams.records import Record
from streams.topics import agent_topics, catalog, dlq_topic, ensure_topics, tracking_topic

log = get_logger(__name__)

AGENTS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    SAGA: (saga_handler, SAGA_EVENT_TYPES),
    NOTIFICATIONS: (notification_handler, NOTIFICATION_EVENT_TYPES),
}


def _fast_fetch_transport(fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    """faust-streaming 0.15 hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer;
    Apache Kafka answers a fetch as soon as records arrive, but the Tansu broker only when that
    wait is over, so every record would wait up to 1.5 s there. These subclasses set the
    consumer's wait (read by aiokafka when it starts) from AQSTREAM_WORKER_FETCH_MAX_WAIT_MS."""

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport):  # type: ignore[no-untyped-def]
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class FastConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = FastConsumer

    return Transport


class WorkerApp(faust.App):
    fetch_max_wait_ms = 1500
    wait_empty_s = 15.0

    async def _consumer_wait_empty(self, consumer, logger) -> None:  # type: ignore[no-untyped-def]
        """Faust waits, without limit, for every record in flight to be acknowledged before a
        stop or a rebalance; a record buffered by ``take_events`` (the analytics agent) before a
        rebalance may never be, and the worker would hang. Bounded: what is not acknowledged is
        not committed either, and comes again (at least once)."""
        waiting = asyncio.ensure_future(super()._consumer_wait_empty(consumer, logger))
        done, _ = await asyncio.wait({waiting}, timeout=self.wait_empty_s)
        if not done:  # Faust's wait swallows cancellation; it ends when the consumer stops
            waiting.cancel()
            log.warning("wait_empty_timeout", seconds=self.wait_empty_s)

    def _new_transport(self):  # type: ignore[no-untyped-def]
        return _fast_fetch_transport(self.fetch_max_wait_ms)(self.conf.broker_consumer, self)


def build_app(deps: Deps) -> tuple[WorkerApp, Processor]:
    """The Faust app with its agents (no I/O until it starts)."""
    s = deps.settings
    assert s.kafka_bootstrap, "AQSTREAM_KAFKA_BOOTSTRAP is not set"
    datadir = s.state_dir / "worker" / s.topic_namespace  # Faust wants one, even without tables
    datadir.mkdir(parents=True, exist_ok=True)
    app = WorkerApp(
        s.worker_group or f"{s.topic_namespace}.worker",  # the consumer group
        broker=[f"kafka://{host.strip()}" for host in s.kafka_bootstrap.split(",")],
        autodiscover=False,
        datadir=str(datadir),
        web_enabled=False,
        topic_disable_leader=True,  # no tables, so no leader topic to create
        topic_partitions=s.topic_partitions,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=s.worker_session_timeout_s,
        broker_heartbeat_interval=s.worker_heartbeat_interval_s,
        broker_rebalance_timeout=s.worker_rebalance_timeout_s,
        broker_commit_interval=s.worker_commit_interval_s,
    )
    app.fetch_max_wait_ms = s.worker_fetch_max_wait_ms
    app.wait_empty_s = s.worker_stop_wait_s

    async def send(topic: str, key: bytes | None, value: bytes, headers) -> None:
        await app.producer.send_and_wait(topic, key, value, None, None, headers)

    processor = Processor(deps, send)
    for name, (handler, event_types) in AGENTS.items():
        channel = app.topic(*agent_topics(s, event_types), key_type=bytes, value_type=bytes)
        app.agent(channel, name=name, concurrency=1)(_agent_loop(processor, name, handler))
    # Batches, not one record at a time: their own loops, one agent for both.
    agent = analytics.install(app, processor, deps.sink)
    app.service(tracking.tracking_service(app.conf.id, agent))
    return app, processor


def _agent_loop(processor: Processor, name: str, handler: Handler):
    async def agent(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            await processor.process(name, handler, Record.of(event))

    agent.__name__ = agent.__qualname__ = name.replace("-", "_")
    return agent


def ensure_worker_topics(settings: Settings) -> None:
    assert settings.kafka_bootstrap
    topics = [*catalog(settings), tracking_topic(settings), dlq_topic(settings)]
    ensure_topics(settings.kafka_bootstrap, topics)
