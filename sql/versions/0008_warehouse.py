"""Analytics warehouse: raw facts, minute/hour/day rollups of events, revenue and traffic.

The flavour is chosen here, once: with the timescaledb extension loaded, hypertables and
continuous aggregates (sql/ddl/0008_warehouse_timescale.sql); without it, native partitions and
rollup tables the sink keeps (sql/ddl/0008_warehouse_postgres.sql). Both expose the same relation
names and columns in the ``warehouse`` schema, so the queries do not care;
``warehouse.flavor()`` says which one runs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import context, op
from sqlalchemy import text

from aqstream.migrations import SQL_DIR, app_role, choose_warehouse_flavor
from core.settings import Settings

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def flavor() -> str:
    """TimescaleDB where it is loaded (aqstream.migrations.choose_warehouse_flavor)."""
    bind = op.get_bind()
    installed, available, preloads = bind.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),"
            " EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
            " current_setting('shared_preload_libraries')"
        )
    ).one()
    preloaded = "timescaledb" in [lib.strip().rsplit("/", 1)[-1] for lib in preloads.split(",")]
    wanted = context.config.attributes.get("warehouse_flavor") or Settings().warehouse_flavor
    return choose_warehouse_flavor(
        wanted, installed=installed, available=available, preloaded=preloaded
    )


def _run(name: str, **replace: str) -> None:
    """``sql/ddl/<name>`` with __APP__ (the quoted application role) and ``replace`` applied."""
    bind = op.get_bind()
    role = bind.execute(text("SELECT quote_ident(:u)"), {"u": app_role()[0]}).scalar_one()
    script = (SQL_DIR / "ddl" / name).read_text().replace("__APP__", role)
    for placeholder, value in replace.items():
        script = script.replace(placeholder, value)
    with bind.connection.driver_connection.cursor() as cursor:
        cursor.execute(script)


def upgrade() -> None:
    timescale = flavor() == "timescale"
    if timescale:
        op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    partitioning = "" if timescale else "PARTITION BY RANGE (occurred_at)"
    _run("0008_warehouse.sql", __FACTS_PARTITIONING__=partitioning)
    _run("0008_warehouse_timescale.sql" if timescale else "0008_warehouse_postgres.sql")


def downgrade() -> None:
    op.execute("DROP SCHEMA warehouse CASCADE")  # tables, partitions, aggregates, functions
