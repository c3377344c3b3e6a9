"""The organizers' registration list filters by status within an event (the attendees page):
an index on (event_id, status, id) serves the filter and the list's keyset order together.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_registrations_event_status_id ON registrations (event_id, status, id)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_registrations_event_status_id")
