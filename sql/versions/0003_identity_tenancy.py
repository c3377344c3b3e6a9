"""Identity, organizations (tenants), members, requests, invites, groups; row level security.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "group_members",
    "groups",
    "organization_invites",
    "organization_members",
    "organizations",
    "organization_requests",
    "users",
)


def upgrade() -> None:
    run_sql_file("0003_identity_tenancy.sql")


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS outbox_append ON outbox")
    op.execute("ALTER TABLE outbox DISABLE ROW LEVEL SECURITY")
    for table in TABLES:
        op.execute(f"DROP TABLE {table} CASCADE")  # policies reference each other
    op.execute("DROP TYPE organization_request_status")
    op.execute("DROP TYPE member_role")
    op.execute("DROP FUNCTION app_resource_tenant(text, uuid)")
    for fn in (
        "app_capability(text)",
        "app_is_platform_admin()",
        "app_tenant_id()",
        "app_user_id()",
    ):
        op.execute(f"DROP FUNCTION {fn}")
