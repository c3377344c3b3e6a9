"""Warehouse: page views carry their uniqueness (``warehouse.facts.is_unique``), set for the facts
already stored; the sink and backfill keep it (docs/analytics.md, "Unique views").

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0010_warehouse_unique_views.sql")


def downgrade() -> None:
    op.execute("ALTER TABLE warehouse.facts DROP COLUMN is_unique")
