"""Holds per account: an event caps the holds one account may have at once and the seats they
hold (defaults 3 and 10); a ticket type may cap its own seats per account (issue L: one account
held all 200 seats of a ticket type in seconds, renewable every 15 minutes).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE events"
        " ADD COLUMN max_holds_per_account INTEGER DEFAULT 3 NOT NULL,"
        " ADD COLUMN max_held_seats_per_account INTEGER DEFAULT 10 NOT NULL,"
        " ADD CONSTRAINT ck_events_max_holds_per_account CHECK (max_holds_per_account >= 1),"
        " ADD CONSTRAINT ck_events_max_held_seats_per_account"
        " CHECK (max_held_seats_per_account >= 1)"
    )
    op.execute(
        "ALTER TABLE ticket_types ADD COLUMN max_held_seats_per_account INTEGER,"
        " ADD CONSTRAINT ck_ticket_types_max_held_seats_per_account"
        " CHECK (max_held_seats_per_account >= 1)"
    )
    # A hold is counted among its account's active ones for the event.
    op.execute(
        "CREATE INDEX ix_reservations_user_event_active ON reservations (user_id, event_id)"
        " WHERE status = 'active'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_reservations_user_event_active")
    op.execute("ALTER TABLE ticket_types DROP COLUMN max_held_seats_per_account")
    op.execute(
        "ALTER TABLE events DROP COLUMN max_held_seats_per_account,"
        " DROP COLUMN max_holds_per_account"
    )
