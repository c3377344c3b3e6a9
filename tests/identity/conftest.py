"""The pipeline's fixtures for the identity tests that go through it (password reset e-mails,
Telegram notifications after linking): the relay, in-process workers, the SMTP stand-in."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from kafka import KafkaConsumer

from core.settings import Settings
from streams.topics import catalog
from streams.worker import ensure_worker_topics
from tests.notification.conftest import (  # noqa: F401  (fixtures)
    notify_settings,
    smtp,
    telegram,
)
from tests.streams.conftest import relays  # noqa: F401  (fixture)
from tests.worker.conftest import worker_settings, workers  # noqa: F401  (fixtures)


def _topics_visible(settings: Settings, timeout_s: float = 60) -> None:
    """The worker's topics exist and the broker's metadata lists them: a consumer group that
    joins before a new topic is in the metadata is assigned nothing until its next metadata
    refresh (minutes), which a busy broker makes likely for a test's fresh namespace."""
    ensure_worker_topics(settings)
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
def pipeline(relays, workers) -> Callable[[Settings, str], None]:  # noqa: F811
    """Start a relay and a worker on ``settings`` once their topics are visible."""

    def start(settings: Settings, name: str) -> None:
        _topics_visible(settings)
        relays(settings, name)
        workers(settings)

    return start
