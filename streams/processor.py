"""What every agent of the worker shares: its dependencies, and the processor that runs a
handler on a record, retried with backoff and then dead-lettered, counted in the worker's metrics.

A failing record is retried with exponential backoff (tenacity); after
``AQSTREAM_WORKER_RETRY_ATTEMPTS`` tries it is published to the dead-letter topic
(``streams/dlq.py``) and the stream moves on. A replayed dead letter is handled only by the agent
it is addressed to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from core.logging import get_logger
from core.settings import Settings
from domain.notification.channels import Channels
from domain.payment.providers import Providers
from streams.dlq import REPLAY_FOR, dead_letter_headers
from streams.metrics import WorkerMetrics
from streams.records import Record
from streams.topics import dlq_topic

log = get_logger(__name__)


@dataclass
class Deps:
    """What the agents need, built once at start-up."""

    settings: Settings
    sessions: sessionmaker[Session]
    providers: Providers
    channels: Channels
    # The analytics' sessions: the warehouse role's (warehouse.engine), not the application's.
    warehouse: sessionmaker[Session] | None = None
    sink: Callable[..., Any] | None = None  # the analytics agent's (default: warehouse.sink.ingest)


Handler = Callable[[Deps, Record], Awaitable[None]]
Send = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]


def _epoch(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


@dataclass
class Processor:
    """Runs one agent's handler on a record: retries with backoff, then the dead-letter topic."""

    deps: Deps
    send: Send
    dead_letters: int = field(default=0)
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)

    @property
    def tries(self) -> int:
        """How many times ``retry`` calls before it gives up."""
        return max(1, self.deps.settings.worker_retry_attempts)

    def replay_of_another(self, agent: str, record: Record) -> bool:
        """Whether ``record`` is a replayed dead letter of another agent (counted as skipped)."""
        target = record.headers.get(REPLAY_FOR)
        if target and target != agent:
            self.metrics.records.labels(agent, "skipped").inc()
            return True
        return False

    async def process(self, agent: str, handler: Handler, record: Record) -> None:
        if self.replay_of_another(agent, record):
            return
        started = time.perf_counter()
        try:
            await self._process(agent, handler, record)
        finally:
            self.metrics.seconds.labels(agent).observe(time.perf_counter() - started)
            occurred = _epoch(record.headers.get("occurred_at"))
            if occurred is not None:
                self.metrics.lag.labels(agent).observe(max(0.0, time.time() - occurred))

    async def _process(self, agent: str, handler: Handler, record: Record) -> None:
        try:
            await self.retry(agent, lambda: handler(self.deps, record))
            self.metrics.records.labels(agent, "ok").inc()
        except Exception as exc:
            await self.give_up(agent, record, exc, self.tries)

    async def retry(self, agent: str, call: Callable[[], Awaitable[object]]) -> None:
        """Await ``call()`` until it succeeds, at most ``tries`` times with exponential backoff
        (``AQSTREAM_WORKER_RETRY_*``); the last failure is raised."""
        s = self.deps.settings
        first = True
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(s.worker_retry_attempts),
            wait=wait_exponential(multiplier=s.worker_retry_base_s, max=s.worker_retry_max_s),
            reraise=True,
        ):
            with attempt:
                if not first:
                    self.metrics.retries.labels(agent).inc()
                first = False
                await call()

    async def give_up(self, agent: str, record: Record, exc: BaseException, attempts: int) -> None:
        """Count, log and publish ``record`` as ``agent``'s dead letter (waits until stored)."""
        self.metrics.records.labels(agent, "dead_letter").inc()
        log.error(
            "dead_letter",
            agent=agent,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_type=record.event_type,
            event_id=record.headers.get("event_id"),
            attempts=attempts,
            error=repr(exc),
        )
        await self.dead_letter(agent, record, exc, attempts)

    async def dead_letter(
        self, agent: str, record: Record, exc: BaseException, attempts: int
    ) -> None:
        """Publish ``record`` to the dead-letter topic (waits until stored)."""
        headers = dead_letter_headers(agent, record, exc, attempts)
        dlq = dlq_topic(self.deps.settings).name
        delay = 0.1
        while True:  # the offset must not move on before the dead letter is stored
            try:
                await self.send(dlq, record.key, record.value, headers)
                self.dead_letters += 1
                return
            except Exception:
                log.exception("dead_letter_publish_failed", topic=dlq)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.deps.settings.worker_retry_max_s or 1.0)
