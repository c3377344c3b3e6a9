"""Migrations are repeatable and agree with the SQLAlchemy models."""

from __future__ import annotations

import uuid

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, pool, text

from aqstream import migrations
from aqstream.settings import Settings
from domain.models import Base


def test_models_and_migrated_schema_agree(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_schema_is_at_head(owner_engine: Engine, settings: Settings) -> None:
    with owner_engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    assert current == migrations.current_heads(settings)


def test_upgrade_is_repeatable_and_downgrade_reverses_it(settings: Settings) -> None:
    """On a scratch database: head, head again (no-op), base, head."""
    owner = settings.owner_url
    name = f"aqstream_mig_{uuid.uuid4().hex[:8]}"
    dsn = owner.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    scratch = settings.model_copy(
        update={"database_url": owner.set(database=name).render_as_string(hide_password=False)}
    )
    engine = create_engine(scratch.owner_url, poolclass=pool.NullPool)
    try:
        migrations.upgrade(scratch)
        tables_once = _tables(engine)
        migrations.upgrade(scratch)
        assert _tables(engine) == tables_once
        assert {"outbox", "inbox"} <= tables_once
        migrations.downgrade(scratch, "base")
        assert _tables(engine) == {"alembic_version"}
        migrations.upgrade(scratch)
        assert _tables(engine) == tables_once
    finally:
        engine.dispose()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
