"""Application role: can log in, owns nothing, cannot bypass row level security.

The migration owner (the role running this) keeps ownership of every object; the API, relay and
workers connect as the application role, so PostgreSQL's RLS policies apply to them.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from aqstream.migrations import app_role, execute_formatted

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    user, password = app_role()
    # Roles are cluster-wide: another database on the same server may have created it already.
    exists = (
        op.get_bind()
        .execute(text("SELECT 1 FROM pg_roles WHERE rolname = :u"), {"u": user})
        .first()
    )
    if not exists:
        execute_formatted("CREATE ROLE %I LOGIN", u=user)
    execute_formatted(
        "ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION "
        "PASSWORD %L",
        u=user,
        p=password,
    )
    execute_formatted("GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I", d=_db(), u=user)
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    execute_formatted("GRANT USAGE ON SCHEMA public TO %I", u=user)


def _db() -> str:
    return op.get_bind().execute(text("SELECT current_database()")).scalar_one()


def downgrade() -> None:
    # The role is shared by every database on the server: revoke here, never drop it.
    user, _ = app_role()
    execute_formatted("REVOKE USAGE ON SCHEMA public FROM %I", u=user)
    execute_formatted("REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM %I", d=_db(), u=user)
