"""Organizers' public profiles: an organization's name, address name, description and logo for
everyone (public event reads, the organizer's page), through SECURITY DEFINER functions
(sql/ddl/0019_organizer_profiles.sql).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0019_organizer_profiles.sql")


def downgrade() -> None:
    op.execute("DROP FUNCTION organizer_logo_variant(uuid, text)")
    op.execute("DROP FUNCTION organizer_by_slug(text)")
    op.execute("DROP FUNCTION organizer_profiles(uuid[])")
