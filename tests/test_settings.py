"""Settings come from AQSTREAM_* variables; importing the code connects to nothing."""

from __future__ import annotations

import subprocess
import sys

from core.settings import PROJECT_ROOT, Settings


def test_settings_read_the_prefixed_environment(monkeypatch) -> None:
    monkeypatch.setenv("AQSTREAM_API_PORT", "8123")
    monkeypatch.setenv("AQSTREAM_DATABASE_URL", "postgresql+psycopg://o:pw@db.example:5432/x")
    settings = Settings()
    assert settings.api_port == 8123
    assert settings.app_url.username == "aqstream_app"
    assert settings.app_url.host == "db.example"
    assert settings.app_url.database == "x"


IMPORT_EVERYTHING = """
import socket, pkgutil, importlib
def refuse(*a, **k):
    raise AssertionError("network access at import time")
socket.socket.connect = refuse
socket.create_connection = refuse
import aqstream, api, domain, streams, warehouse, dashboards
for pkg in (aqstream, api, domain, streams, warehouse, dashboards):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if mod.name.endswith("__main__"):
            continue
        importlib.import_module(mod.name)
import api.app
api.app.create_app()
print("ok")
"""


def test_importing_every_module_and_building_the_app_connects_to_nothing() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "AQSTREAM_DATABASE_URL": "postgresql+psycopg://u:p@10.255.255.1:5432/db",
        "AQSTREAM_REDIS_URL": "redis://10.255.255.1:6379/0",
        "AQSTREAM_KAFKA_BOOTSTRAP": "10.255.255.1:9092",
        "AQSTREAM_S3_ENDPOINT": "http://10.255.255.1:9000",
    }
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_production_refuses_the_development_secrets(monkeypatch) -> None:
    import pytest
    from pydantic import ValidationError

    monkeypatch.setenv("AQSTREAM_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="AQSTREAM_JWT_SECRET"):
        Settings()
    monkeypatch.setenv("AQSTREAM_JWT_SECRET", "x" * 40)
    with pytest.raises(ValidationError, match="AQSTREAM_TICKET_SIGNING_KEY"):
        Settings()
    monkeypatch.setenv("AQSTREAM_TICKET_SIGNING_KEY", "y" * 40)
    assert Settings().environment == "production"


def test_every_setting_is_declared_once() -> None:
    """A second declaration silently replaces the first (its default, bounds and description)."""
    import ast
    import inspect
    from collections import Counter

    from core import settings as module

    tree = ast.parse(inspect.getsource(module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    names = Counter(s.target.id for s in cls.body if isinstance(s, ast.AnnAssign))
    assert [name for name, count in names.items() if count > 1] == []


def test_the_defaults_are_apache_kafkas_and_tansu_takes_its_profile(monkeypatch) -> None:
    from core.settings import TANSU_PROFILE

    kafka = Settings()
    assert kafka.kafka_flavor == "kafka"
    assert kafka.worker_session_timeout_s >= 6  # Kafka refuses shorter sessions
    assert all(getattr(kafka, k) != v for k, v in TANSU_PROFILE.items())

    monkeypatch.setenv("AQSTREAM_KAFKA_FLAVOR", "tansu")
    monkeypatch.setenv("AQSTREAM_WORKER_FETCH_MAX_WAIT_MS", "250")  # set: it wins
    tansu = Settings()
    assert tansu.worker_fetch_max_wait_ms == 250
    assert {k: getattr(tansu, k) for k in TANSU_PROFILE if k != "worker_fetch_max_wait_ms"} == {
        k: v for k, v in TANSU_PROFILE.items() if k != "worker_fetch_max_wait_ms"
    }


def test_pointing_settings_at_a_broker_applies_its_profile_to_what_was_not_set() -> None:
    from core.settings import TANSU_PROFILE

    base = Settings(worker_session_timeout_s=3.0)
    on_tansu = base.on_broker("127.0.0.1:9", "tansu")
    assert (on_tansu.kafka_bootstrap, on_tansu.kafka_flavor) == ("127.0.0.1:9", "tansu")
    assert on_tansu.worker_session_timeout_s == 3.0
    assert on_tansu.worker_heartbeat_interval_s == TANSU_PROFILE["worker_heartbeat_interval_s"]
    on_kafka = base.on_broker("127.0.0.1:9", "kafka")
    assert on_kafka.worker_heartbeat_interval_s == Settings().worker_heartbeat_interval_s


def test_the_local_broker_is_apache_kafka_where_java_runs(monkeypatch, tmp_path) -> None:
    from aqstream.stack.servers import ApacheKafkaServer, TansuServer, broker_class

    assert broker_class(Settings(local_broker="kafka")) is ApacheKafkaServer
    assert broker_class(Settings(local_broker="tansu")) is TansuServer
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    assert broker_class(Settings(local_broker="auto", local_kafka_jars=tmp_path)) is TansuServer
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    # Java without Maven or cached jars: Kafka cannot get its jars
    assert broker_class(Settings(local_broker="auto", local_kafka_jars=tmp_path)) is TansuServer
    cached = tmp_path / "kafka-3.9.0"
    cached.mkdir()
    (cached / ".pom").write_text("")
    assert (
        broker_class(Settings(local_broker="auto", local_kafka_jars=tmp_path)) is ApacheKafkaServer
    )
