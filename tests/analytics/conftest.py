"""Fixtures of the analytics tests: an API whose tracking topic is in a namespace of its own, and
reading a topic back in full with a plain kafka-python consumer."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from domain.db import make_sessionmaker
from tests.notification.conftest import notify_settings, smtp, telegram  # noqa: F401 (fixtures)
from tests.streams.conftest import relays  # noqa: F401 (fixture)
from tests.worker.conftest import (  # noqa: F401 (fixtures)
    WorkerThread,
    worker_settings,
)

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Safari/537.36"
)


@pytest.fixture(scope="module")
def track_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "topic_namespace": f"aqtest-{uuid.uuid4().hex[:10]}",
            "analytics_track_rate": "100000/minute",
        }
    )


@pytest.fixture(scope="module")
def track_client(track_settings: Settings) -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(track_settings), headers={"User-Agent": CHROME}) as client:
        yield client


@dataclass
class Consumed:
    key: bytes
    headers: dict[str, str]
    value: dict

    @property
    def id(self) -> str:
        return self.value["id"]


def _json(value: bytes) -> dict:
    try:
        return json.loads(value)
    except ValueError:  # a dead letter may be anything
        return {"raw": value.decode(errors="replace")}


def read_topic(
    bootstrap: str, topic: str, until: int, *, timeout: float = 20.0, where=None
) -> list[Consumed]:
    """Every record of ``topic`` from the beginning (those ``where`` accepts), once ``until`` of
    them have arrived; fails after ``timeout``."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    found: list[Consumed] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < until:
            if time.monotonic() > deadline:
                pytest.fail(f"{len(found)} of {until} records on {topic} after {timeout:.0f}s")
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    item = Consumed(
                        key=r.key,
                        headers={k: v.decode() for k, v in r.headers},
                        value=_json(r.value),
                    )
                    if where is None or where(item):
                        found.append(item)
        return found
    finally:
        consumer.close()


# --- the worker ------------------------------------------------------------------------------------


@pytest.fixture
def analytics_workers(client, warehouse_engine):
    """Start in-process workers (as tests/worker's ``workers``) with a chosen analytics sink
    (default: the warehouse's)."""
    from domain.notification.channels import Channels
    from streams.processor import Deps

    started: list[WorkerThread] = []
    state = client.app.state

    def start(settings: Settings, sink=None) -> WorkerThread:
        deps = Deps(
            settings=settings,
            sessions=state.aq.sessionmaker,
            providers=state.payments.providers,
            channels=Channels(settings),
            warehouse=make_sessionmaker(warehouse_engine),
            sink=sink,
        )
        started.append(WorkerThread(deps).start())
        return started[-1]

    yield start
    for worker in started:
        if worker.thread.is_alive():
            worker.stop()
