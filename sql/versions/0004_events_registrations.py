"""Events, ticket types, reservations, registrations, waitlist, check-ins; seat functions; RLS.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "check_ins",
    "waitlist_entries",
    "registrations",
    "reservations",
    "ticket_types",
    "events",
)
TYPES = (
    "waitlist_status",
    "payment_mode",
    "registration_status",
    "reservation_status",
    "participants_visibility",
    "event_visibility",
    "event_status",
)
FUNCTIONS = (
    "waitlist_position(uuid)",
    "waitlists_with_free_seats(int)",
    "due_reservations(int)",
    "release_seats(uuid, int)",
    "seats_verdict(uuid, int)",
    "take_seats(uuid, int, boolean)",
    "claim_seats(uuid, int, boolean)",
)


def upgrade() -> None:
    run_sql_file("0004_events_registrations.sql")


def downgrade() -> None:
    op.execute("DROP POLICY users_participants ON users")
    op.execute("DROP POLICY outbox_append ON outbox")
    op.execute(
        "CREATE POLICY outbox_append ON outbox FOR INSERT "
        "WITH CHECK (tenant_id IS NULL OR tenant_id = app_tenant_id())"
    )
    for fn in FUNCTIONS:
        op.execute(f"DROP FUNCTION {fn}")
    for table in TABLES:
        op.execute(f"DROP TABLE {table} CASCADE")
    op.execute("DROP FUNCTION app_can_see_event(uuid)")
    for type_ in TYPES:
        op.execute(f"DROP TYPE {type_}")
