"""The embedded local stack: one set of servers however often `up` runs; none after `down`;
configured servers are used and nothing local starts for them."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aqstream.stack import LocalStack
from core.settings import PROJECT_ROOT, Settings
from tests.procs import alive, processes_under


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A state folder PostgreSQL's non-root user can reach (pytest's tmp_path is 0700 root)."""
    path = PROJECT_ROOT / ".aqstream" / "scratch" / uuid.uuid4().hex[:8]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scratch_stack(scratch_dir: Path) -> Iterator[LocalStack]:
    stack = LocalStack(Settings(environment="test", state_dir=scratch_dir))
    yield stack
    stack.down()


def test_up_twice_starts_one_set_and_down_leaves_none(
    scratch_stack: LocalStack, scratch_dir: Path
) -> None:
    state_dir = scratch_dir
    assert scratch_stack.up() == ["postgres", "s3", "kafka", "redis"]
    statuses = scratch_stack.status()
    assert [(s.source, s.healthy) for s in statuses] == [("local", True)] * 4
    first = processes_under(state_dir)
    top_pids = {s.pid for s in statuses}
    assert top_pids <= first

    again = LocalStack(Settings(environment="test", state_dir=state_dir))
    assert again.up() == []
    assert {s.pid for s in again.status()} == top_pids
    assert processes_under(state_dir) == first

    assert sorted(again.down()) == ["kafka", "postgres", "redis", "s3"]
    assert processes_under(state_dir) == set()
    assert [s.source for s in again.status()] == ["stopped"] * 4


def test_an_unreachable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    from aqstream.stack import StackError

    if os.geteuid() != 0:
        pytest.skip("only root hands PostgreSQL to another user")
    stack = LocalStack(Settings(environment="test", state_dir=tmp_path / "state"))
    with pytest.raises(StackError, match="cannot enter"):
        stack.up()


def test_a_dead_server_is_restarted_by_up(scratch_stack: LocalStack) -> None:
    import signal

    scratch_stack.up()
    redis_before = next(s for s in scratch_stack.status() if s.name == "redis")
    os.kill(redis_before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(redis_before.pid) and time.monotonic() < deadline:  # delivery is asynchronous
        time.sleep(0.01)
    assert scratch_stack.up() == ["redis"]
    redis_after = next(s for s in scratch_stack.status() if s.name == "redis")
    assert redis_after.pid != redis_before.pid and redis_after.healthy


def test_configured_servers_are_used_and_nothing_local_starts(
    stack_settings: Settings, tmp_path: Path
) -> None:
    external = Settings(
        environment="test",
        state_dir=tmp_path / "ext",
        database_url=stack_settings.database_url,
        kafka_bootstrap=stack_settings.kafka_bootstrap,
        redis_url=stack_settings.redis_url,
        s3_endpoint=stack_settings.s3_endpoint,
    )
    stack = LocalStack(external)
    assert stack.up() == []
    assert [s.source for s in stack.status()] == ["external"] * 4
    assert processes_under(tmp_path / "ext") == set()
    assert stack.environment()["AQSTREAM_REDIS_URL"] == stack_settings.redis_url


def test_a_taken_configured_port_is_a_clear_error(tmp_path: Path, stack_settings: Settings):
    from aqstream.stack import StackError

    taken = int(stack_settings.kafka_bootstrap.rsplit(":", 1)[1])
    stack = LocalStack(
        Settings(
            environment="test",
            state_dir=tmp_path / "busy",
            database_url=stack_settings.database_url,
            local_kafka_port=taken,
        )
    )
    with pytest.raises(StackError, match=f"port {taken} is already in use"):
        stack.up()
    stack.down()


def test_postgresql_preloads_timescaledb_when_it_is_installed(tmp_path: Path) -> None:
    """A server whose library folder holds TimescaleDB starts with it preloaded (migration 0008
    then takes the Timescale flavour); one without it starts as before."""
    from aqstream.stack.servers import PostgresServer

    bin_dir = tmp_path / "15" / "bin"
    bin_dir.mkdir(parents=True)
    (tmp_path / "15" / "lib").mkdir()
    settings = Settings(environment="test", state_dir=tmp_path, pg_bin_dir=bin_dir)
    plain = PostgresServer(settings, tmp_path).launch(5432).argv
    assert not any("shared_preload_libraries" in arg for arg in plain)
    (tmp_path / "15" / "lib" / "timescaledb-2.29.2.so").write_bytes(b"")
    preloaded = PostgresServer(settings, tmp_path).launch(5432).argv
    assert "shared_preload_libraries=timescaledb" in preloaded


def test_redis_keeps_its_data_across_a_restart(scratch_dir: Path) -> None:
    """As compose runs it (`--appendonly yes`): sessions, refresh tokens and idempotency records
    survive a restart of the local Redis (issue L, finding 15)."""
    import redis

    from aqstream.stack.servers import RedisServer, free_port, wait_until

    server = RedisServer(Settings(environment="test", state_dir=scratch_dir), scratch_dir)
    server.prepare()
    port = free_port()

    def start() -> subprocess.Popen[bytes]:
        launch = server.launch(port)
        proc = subprocess.Popen(launch.argv, cwd=server.dir, env=launch.env)
        wait_until(lambda: server.healthy(port), 15, "redis", alive=lambda: proc.poll() is None)
        return proc

    proc = start()
    try:
        with redis.Redis(port=port) as client:
            client.set("refresh:abc", "kept")
        proc.terminate()  # a clean stop, as `aqstream stack down` does
        proc.wait(timeout=15)
        proc = start()
        with redis.Redis(port=port) as client:
            assert client.get("refresh:abc") == b"kept"
    finally:
        proc.kill()
        proc.wait(timeout=15)
