"""Event attachments: documents (programme, rules) an event lists, downloadable by whoever may
see the event; the media cleanup spares them (sql/ddl/0018_event_attachments.sql).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# media_due_for_cleanup as migration 0007 made it (without attachments).
_CLEANUP_0007 = """
CREATE OR REPLACE FUNCTION media_due_for_cleanup(p_cutoff timestamptz, p_limit int)
RETURNS TABLE (id uuid, tenant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.id, m.tenant_id FROM media m
    WHERE m.purged_at IS NULL
      AND (m.deleted_at IS NOT NULL
           OR (m.created_at < p_cutoff
               AND NOT EXISTS (SELECT 1 FROM events e
                               WHERE e.cover_media_id = m.id AND e.deleted_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM organizations o
                               WHERE o.logo_media_id = m.id AND o.deleted_at IS NULL)))
    ORDER BY m.created_at LIMIT p_limit
$$
"""


def upgrade() -> None:
    run_sql_file("0018_event_attachments.sql")


def downgrade() -> None:
    op.execute(_CLEANUP_0007)
    op.execute("DROP FUNCTION event_attachment_object(uuid, uuid)")
    op.execute("DROP FUNCTION event_attachments_of(uuid)")
    op.execute("DROP TABLE event_attachments")
