"""A broker outage: the relay backs off, loses nothing and reorders nothing.

The broker here is a private one (the shared test broker must stay up for everyone else) with
its log on disk (Tansu: in the session's S3 server), so what it acknowledged before a `kill -9`
is still there after the restart and the whole history can be checked."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from core.settings import Settings
from tests.broker import PrivateBroker
from tests.streams.conftest import (
    check_order,
    read_topic,
    topic_of,
    unsent,
    wait_until,
    write_events,
)


@pytest.fixture
def broker(settings: Settings, tmp_path: Path):
    broker = PrivateBroker(settings, tmp_path)
    yield broker
    broker.kill()


def _failures(relay) -> float:
    return (
        relay.metrics.registry.get_sample_value("aqstream_relay_failures_total", {"kind": "broker"})
        or 0.0
    )


@pytest.mark.slow
def test_broker_down_at_start_and_killed_mid_stream(
    relay_settings, owner_conn, relays, broker
) -> None:
    settings = relay_settings.model_copy(
        update={
            "kafka_bootstrap": broker.bootstrap,
            "relay_publish_timeout_s": 1.5,
            "relay_backoff_max_s": 0.5,
        }
    )
    aggregates = [uuid.uuid4() for _ in range(40)]

    # 1. No broker at all: the relay starts, backs off, keeps the rows.
    relay = relays(settings, "r1")
    written = write_events(owner_conn, aggregates, 2)
    wait_until(lambda: _failures(relay) >= 2, 20, "the relay to back off")
    assert unsent(owner_conn, written.ids) == len(written.ids)

    # 2. The broker comes up: everything goes.
    broker.start()
    wait_until(lambda: unsent(owner_conn, written.ids) == 0, 30, "delivery once the broker is up")
    write_events(owner_conn, aggregates, 2, written)
    wait_until(lambda: unsent(owner_conn, written.ids) == 0, 30, "delivery in normal operation")

    # 3. kill -9 the broker in the middle of a burst, and events keep coming: nothing is marked
    #    sent meanwhile.
    burst = write_events(owner_conn, aggregates, 60, per_transaction=400)
    wait_until(lambda: unsent(owner_conn, burst.ids) < len(burst.ids), 20, "the burst to start")
    broker.kill()
    assert unsent(owner_conn, burst.ids) > 0, "the burst was over before the broker died"
    before = _failures(relay)
    outage = write_events(owner_conn, aggregates, 3)
    for later in (burst, outage):
        for aggregate, ids in later.by_aggregate.items():
            written.by_aggregate[aggregate].extend(ids)
    wait_until(lambda: _failures(relay) >= before + 2, 20, "back-off during the outage")
    assert unsent(owner_conn, outage.ids) == len(outage.ids)
    assert relay.metrics.registry.get_sample_value("aqstream_relay_broker_up") == 0

    # 4. The broker returns with its log: every row arrives, each aggregate's in order.
    broker.start()
    wait_until(lambda: unsent(owner_conn, written.ids) == 0, 60, "delivery after the outage")
    relay.stop()
    records = read_topic(broker.bootstrap, topic_of(settings), written.ids)
    check_order(records, written)
    assert len({r.headers["event_id"] for r in records} & written.ids) == 67 * len(aggregates)
