"""Group invitations: ``organization_invites.group_id`` (role null for a group's invitation;
sql/ddl/0025_group_invitations.sql).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0025_group_invitations.sql")


def downgrade() -> None:
    op.execute("DELETE FROM organization_invites WHERE group_id IS NOT NULL")
    op.execute("DROP INDEX ix_organization_invites_group_id")
    op.execute("ALTER TABLE organization_invites DROP CONSTRAINT ck_organization_invites_kind")
    op.execute("ALTER TABLE organization_invites ALTER COLUMN role SET NOT NULL")
    op.execute("ALTER TABLE organization_invites DROP COLUMN group_id")
