"""Exports: export jobs with their status and progress; RLS; the runner's work queries.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0009_exports.sql")


def downgrade() -> None:
    op.execute("DROP FUNCTION exports_stale(timestamptz, int)")
    op.execute("DROP FUNCTION exports_queued(int)")
    op.execute("DROP TABLE exports")
    op.execute("DROP TYPE export_status")
    op.execute("DROP TYPE export_format")
    op.execute("DROP TYPE export_dataset")
