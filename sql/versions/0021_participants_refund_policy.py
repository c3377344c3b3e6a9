"""The participant list (registrations.listed, event_participants()) and the refund policy of a
participant's own cancellation (events.refund_*, registrations.refund_due)
(sql/ddl/0021_participants_refund_policy.sql).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0021_participants_refund_policy.sql")


def downgrade() -> None:
    op.execute("DROP FUNCTION event_participants(uuid, uuid, int)")
    op.execute(
        "ALTER TABLE registrations DROP CONSTRAINT ck_registrations_refund_due_range,"
        " DROP COLUMN refund_due, DROP COLUMN listed"
    )
    op.execute(
        "ALTER TABLE events DROP CONSTRAINT ck_events_refund_fee_needs_deadline,"
        " DROP CONSTRAINT ck_events_refund_one_fee, DROP CONSTRAINT ck_events_refund_fee_range,"
        " DROP CONSTRAINT ck_events_refund_days_range, DROP COLUMN refund_fee_amount,"
        " DROP COLUMN refund_fee_percent, DROP COLUMN refund_days_before_start"
    )
