"""Test harness: the real local stack once per session, a fresh database with migrations applied,
and a rolled-back transaction per test where a test can live inside one.

Servers configured through AQSTREAM_DATABASE_URL / _KAFKA_BOOTSTRAP / _REDIS_URL / _S3_ENDPOINT are
used instead of local ones (e.g. a TimescaleDB server); the test database is still created fresh.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from aqstream import migrations
from aqstream.stack import LocalStack
from core.resources import ensure_bucket
from core.settings import PROJECT_ROOT, Settings
from domain.db import make_engine

TEST_STATE_DIR = PROJECT_ROOT / ".aqstream" / "test"


def _psycopg_dsn(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _other_sessions_alive(leases: Path) -> bool:
    """Whether another test session still uses the shared test stack (stale leases go)."""
    from tests.procs import alive

    others = False
    for lease in leases.iterdir():
        pid = int(lease.name) if lease.name.isdigit() else 0
        if pid == os.getpid():
            continue
        if alive(pid):
            others = True
        else:
            lease.unlink(missing_ok=True)
    return others


def pytest_report_header(config) -> str:
    """Which broker the suite runs on (CI sets AQSTREAM_LOCAL_BROKER=kafka: no fallback)."""
    from aqstream.stack.servers import broker_class

    base = Settings(environment="test", state_dir=TEST_STATE_DIR)
    if base.kafka_bootstrap:
        return f"broker: {base.kafka_bootstrap} ({base.kafka_flavor}, external)"
    return f"broker: {broker_class(base).description}, local (AQSTREAM_LOCAL_BROKER={base.local_broker})"


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """Settings pointing at running servers; the local ones are started here if needed.

    Concurrent test sessions share one test stack; each holds a lease, and the last one out
    stops the servers (unless AQSTREAM_TEST_KEEP_STACK is set).
    """
    base = Settings(environment="test", state_dir=TEST_STATE_DIR)
    leases = TEST_STATE_DIR / "leases"
    leases.mkdir(parents=True, exist_ok=True)
    lease = leases / str(os.getpid())
    lease.touch()
    stack = LocalStack(base)
    try:
        stack.up()
        yield stack.resolved_settings()
    finally:
        lease.unlink(missing_ok=True)
        if not os.environ.get("AQSTREAM_TEST_KEEP_STACK") and not _other_sessions_alive(leases):
            stack.down()


def _drop_abandoned_databases(conn) -> None:
    """Databases of test sessions that died without cleaning up (their PID is gone)."""
    from tests.procs import alive

    names = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'aqstream_test_%'")
    for (db,) in names.fetchall():
        pid = db.split("_")[2]
        if not pid.isdigit() or not alive(int(pid)):
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(stack_settings: Settings) -> Iterator[Settings]:
    """A fresh database for this session, migrated to head, plus the S3 bucket."""
    owner = stack_settings.owner_url
    name = f"aqstream_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_psycopg_dsn(owner), autocommit=True) as conn:
        _drop_abandoned_databases(conn)
        conn.execute(f'CREATE DATABASE "{name}"')
    test_settings = stack_settings.model_copy(
        update={
            "database_url": owner.set(database=name).render_as_string(hide_password=False),
            "s3_bucket": f"aqstream-test-{uuid.uuid4().hex[:8]}",
            "log_json": False,
            "telegram_bot_token": SecretStr("123456:TEST-bot-token-for-the-suite"),
            # The suite signs many users up from one test client; rate limits get their own tests.
            "rate_limit_auth": "100000/minute",
            "rate_limit_ip": "100000/minute",
            "rate_limit_user": "100000/minute",
            # Session-scoped accounts sign in once: a long suite (over 15 minutes on a busy
            # machine) must not see their access tokens expire. Expiry has its own tests.
            "access_token_ttl_s": 4 * 3600,
            # argon2id at OWASP's minimum (t=2, 19 MiB, p=1), a configuration production may
            # choose too: the suite signs up and in some thousand times, and the default profile
            # (t=3, 64 MiB, p=4) costs ~6x as much on two cores. Same library, same code path.
            "password_hash_time_cost": 2,
            "password_hash_memory_kib": 19_456,
            "password_hash_parallelism": 1,
        }
    )
    try:
        migrations.upgrade(test_settings)
        ensure_bucket(test_settings)
        yield test_settings
    finally:
        with psycopg.connect(_psycopg_dsn(owner), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def owner_engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.owner_url, pool_size=2, application_name="aqstream-tests-owner")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app_engine(settings: Settings) -> Iterator[Engine]:
    """Connections as the application role: RLS applies, as in production."""
    engine = make_engine(settings.app_url, pool_size=5, application_name="aqstream-tests-app")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def warehouse_engine(settings: Settings) -> Iterator[Engine]:
    """Connections as the warehouse role, as the worker's sink, backfill and reconcile have them."""
    from warehouse.engine import warehouse_engine as make

    engine = make(settings, pool_size=3, application_name="aqstream-tests-warehouse")
    yield engine
    engine.dispose()


