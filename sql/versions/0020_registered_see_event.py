"""Unpublishing does not hide an event from the people registered for it: the events policy and
app_can_see_event also admit a caller with a live registration for the event
(sql/ddl/0020_registered_see_event.sql); the tenant reads its group members' notification
preferences (a private event's publication is announced to them).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VISIBLE = """
    deleted_at IS NULL AND status <> 'draft'
    AND (visibility = 'public'
         OR group_id IN (SELECT gm.group_id FROM group_members gm
                         WHERE gm.user_id = app_user_id() AND gm.deleted_at IS NULL))
"""


def upgrade() -> None:
    run_sql_file("0020_registered_see_event.sql")


def downgrade() -> None:
    op.execute("DROP POLICY notification_preferences_participants ON notification_preferences")
    op.execute(
        "CREATE POLICY notification_preferences_participants ON notification_preferences"
        " FOR SELECT USING ("
        " user_id IN (SELECT r.user_id FROM registrations r WHERE r.tenant_id = app_tenant_id())"
        " OR user_id IN (SELECT w.user_id FROM waitlist_entries w"
        " WHERE w.tenant_id = app_tenant_id()))"
    )
    op.execute("DROP POLICY events_visible ON events")
    op.execute(f"CREATE POLICY events_visible ON events FOR SELECT USING ({_VISIBLE})")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION app_can_see_event(p_event uuid) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT EXISTS (
                SELECT 1 FROM events e
                WHERE e.id = p_event AND e.deleted_at IS NULL
                  AND (e.tenant_id = app_tenant_id()
                       OR (e.status <> 'draft'
                           AND (e.visibility = 'public'
                                OR e.group_id IN (SELECT gm.group_id FROM group_members gm
                                                  WHERE gm.user_id = app_user_id()
                                                    AND gm.deleted_at IS NULL))))
            )
        $$
        """
    )
    op.execute("DROP FUNCTION app_registered_for(uuid)")
