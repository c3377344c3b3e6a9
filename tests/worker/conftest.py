"""Fixtures of the worker tests: the Faust worker running in a thread of the test process (with
the API's own sandbox provider, so a test settles payments deterministically), a relay publishing
the session database's outbox into this test's own topics, and the Telegram stand-in."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import kafka.admin  # noqa: F401  (imported before any thread does: import locks)
import pytest
from kafka import KafkaConsumer
from sqlalchemy import Engine, text

from core.settings import PROJECT_ROOT, TANSU_PROFILE, Settings
from domain.db import make_sessionmaker
from domain.notification.channels import Channels
from streams.processor import Deps, Processor
from streams.topics import catalog
from streams.worker import build_app, ensure_worker_topics
from tests.factories import sandbox
from tests.notification.conftest import (  # noqa: F401  (fixtures)
    notify_settings,
    smtp,
    telegram,
)
from tests.streams.conftest import RelayThread, relays  # noqa: F401  (fixture)

# Group timings as short as each broker allows, so a stopped or killed member's partitions move
# quickly: Apache Kafka refuses sessions under 6 s (group.min.session.timeout.ms).
GROUP_FAST: dict[str, dict[str, float]] = {
    "kafka": {
        "worker_session_timeout_s": 6.0,
        "worker_heartbeat_interval_s": 1.0,
        "worker_rebalance_timeout_s": 10.0,
        "worker_fetch_max_wait_ms": 100,
    },
    "tansu": dict(TANSU_PROFILE),
}
WORKER_QUICK = {
    "worker_commit_interval_s": 0.5,
    "worker_retry_attempts": 3,
    "worker_retry_base_s": 0.02,
    "worker_retry_max_s": 0.1,
}


def worker_fast(settings: Settings) -> dict[str, float]:
    """The fast group timings of the broker ``settings`` point at, quick commits and retries."""
    return {**GROUP_FAST[settings.kafka_flavor], **WORKER_QUICK}


@pytest.fixture
def worker_settings(notify_settings: Settings, tmp_path) -> Settings:  # noqa: F811
    """Topics of this test's own namespace, the short broker timeouts, Telegram at the stand-in."""
    return notify_settings.model_copy(
        update={
            "topic_namespace": f"aqtest-{uuid.uuid4().hex[:10]}",
            "relay_poll_interval_s": 0.2,
            "relay_stats_interval_s": 0.2,
            "relay_publish_timeout_s": 3.0,
            "relay_backoff_max_s": 0.5,
            "relay_metrics_port": 0,
            "state_dir": tmp_path,
            **worker_fast(notify_settings),
        }
    )


class WorkerThread:
    """``aqstream worker``'s Faust app in a thread with an event loop of its own."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.processor: Processor | None = None
        self.error: BaseException | None = None
        self.started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="worker", daemon=True)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self.error = exc
            self.started.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app, self.processor = build_app(self.deps)
        await app.start()
        self.started.set()
        try:
            await self._stop.wait()
        finally:
            await app.stop()

    def start(self) -> WorkerThread:
        ensure_worker_topics(self.deps.settings)
        topics_visible(self.deps.settings)
        self.thread.start()
        assert self.started.wait(60), "worker did not start"
        assert self.error is None, f"worker failed to start: {self.error!r}"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self.thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "worker did not stop"
        assert self.error is None, f"worker failed: {self.error!r}"


def topics_visible(settings: Settings, timeout_s: float = 60) -> None:
    """The worker's topics are in the broker's metadata: a consumer group that joins before a
    fresh test namespace's topics are listed is assigned nothing until its next metadata refresh
    (minutes), which a busy broker makes likely (an invitation test once waited 60 s for it)."""
    wanted = {t.name for t in catalog(settings)}
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        deadline = time.monotonic() + timeout_s
        while not wanted <= consumer.topics():
            assert time.monotonic() < deadline, f"topics not visible: {wanted - consumer.topics()}"
            time.sleep(0.2)
    finally:
        consumer.close()


@pytest.fixture
def workers(client, warehouse_engine) -> Iterator[Callable[..., WorkerThread]]:
    """Start in-process workers: the API's sessions and payment providers (tests settle the
    sandbox themselves), channels of the given settings."""
    started: list[WorkerThread] = []
    state = client.app.state

    def start(settings: Settings, **overrides) -> WorkerThread:
        deps = Deps(
            settings=settings,
            sessions=overrides.get("sessions", state.aq.sessionmaker),
            providers=overrides.get("providers", state.payments.providers),
            channels=overrides.get("channels", Channels(settings)),
            warehouse=make_sessionmaker(warehouse_engine),
        )
        started.append(WorkerThread(deps).start())
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(autouse=True)
def _empty_sandbox_queue(client) -> Iterator[None]:
    """No webhook of another test is still queued in the shared sandbox."""
    box = sandbox(client)
    box.deliver_all(lambda body, headers: 200)
    yield
    box.deliver_all(lambda body, headers: 200)


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def scalar(engine: Engine, sql: str, **params) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as an orchestrator stops it; killed when it is not gone within 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def worker_process(settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    """`aqstream worker` as its own process on this test's servers, database and topics, with the
    fast group settings (``worker_fast``), its output appended to ``log``; ``extra``: more
    ``AQSTREAM_*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQSTREAM_")}
    env.update({f"AQSTREAM_{k.upper()}": str(v) for k, v in worker_fast(settings).items()})
    env.update(
        {
            "AQSTREAM_ENVIRONMENT": "test",
            "AQSTREAM_DATABASE_URL": settings.owner_url.render_as_string(hide_password=False),
            "AQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
            "AQSTREAM_KAFKA_FLAVOR": settings.kafka_flavor,
            "AQSTREAM_REDIS_URL": settings.redis_url or "",
            "AQSTREAM_S3_ENDPOINT": settings.s3_endpoint or "",
            "AQSTREAM_TOPIC_NAMESPACE": settings.topic_namespace,
            "AQSTREAM_STATE_DIR": str(settings.state_dir),
            "AQSTREAM_TICKET_SIGNING_KEY": settings.ticket_signing_key.get_secret_value(),
            "AQSTREAM_LOG_JSON": "false",
        }
    )
    if settings.telegram_bot_token is not None:  # the notification tests' Bot API stand-in
        env["AQSTREAM_TELEGRAM_API_BASE"] = settings.telegram_api_base
        env["AQSTREAM_TELEGRAM_BOT_TOKEN"] = settings.telegram_bot_token.get_secret_value()
    env.update(extra)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aqstream", "worker"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
