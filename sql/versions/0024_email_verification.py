"""E-mail verification: ``users.email_verified_at`` (sql/ddl/0024_email_verification.sql).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0024_email_verification.sql")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN email_verified_at")
