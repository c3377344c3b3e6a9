"""Unit of work: one transaction, its tenant context, and the outbox writes of its events.

The context is applied with ``set_config(..., is_local => true)``, so it lives exactly as long as
the transaction and can never leak to the next user of a pooled connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from domain.db.base import uuid7
from domain.events import DomainEvent
from domain.outbox.models import OutboxMessage

_SET = text(
    "SELECT set_config('app.user_id', :user_id, true), "
    "set_config('app.tenant_id', :tenant_id, true), "
    "set_config('app.platform_admin', :admin, true)"
)
_SET_ONE = text("SELECT set_config(:name, :value, true)")


class UnitOfWork:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        user_id: uuid.UUID | None = None,
        tenant_id: uuid.UUID | None = None,
        platform_admin: bool = False,
        headers: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self._sessions = sessions
        self.user_id = user_id
        self.tenant_id = tenant_id
        self.platform_admin = platform_admin
        self._headers = headers or dict
        self._events: list[DomainEvent] = []
        self.session: Session

    def __enter__(self) -> Self:
        self.session = self._sessions()
        self.session.begin()
        self._apply_context()
        return self

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
        self.session.execute(
            _SET,
            {
                "user_id": str(self.user_id) if self.user_id else "",
                "tenant_id": str(self.tenant_id) if self.tenant_id else "",
                "admin": "on" if self.platform_admin else "",
            },
        )

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

    def commit(self) -> None:
        self.write_events()
        self.session.commit()

    def write_events(self) -> None:
        """Write the events raised so far to the outbox now (still in this transaction), e.g.
        before taking a hot row lock, so that lock is held for as short a time as possible."""
        if self._events:
            headers = self._headers()
            # A plain INSERT without RETURNING: the application role may append, never read.
            self.session.execute(
                insert(OutboxMessage),
                [
                    {
                        "id": uuid7(),
                        "tenant_id": event.tenant_id,
                        "aggregate_type": event.aggregate_type,
                        "aggregate_id": event.aggregate_id,
                        "event_type": event.event_type,
                        "schema_version": event.schema_version,
                        "payload": event.payload(),
                        "headers": headers,
                    }
                    for event in self._events
                ],
            )
            self._events.clear()

    @property
    def pending_events(self) -> list[DomainEvent]:
        return list(self._events)
