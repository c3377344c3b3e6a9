"""The background sweeper: expires due holds and offers freed seats to waitlists.

All its state is in the database (expires_at, waitlist rows), so a restart loses nothing: the
next sweep finds whatever fell due meanwhile. Work is discovered across tenants by two
SECURITY DEFINER functions that return only ids; each item is then handled in its own tenant's
context, under row level security, one transaction per item. Several sweepers may run: rows are
taken with SKIP LOCKED.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from domain.registration.service import expire_reservation
from domain.uow import UnitOfWork
from domain.waitlist.service import offer_next

BATCH = 200


@dataclass
class SweepResult:
    expired: int = 0
    offered: int = 0


def _discover(sessions: sessionmaker[Session], sql: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    with sessions() as session:
        return [(row[0], row[1]) for row in session.execute(text(sql), {"n": BATCH})]


def sweep_once(sessions: sessionmaker[Session], headers=None) -> SweepResult:
    result = SweepResult()
    for reservation_id, tenant_id in _discover(sessions, "SELECT * FROM due_reservations(:n)"):
        with UnitOfWork(sessions, tenant_id=tenant_id, headers=headers) as uow:
            if expire_reservation(uow, reservation_id):
                result.expired += 1
            uow.commit()
    for ticket_type_id, tenant_id in _discover(
        sessions, "SELECT * FROM waitlists_with_free_seats(:n)"
    ):
        with UnitOfWork(sessions, tenant_id=tenant_id, headers=headers) as uow:
            result.offered += offer_next(uow, ticket_type_id)
            uow.commit()
    return result
