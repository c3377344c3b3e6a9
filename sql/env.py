"""Alembic environment: runs as the migration owner; the application role is created by 0001."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from domain.models import Base

config = context.config
target_metadata = Base.metadata


def _owner_url() -> str:
    url = config.attributes.get("owner_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from core.settings import Settings

        url = Settings().owner_url.render_as_string(hide_password=False)
    return str(url)


def run_migrations_offline() -> None:
    context.configure(url=_owner_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_owner_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(
            connection=conn, target_metadata=target_metadata, transaction_per_migration=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
