"""Application role: can log in, owns nothing, cannot bypass row level security. Relay role:
cannot log in; the relay connects with the owner's credentials and switches to it (SET ROLE).

The migration owner (the role running this) keeps ownership of every object; the API and workers
connect as the application role, so PostgreSQL's RLS policies apply to them. The relay reads and
marks the outbox across tenants, which the application role may not (it only appends); its role
gets exactly that (0002) and nothing else, and needs no password of its own to deploy.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import context, op
from sqlalchemy import text

from aqstream.migrations import app_role, execute_formatted
from core.settings import Settings

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
    _create_relay_role()


def relay_role() -> str:
    return context.config.attributes.get("relay_db_role") or Settings().relay_db_role


def _create_relay_role() -> None:
    relay = relay_role()
    exists = (
        op.get_bind()
        .execute(text("SELECT 1 FROM pg_roles WHERE rolname = :u"), {"u": relay})
        .first()
    )
    if not exists:
        execute_formatted("CREATE ROLE %I NOLOGIN", u=relay)
    execute_formatted(
        "ALTER ROLE %I WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION",
        u=relay,
    )
    # The owner may switch to it (a superuser always may; a CREATEROLE owner needs membership).
    execute_formatted("GRANT %I TO CURRENT_USER", u=relay)
    execute_formatted("GRANT USAGE ON SCHEMA public TO %I", u=relay)


def _db() -> str:
    return op.get_bind().execute(text("SELECT current_database()")).scalar_one()


def downgrade() -> None:
    # The role is shared by every database on the server: revoke here, never drop it.
    user, _ = app_role()
    execute_formatted("REVOKE USAGE ON SCHEMA public FROM %I", u=relay_role())
    execute_formatted("REVOKE USAGE ON SCHEMA public FROM %I", u=user)
    execute_formatted("REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM %I", d=_db(), u=user)
