"""The pipeline's fixtures for the identity tests that go through it (password reset e-mails,
Telegram notifications after linking): the relay, in-process workers, the SMTP stand-in."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.settings import Settings
from tests.notification.conftest import (  # noqa: F401  (fixtures)
    notify_settings,
    smtp,
    telegram,
)
from tests.streams.conftest import relays  # noqa: F401  (fixture)
from tests.worker.conftest import worker_settings, workers  # noqa: F401  (fixtures)


@pytest.fixture
def pipeline(relays, workers) -> Callable[[Settings, str], None]:  # noqa: F811
    """Start a relay and a worker on ``settings`` (the worker waits until its topics are
    visible: tests/worker/conftest.py)."""

    def start(settings: Settings, name: str) -> None:
        relays(settings, name)
        workers(settings)

    return start
