"""Unit of work: one transaction, its tenant context, and the outbox writes of its events.

The context is applied with ``set_config(..., is_local => true)``, so it lives exactly as long as
the transaction and can never leak to the next user of a pooled connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from domain.contracts import validated_payload
from domain.db.base import uuid7
from domain.events import DomainEvent

# The context, and the caller's account row when asked (migration 0026): one round trip.
_BEGIN = text("SELECT * FROM app_begin(:user_id, :tenant_id, :admin, :account)")
_SET_ONE = text("SELECT set_config(:name, :value, true)")
_OUTBOX_COLUMNS = (
    "id, tenant_id, aggregate_type, aggregate_id, event_type, schema_version, payload, headers"
)
_OUTBOX_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s)"
# Rows per INSERT: PostgreSQL takes at most 65,535 parameters in one statement (8 per row).
_OUTBOX_CHUNK = 1000


def _outbox_insert(rows: int) -> str:
    """One plain multi-row INSERT, without RETURNING: the application role may append to the
    outbox, never read it."""
    return f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES {', '.join([_OUTBOX_ROW] * rows)}"


@dataclass(frozen=True)
class FinalStatement:
    """A statement sent together with COMMIT, in one round trip (see ``UnitOfWork.finish_with``).

    ``sql`` uses psycopg placeholders (``%s``). A statement refuses by raising; ``refusal`` turns
    such a database error into the domain error to raise instead (None: not a refusal of ours)."""

    sql: str
    params: tuple[Any, ...]
    refusal: Callable[[psycopg.Error], Exception | None] | None = None
    # Given the statement's first row (RETURNING) once the commit succeeded.
    returned: Callable[[tuple[Any, ...]], None] | None = None
    # A row the transaction's events describe: sent before the outbox rows, whose policy may
    # look for it (a participant's registration), and the other final statements.
    row_write: bool = False


class UnitOfWork:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        user_id: uuid.UUID | None = None,
        tenant_id: uuid.UUID | None = None,
        platform_admin: bool = False,
        headers: Callable[[], dict[str, str]] | None = None,
        check_account: bool = False,
    ) -> None:
        """``check_account``: read the account of ``user_id`` with the context (see
        ``account``), as the API does for every signed-in request."""
        self._sessions = sessions
        self.user_id = user_id
        self.tenant_id = tenant_id
        self.platform_admin = platform_admin
        self._headers = headers or dict
        self._check_account = check_account
        self._events: list[DomainEvent] = []
        self._final: list[FinalStatement] = []
        self.session: Session
        # The account row (platform_admin, deleted_at, token_version) when ``check_account``;
        # None when there is no such user (or the policies hide it).
        self.account: Row[Any] | None = None

    def __enter__(self) -> Self:
        # The pool does not ping a connection at every checkout (a round trip per transaction).
        # A connection the server dropped meanwhile (a restart, an idle timeout) fails the first
        # statement; the pool then discards it and every connection as old, and this transaction
        # starts again once on a fresh one, as the ping would have had it.
        for attempt in (1, 2):
            self.session = self._sessions()
            self.session.begin()
            try:
                self._apply_context()
            except DBAPIError as exc:
                self.session.close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
                continue
            return self
        raise AssertionError("unreachable")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.session.in_transaction():
                self.session.rollback()
        finally:
            self.session.close()

    # --- context ---------------------------------------------------------------------------
    def _apply_context(self) -> None:
        result = self.session.execute(
            _BEGIN,
            {
                "user_id": self.user_id,
                "tenant_id": self.tenant_id,
                "admin": self.platform_admin,
                "account": self._check_account,
            },
        )
        self.account = result.one_or_none()
        account = self.account
        if account is not None and account.platform_admin and account.deleted_at is None:
            self.platform_admin = True  # app_begin switched the policies' flag on

    def enter_tenant(self, tenant_id: uuid.UUID) -> None:
        """Narrow this transaction to one tenant (after membership has been verified)."""
        self.tenant_id = tenant_id
        self.session.execute(_SET_ONE, {"name": "app.tenant_id", "value": str(tenant_id)})

    def act_as(self, user_id: uuid.UUID) -> None:
        """Become ``user_id`` for the rest of the transaction (sign-up, sign-in, refresh)."""
        self.user_id = user_id
        self.session.execute(_SET_ONE, {"name": "app.user_id", "value": str(user_id)})

    def set_capability(self, name: str, value: str) -> None:
        """A secret the caller proved to hold (an invite token hash) that some policies accept."""
        self.session.execute(_SET_ONE, {"name": f"app.{name}", "value": value})

    # --- events ------------------------------------------------------------------------------
    def emit(self, event: DomainEvent) -> None:
        self._events.append(event)

    def finish_with(self, statement: FinalStatement) -> None:
        """Run ``statement`` as the transaction's last, sent in one round trip with COMMIT.

        For updates of hot rows (seat counters): the row lock is then held only while the
        database runs the statement and the commit. Held across a round trip back to a busy
        Python process instead, the locks of a flash sale queue up behind a GIL convoy (measured:
        statement timeouts with 64 clients on 2 cores)."""
        self._final.append(statement)

    def commit(self) -> None:
        if not self._final:
            self.write_events()
            self.session.commit()
            return
        self.session.flush()
        # The rows, the outbox rows, the other final statements and COMMIT: one round trip.
        final = [
            *(statement for statement in self._final if statement.row_write),
            *self._outbox_statements(),
            *(statement for statement in self._final if not statement.row_write),
        ]
        self._final = []
        pg = self._driver_connection()
        error: psycopg.Error | None = None
        cursors: list[psycopg.Cursor[Any]] = []
        try:
            with pg.pipeline():
                # Caught inside the block too, so psycopg does not log it as "ignored".
                try:
                    for statement in final:
                        cursors.append(pg.execute(statement.sql, statement.params))
                    pg.commit()
                except psycopg.Error as exc:
                    error = exc
        except psycopg.Error as exc:  # the rest of an aborted pipeline: the first error counts
            error = error or exc
        if error is not None:
            self.session.rollback()
            for statement in final:
                refused = statement.refusal(error) if statement.refusal else None
                if refused is not None:
                    raise refused from None
            raise error
        self.session.commit()  # SQLAlchemy's side: the connection is already idle
        for statement, cursor in zip(final, cursors, strict=True):
            if statement.returned is not None:
                row = cursor.fetchone()
                assert row is not None, statement.sql
                statement.returned(row)

    def _driver_connection(self) -> psycopg.Connection[Any]:
        return self.session.connection().connection.driver_connection  # type: ignore[return-value]

    def _outbox_statements(self) -> list[FinalStatement]:
        """The events raised so far as outbox INSERTs (of at most ``_OUTBOX_CHUNK`` rows each),
        in the order they were raised."""
        if not self._events:
            return []
        headers = Jsonb(self._headers())
        statements = []
        for start in range(0, len(self._events), _OUTBOX_CHUNK):
            chunk = self._events[start : start + _OUTBOX_CHUNK]
            # Checked against the published contract first: a payload that breaks it raises
            # EventContractError and fails this transaction, not a consumer later.
            params = tuple(
                value
                for event in chunk
                for value in (
                    uuid7(),
                    event.tenant_id,
                    event.aggregate_type,
                    event.aggregate_id,
                    event.event_type,
                    event.schema_version,
                    Jsonb(validated_payload(event)),
                    headers,
                )
            )
            statements.append(FinalStatement(_outbox_insert(len(chunk)), params))
        self._events.clear()
        return statements

    def write_events(self) -> None:
        """Write the events raised so far to the outbox now (still in this transaction), e.g.
        before taking a hot row lock, so that lock is held for as short a time as possible."""
        for statement in self._outbox_statements():
            self._driver_connection().execute(statement.sql, statement.params)

    @property
    def pending_events(self) -> list[DomainEvent]:
        return list(self._events)
