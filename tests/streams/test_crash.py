"""`kill -9` of a relay process in the middle of a batch: after a restart every outbox row is
delivered at least once, and each aggregate's rows arrive (first arrivals) in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from aqstream.stack.servers import free_port
from core.settings import PROJECT_ROOT, Settings
from tests.streams.conftest import (
    check_order,
    read_topic,
    topic_of,
    unsent,
    wait_until,
    write_events,
)


def _relay_process(settings: Settings, metrics_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQSTREAM_")}
    env.update(
        {
            "AQSTREAM_DATABASE_URL": settings.owner_url.render_as_string(hide_password=False),
            "AQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "AQSTREAM_REDIS_URL": settings.redis_url,
            "AQSTREAM_S3_ENDPOINT": settings.s3_endpoint,
            "AQSTREAM_TOPIC_NAMESPACE": settings.topic_namespace,
            "AQSTREAM_RELAY_BATCH_SIZE": "200",
            "AQSTREAM_RELAY_METRICS_PORT": str(metrics_port),
            "AQSTREAM_LOG_JSON": "false",
        }
    )
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aqstream", "relay"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _mid_batch(conn: psycopg.Connection) -> bool:
    """A relay session holds a claimed batch open (waiting for the broker's acknowledgements)."""
    return bool(
        conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'aqstream-relay'"
            " AND datname = current_database() AND state = 'idle in transaction'"
        ).fetchone()[0]
    )


@pytest.mark.slow
def test_kill_9_mid_batch_then_restart_delivers_everything_in_order(
    relay_settings, owner_conn, tmp_path: Path
) -> None:
    aggregates = [uuid.uuid4() for _ in range(300)]
    written = write_events(owner_conn, aggregates, 40, per_transaction=2000)
    total = len(written.ids)
    port = free_port()
    log = tmp_path / "relay.log"

    first = _relay_process(relay_settings, port, log)
    try:
        wait_until(
            lambda: unsent(owner_conn, written.ids) < total and _mid_batch(owner_conn),
            60,
            "the relay to be in the middle of a batch",
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    left = unsent(owner_conn, written.ids)
    assert 0 < left < total, "killed before or after the backlog, not in the middle"
    assert "aqstream_relay_published_total" in metrics
    # The killed session's transaction is rolled back by the server, its aggregates freed.
    wait_until(lambda: not _mid_batch(owner_conn), 10, "the killed relay's session to end")

    second = _relay_process(relay_settings, port, log)
    try:
        wait_until(lambda: unsent(owner_conn, written.ids) == 0, 120, "the restarted relay")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()

    started = time.monotonic()
    records = read_topic(relay_settings.kafka_bootstrap, topic_of(relay_settings), written.ids, 120)
    repeats = check_order(records, written)
    print(
        f"{total} rows, {left} unsent at the kill, {repeats} delivered twice; "
        f"read back in {time.monotonic() - started:.1f}s"
    )
