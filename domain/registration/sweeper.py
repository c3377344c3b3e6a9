"""The background sweeper: expires due holds, offers freed seats to waitlists, and runs the
payment jobs (domain/payment/jobs.py): registrations never paid in time and remainders unpaid by
their deadline are cancelled, refunds of cancelled events are asked for.

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

from domain.payment.jobs import DEFAULT_PAYMENT_TIMEOUT_S, sweep_payments
from domain.registration.service import expire_reservation
from domain.uow import UnitOfWork
from domain.waitlist.service import offer_next

BATCH = 200


@dataclass
class SweepResult:
    expired: int = 0
    offered: int = 0
    released: int = 0  # registrations cancelled: not paid within the payment timeout
    defaulted: int = 0  # registrations cancelled: remainder unpaid by the event's deadline
    refunds_requested: int = 0  # payments of cancelled events put up for refund


def _discover(sessions: sessionmaker[Session], sql: str) -> list[tuple[uuid.UUID, uuid.UUID]]:
    with sessions() as session:
        return [(row[0], row[1]) for row in session.execute(text(sql), {"n": BATCH})]


def sweep_once(
    sessions: sessionmaker[Session],
    headers=None,
    *,
    payment_timeout_s: int = DEFAULT_PAYMENT_TIMEOUT_S,
) -> SweepResult:
    """One pass; ``payment_timeout_s`` is AQSTREAM_PAYMENT_TIMEOUT_S."""
    result = SweepResult()
    for reservation_id, tenant_id in _discover(sessions, "SELECT * FROM due_reservations(:n)"):
        with UnitOfWork(sessions, tenant_id=tenant_id, headers=headers) as uow:
            if expire_reservation(uow, reservation_id):
                result.expired += 1
            uow.commit()
    # Before the offers: seats freed by unpaid registrations go to the waitlist in this pass.
    payments = sweep_payments(sessions, payment_timeout_s=payment_timeout_s, headers=headers)
    result.released = payments.released
    result.defaulted = payments.defaulted
    result.refunds_requested = payments.refunds_requested
    for ticket_type_id, tenant_id in _discover(
        sessions, "SELECT * FROM waitlists_with_free_seats(:n)"
    ):
        while True:  # one offer per transaction (see offer_next)
            with UnitOfWork(sessions, tenant_id=tenant_id, headers=headers) as uow:
                offered = offer_next(uow, ticket_type_id)
                uow.commit()
            if not offered:
                break
            result.offered += 1
    return result
