"""Warehouse tenancy without row level security (sql/ddl/0012_warehouse_tenancy.sql).

TimescaleDB refuses row level security on a hypertable that has continuous aggregates or a
columnstore, so the warehouse's isolation rests on privileges and views, the same on both
flavours: the application role has no privilege in the ``warehouse`` schema and reads the
``analytics`` schema's views, each filtered on the transaction's tenant; the warehouse's writers
(sink, backfill, reconcile, partition upkeep) act as the warehouse role, which may use the
warehouse's tables and nothing else (docs/analytics.md, "Tenancy"). On a database whose 0008
enabled row level security (plain PostgreSQL), the policies go.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import context, op
from sqlalchemy import text

from aqstream.migrations import app_role, execute_formatted, run_sql_file
from core.settings import Settings

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The relations that had a tenant policy on plain PostgreSQL (0008 before this revision).
POLICED = [
    f"{rollup}_{grain}"
    for rollup in ("event", "revenue", "traffic")
    for grain in ("minute", "hour", "day")
] + ["facts"]


def warehouse_role() -> str:
    return context.config.attributes.get("warehouse_db_role") or Settings().warehouse_db_role


def _create_warehouse_role() -> None:
    role = warehouse_role()
    bind = op.get_bind()
    if not bind.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :u"), {"u": role}).first():
        execute_formatted("CREATE ROLE %I NOLOGIN", u=role)
    execute_formatted(
        "ALTER ROLE %I WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION",
        u=role,
    )
    # The owner may switch to it (a superuser always may; a CREATEROLE owner needs membership).
    execute_formatted("GRANT %I TO CURRENT_USER", u=role)


def upgrade() -> None:
    _create_warehouse_role()
    flavor = op.get_bind().execute(text("SELECT warehouse.flavor()")).scalar_one()
    if flavor == "postgres":  # TimescaleDB never had the policies, and refuses the ALTER
        for table in POLICED:
            execute_formatted(f"DROP POLICY IF EXISTS {table}_tenant ON warehouse.{table}")
            execute_formatted(f"ALTER TABLE warehouse.{table} DISABLE ROW LEVEL SECURITY")
    run_sql_file("0012_warehouse_tenancy.sql", WAREHOUSE=warehouse_role())


def downgrade() -> None:
    op.execute("DROP SCHEMA analytics CASCADE")
    app = app_role()[0]
    execute_formatted("REVOKE ALL ON ALL TABLES IN SCHEMA warehouse FROM %I", u=warehouse_role())
    execute_formatted("REVOKE USAGE ON SCHEMA warehouse FROM %I", u=warehouse_role())
    execute_formatted("GRANT USAGE ON SCHEMA warehouse TO %I", u=app)
    execute_formatted("GRANT SELECT, INSERT ON warehouse.facts TO %I", u=app)
    execute_formatted("GRANT UPDATE (is_unique) ON warehouse.facts TO %I", u=app)
    flavor = op.get_bind().execute(text("SELECT warehouse.flavor()")).scalar_one()
    if flavor == "postgres":
        for table in POLICED[:-1]:
            execute_formatted(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON warehouse.{table} TO %I", u=app
            )
        for table in POLICED:
            execute_formatted(f"ALTER TABLE warehouse.{table} ENABLE ROW LEVEL SECURITY")
            execute_formatted(
                f"CREATE POLICY {table}_tenant ON warehouse.{table} USING (tenant_id = "
                "app_tenant_id()) WITH CHECK (tenant_id = app_tenant_id())"
            )
    execute_formatted(
        "GRANT EXECUTE ON FUNCTION warehouse.create_partitions(date, int) TO %I", u=app
    )
