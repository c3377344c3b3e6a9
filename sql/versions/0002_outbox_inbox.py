"""Transactional outbox and consumer inbox; what the relay may do with the outbox.

``seq`` orders the rows: an identity is strictly increasing across processes (UUIDv7 ids made
by two processes in one millisecond are not), and writers of one aggregate are serialized by
that aggregate's row lock, so ``seq`` order is their commit order (docs/streams.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from aqstream.migrations import execute_formatted, grant_app
from core.settings import Settings

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("aggregate_type", sa.String(64), nullable=False),
        sa.Column("aggregate_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("schema_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    # The relay's work queue (oldest unsent first) and its per-aggregate lookup.
    op.create_index(
        "ix_outbox_unsent", "outbox", ["seq"], postgresql_where=sa.text("sent_at IS NULL")
    )
    op.create_index(
        "ix_outbox_unsent_aggregate",
        "outbox",
        ["aggregate_id", "seq"],
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    # The application only appends to the outbox; reading and marking rows is the relay's job.
    grant_app("INSERT", "outbox")
    grant_app("SELECT, INSERT", "inbox")
    _relay_rights()
    _notify_on_insert()


def _relay_role() -> str:
    return context.config.attributes.get("relay_db_role") or Settings().relay_db_role


def _relay_rights() -> None:
    """The relay reads every tenant's rows, sets ``sent_at`` and prunes; nothing else."""
    relay = _relay_role()
    execute_formatted("GRANT SELECT, DELETE ON outbox TO %I", u=relay)
    execute_formatted("GRANT UPDATE (sent_at) ON outbox TO %I", u=relay)
    # Row level security is switched on for the outbox in 0003; this policy is the relay's way
    # through it (the application role's policy only lets it append).
    execute_formatted("CREATE POLICY outbox_relay ON outbox TO %I USING (true)", u=relay)


def _notify_on_insert() -> None:
    """A wake-up hint for idle relays, sent at commit. Polling stays the truth: a notification
    can be missed (no relay listening, a reconnect) without losing anything.

    A notifying commit takes a cluster-wide lock, so notifying transactions commit one at a
    time; ``ALTER DATABASE ... SET aqstream.outbox_notify = off`` stops the hints (relays then
    find rows by polling alone, within ``relay_poll_interval_s``)."""
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            IF coalesce(current_setting('aqstream.outbox_notify', true), '') <> 'off' THEN
                PERFORM pg_notify('aqstream_outbox', '');
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
        "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")  # with its policies and trigger
    op.execute("DROP FUNCTION outbox_notify()")
