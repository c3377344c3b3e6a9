"""Visits kept by the sink: ``warehouse.visits`` and ``warehouse.visit_credits``, read through
``analytics.visits`` and ``analytics.visit_credits``, filled from the facts
(sql/ddl/0016_warehouse_visits.sql; docs/analytics.md, "Funnel and attribution"). The same on
both flavours (plain tables; two partial indexes on the facts).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import context, op

from aqstream.migrations import run_sql_file
from core.settings import Settings

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _warehouse_role() -> str:
    return context.config.attributes.get("warehouse_db_role") or Settings().warehouse_db_role


def upgrade() -> None:
    run_sql_file("0016_warehouse_visits.sql", WAREHOUSE=_warehouse_role())


def downgrade() -> None:
    op.execute("DROP VIEW analytics.visit_credits")
    op.execute("DROP VIEW analytics.visits")
    op.execute("DROP INDEX warehouse.ix_wh_facts_registration")
    op.execute("DROP INDEX warehouse.ix_wh_facts_visitor_actions")
    op.execute("DROP TABLE warehouse.visit_credits")
    op.execute("DROP TABLE warehouse.visits")
