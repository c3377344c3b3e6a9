"""Engines and sessions, built at start-up from settings (never at import)."""

from __future__ import annotations

from psycopg import sql
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker


def make_engine(
    url: URL | str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    statement_timeout_ms: int = 15_000,
    application_name: str = "aqstream",
    role: str | None = None,
    pre_ping: bool = True,
) -> Engine:
    """``role``: every connection switches to it (SET ROLE) once connected, as the relay's and
    the warehouse's sessions do: they log in as the owner and act as a narrower role.

    ``pre_ping``: test every connection at checkout (a round trip). Off for an engine used only
    through ``UnitOfWork``, which starts again on a fresh connection when its first statement
    finds one the server dropped, so the round trip is spent only when it is needed."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pre_ping,
        connect_args={
            "connect_timeout": 5,
            "application_name": application_name,
            "options": f"-c statement_timeout={statement_timeout_ms}",
        },
    )
    if role is not None:
        statement = sql.SQL("SET ROLE {}").format(sql.Identifier(role))

        @event.listens_for(engine, "connect")
        def _set_role(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            with dbapi_connection.cursor() as cursor:
                cursor.execute(statement)
            dbapi_connection.commit()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)
