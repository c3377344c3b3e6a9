"""Migrations are repeatable and agree with the SQLAlchemy models."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, pool, text

from aqstream import migrations
from core.settings import Settings
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


@contextlib.contextmanager
def _scratch_database(settings: Settings) -> Iterator[tuple[Settings, Engine]]:
    """An empty database of its own (dropped afterwards): its settings and an owner engine."""
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
        yield scratch, engine
    finally:
        engine.dispose()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_upgrade_is_repeatable_and_downgrade_reverses_it(settings: Settings) -> None:
    """On a scratch database: head, head again (no-op), base, head."""
    with _scratch_database(settings) as (scratch, engine):
        migrations.upgrade(scratch)
        tables_once = _tables(engine)
        migrations.upgrade(scratch)
        assert _tables(engine) == tables_once
        assert {"outbox", "inbox"} <= tables_once
        migrations.downgrade(scratch, "base")
        assert _tables(engine) == {"alembic_version"}
        migrations.upgrade(scratch)
        assert _tables(engine) == tables_once


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )


def test_the_warehouse_of_an_older_schema_loses_its_row_security_and_the_apps_rights(
    settings: Settings,
) -> None:
    """0012 on a database migrated before it (0008 then enabled row level security on the
    warehouse and granted the application role its tables; 0012's downgrade restores exactly
    that): afterwards no warehouse table has RLS or a policy, and the application role has no
    right in the schema."""
    state = (
        "SELECT count(*) FILTER (WHERE c.relrowsecurity),"
        " (SELECT count(*) FROM pg_policy p JOIN pg_class k ON k.oid = p.polrelid"
        "  JOIN pg_namespace m ON m.oid = k.relnamespace WHERE m.nspname = 'warehouse'),"
        " has_schema_privilege(:u, 'warehouse', 'USAGE')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'warehouse' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    )
    with _scratch_database(settings) as (scratch, engine):
        migrations.upgrade(scratch)
        migrations.downgrade(scratch, "0011")
        with engine.connect() as conn:
            assert tuple(conn.execute(text(state), {"u": settings.app_db_user}).one()) == (
                10, 10, True,
            )  # fmt: skip
        migrations.upgrade(scratch)
        with engine.connect() as conn:
            assert tuple(conn.execute(text(state), {"u": settings.app_db_user}).one()) == (
                0, 0, False,
            )  # fmt: skip


def test_the_warehouse_flavour_is_timescale_only_where_timescaledb_is_loaded() -> None:
    from aqstream.migrations import WarehouseFlavorError, choose_warehouse_flavor

    def choose(wanted: str, **server: bool) -> str:
        facts = {"installed": False, "available": False, "preloaded": False, **server}
        return choose_warehouse_flavor(wanted, **facts)

    assert choose("auto") == "postgres"
    assert choose("auto", available=True) == "postgres"  # installed, not loaded: not usable
    assert choose("auto", available=True, preloaded=True) == "timescale"
    assert choose("auto", installed=True, available=True, preloaded=True) == "timescale"
    assert choose("postgres", available=True, preloaded=True) == "postgres"
    assert choose("timescale", available=True, preloaded=True) == "timescale"
    with pytest.raises(WarehouseFlavorError, match="shared_preload_libraries"):
        choose("timescale", available=True)
    with pytest.raises(WarehouseFlavorError, match="not installed"):
        choose("timescale")


def test_this_servers_warehouse_is_plain_postgresql(owner_engine: Engine) -> None:
    """No TimescaleDB can be installed on this machine kind: the suite runs the plain flavour
    (the Timescale one is checked on a real server)."""
    with owner_engine.connect() as conn:
        assert conn.execute(text("SELECT warehouse.flavor()")).scalar_one() == "postgres"
