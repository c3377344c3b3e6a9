"""A unit of work's context and the caller's account check in one statement: ``app_begin()``
(sql/ddl/0026_unit_of_work_begin.sql).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from aqstream.migrations import run_sql_file

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_sql_file("0026_unit_of_work_begin.sql")


def downgrade() -> None:
    op.execute("DROP FUNCTION app_begin(uuid, uuid, boolean, boolean)")
