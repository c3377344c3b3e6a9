"""Media: uploaded files and their variants; event covers and organization logos; RLS.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0007_media.sql")


def downgrade() -> None:
    op.execute("DROP FUNCTION event_cover_variant(uuid, text)")
    op.execute("DROP FUNCTION media_due_for_cleanup(timestamptz, int)")
    op.execute("ALTER TABLE organizations DROP COLUMN logo_media_id")
    op.execute("ALTER TABLE events DROP COLUMN cover_media_id")
    op.execute("DROP TABLE media_variants")
    op.execute("DROP TABLE media")
    op.execute("DROP TYPE media_purpose")
