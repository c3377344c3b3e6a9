"""Payments and refunds, prepayment settings of events; lookup functions; RLS.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("refunds", "payments")
TYPES = ("refund_status", "payment_purpose", "payment_status")
FUNCTIONS = (
    "payment_by_reference(text, text)",
    "registrations_awaiting_payment(int, int)",
    "registrations_remainder_overdue(int)",
    "cancelled_event_payments(int)",
    "refunds_to_submit(int)",
)


def upgrade() -> None:
    run_sql_file("0005_payments.sql")


def downgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION {fn}")
    for table in TABLES:
        op.execute(f"DROP TABLE {table}")
    for type_ in TYPES:
        op.execute(f"DROP TYPE {type_}")
    op.execute("DROP INDEX ix_registrations_awaiting_payment")
    op.execute("DROP INDEX ix_registrations_remainder_open")
    op.execute(
        "ALTER TABLE events DROP CONSTRAINT ck_events_remainder_due_order, "
        "DROP COLUMN remainder_due_at, DROP COLUMN refund_deposit_on_default"
    )
