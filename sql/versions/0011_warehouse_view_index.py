"""Warehouse: the page-view index covers the sink's uniqueness probes (fact_id, is_unique), so
their cached plans cannot fall back to the primary key (sql/ddl/0011_warehouse_view_index.sql).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0011_warehouse_view_index.sql")


def downgrade() -> None:
    op.execute("DROP INDEX warehouse.ix_wh_facts_visitor_views")
    op.execute(
        "CREATE INDEX ix_wh_facts_visitor_views ON warehouse.facts"
        " (tenant_id, event_id, visitor_id, occurred_at) WHERE kind = 'page_view'"
    )
