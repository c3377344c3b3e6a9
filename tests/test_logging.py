"""The log's levels: the Kafka clients' known-harmless warnings are info, not terminal noise."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from aqstream.supervisor import record_level
from core.logging import configure_logging

MARK = "log-level-probe"


@pytest.fixture
def levels(capsys) -> Callable[[Callable[[], None]], list[str | None]]:
    """The levels the probe records of ``emit`` are rendered with, as the supervisor reads them
    (logging set up in the test's own phase: capsys swaps its streams between phases)."""

    def render(emit: Callable[[], None]) -> list[str | None]:
        configure_logging("INFO", json=False)
        try:
            emit()
        finally:
            configure_logging("INFO", json=True)
        err = capsys.readouterr().err
        return [record_level(line) for line in err.splitlines() if MARK in line]

    return render


def test_known_transient_kafka_warnings_are_info(levels) -> None:
    def emit() -> None:
        logging.getLogger("kafka.net.selector").warning(
            "Task %s ran for %.3fs (>%.3fs threshold). It is blocking the event loop",
            MARK,
            0.12,
            0.1,
        )
        logging.getLogger("aiokafka.consumer.group_coordinator").error(
            "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError %s",
            MARK,
        )

    assert levels(emit) == ["info", "info"]


def test_other_warnings_and_errors_keep_their_level(levels) -> None:
    def emit() -> None:
        logging.getLogger("kafka.net.selector").warning("Connection reset by peer %s", MARK)
        logging.getLogger("aiokafka.consumer.group_coordinator").error("[Error 25] %s", MARK)
        logging.getLogger("aqstream.worker").warning("past the threshold %s", MARK)  # ours

    assert levels(emit) == ["warning", "error", "warning"]
