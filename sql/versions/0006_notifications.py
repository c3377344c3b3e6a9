"""Notifications: preferences, the notification log, emitted event reminders; RLS.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("event_reminders", "notifications", "notification_preferences")
TYPES = ("notification_status", "notification_channel")
FUNCTIONS = (
    "due_event_reminders(timestamptz, interval, int)",
    "due_notifications(timestamptz, int)",
)


def upgrade() -> None:
    run_sql_file("0006_notifications.sql")


def downgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION {fn}")
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
    for type_ in TYPES:
        op.execute(f"DROP TYPE {type_}")