def _rolled_back(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test; commits in the code
    under test become savepoints."""
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture
def wh_session(warehouse_engine: Engine) -> Iterator[Session]:
    """As the warehouse role (the sink's), rolled back after the test."""
    yield from _rolled_back(warehouse_engine)


@pytest.fixture
def db_session(app_engine: Engine) -> Iterator[Session]:
    """As the application role (RLS applies), rolled back after the test."""
    yield from _rolled_back(app_engine)


@pytest.fixture(scope="session")
def api_app(settings: Settings):
    from api.app import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
def client(api_app) -> Iterator[TestClient]:
    with TestClient(api_app) as test_client:
        yield test_client


# --- API helpers ----------------------------------------------------------------------------------


class Api:
    """Thin helpers over the test client: sign users up, make them admins, found organizations."""

    def __init__(
        self, client: TestClient, owner_engine: Engine, verification_key: bytes | None = None
    ) -> None:
        self.client = client
        self.owner_engine = owner_engine
        self.verification_key = verification_key

    def register(self, name: str | None = None, *, verified: bool = True) -> dict:
        """A new account; ``verified``: its address confirmed through the API as the e-mailed
        link does (tests/identity/test_email_verification.py follows the e-mail itself)."""
        email = f"{name or 'user'}-{uuid.uuid4().hex[:8]}@example.org"
        response = self.client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "correct horse battery", "display_name": name},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        body["email"] = email
        body["headers"] = {"Authorization": f"Bearer {body['access_token']}"}
        if verified and self.verification_key is not None:
            self.verify_email(body)
        return body

    def verify_email(self, user: dict) -> None:
        from datetime import UTC, datetime, timedelta

        from domain.identity.email_verification import token_for

        assert self.verification_key is not None
        expires = datetime.now(UTC) + timedelta(hours=1)
        token = token_for(
            self.verification_key, uuid.UUID(user["user"]["id"]), user["user"]["email"], expires
        )
        confirmed = self.client.post(
            "/api/v1/auth/email-verification/confirm", json={"token": token}
        )
        assert confirmed.status_code == 204, confirmed.text

    def make_admin(self, user: dict) -> None:
        from sqlalchemy import text

        with self.owner_engine.begin() as conn:
            conn.execute(
                text("UPDATE users SET is_platform_admin = true WHERE id = :id"),
                {"id": user["user"]["id"]},
            )

    def found_organization(self, owner: dict, admin: dict, slug: str | None = None) -> dict:
        slug = slug or f"org-{uuid.uuid4().hex[:10]}"
        request = self.client.post(
            "/api/v1/organization-requests",
            json={"name": f"Org {slug}", "slug": slug},
            headers=owner["headers"],
        )
        assert request.status_code == 201, request.text
        approved = self.client.post(
            f"/api/v1/organization-requests/{request.json()['id']}/approve",
            headers=admin["headers"],
        )
        assert approved.status_code == 200, approved.text
        org = self.client.post(
            "/api/v1/organizations",
            json={"request_id": request.json()["id"]},
            headers=owner["headers"],
        )
        assert org.status_code == 201, org.text
        return org.json()


@pytest.fixture(scope="session")
def api(client: TestClient, owner_engine: Engine, settings: Settings) -> Api:
    from domain.identity.email_verification import signing_key

    return Api(client, owner_engine, signing_key(settings.ticket_signing_key.get_secret_value()))


@pytest.fixture(scope="session")
def admin(api: Api) -> dict:
    user = api.register("admin")
    api.make_admin(user)
    return user
