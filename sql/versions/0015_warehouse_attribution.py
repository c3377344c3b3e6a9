"""Attribution: holds and registrations carry the tracking visitor id; the application role
reads visits and conversion facts through ``analytics.facts`` (sql/ddl/0015_warehouse_attribution.sql;
docs/analytics.md, "Funnel and attribution"). The same on both flavours.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0015_warehouse_attribution.sql")


def downgrade() -> None:
    op.execute("DROP VIEW analytics.facts")
    op.execute("ALTER TABLE registrations DROP COLUMN visitor_id")
    op.execute("ALTER TABLE reservations DROP COLUMN visitor_id")
