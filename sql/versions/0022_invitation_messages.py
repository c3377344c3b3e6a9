"""Invitation messages: a notification may have no recipient account (an e-mail invitation to an
address without one), unique per source, address and channel; invitee_account() finds the
account an invitation is addressed to (sql/ddl/0022_invitation_messages.sql).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0022_invitation_messages.sql")


def downgrade() -> None:
    op.execute("DROP FUNCTION invitee_account(uuid)")
    op.execute("DELETE FROM notifications WHERE user_id IS NULL")
    op.execute("DROP INDEX uq_notifications_source_address_channel")
    op.execute("ALTER TABLE notifications DROP CONSTRAINT ck_notifications_recipient")
    op.execute("ALTER TABLE notifications ALTER COLUMN user_id SET NOT NULL")
