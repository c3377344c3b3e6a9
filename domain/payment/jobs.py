"""Time-driven payment work, found across tenants and done in each tenant's context.

As with holds (domain/registration/sweeper.py), work is discovered by ``SECURITY DEFINER``
functions that answer only ids and tenants (sql/ddl/0005_payments.sql); each item then runs in
its own unit of work, under row level security, taking its rows with SKIP LOCKED, so several
sweepers may run. State is the database: a pass that dies loses nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from domain.payment import saga, service
from domain.payment.models import RefundStatus
from domain.payment.providers import Providers
from domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

BATCH = 200
DEFAULT_PAYMENT_TIMEOUT_S = 1800  # AQSTREAM_PAYMENT_TIMEOUT_S's default

Headers = Callable[[], dict[str, str]] | None


@dataclass
class PaymentSweep:
    released: int = 0  # registrations cancelled: never paid in time
    defaulted: int = 0  # registrations cancelled: remainder unpaid by the deadline
    refunds_requested: int = 0  # payments of cancelled events to refund


def _each(
    sessions: sessionmaker[Session],
    items: list[tuple[uuid.UUID, uuid.UUID]],
    work: Callable[[UnitOfWork, uuid.UUID], bool],
    headers: Headers,
) -> int:
    """Run ``work`` on each item in its own tenant's transaction; answers how many it did. An
    item that fails is logged and left for the next pass, without holding up the others."""
    done = 0
    for item_id, tenant_id in items:
        try:
            with UnitOfWork(sessions, tenant_id=tenant_id, headers=headers) as uow:
                did = work(uow, item_id)
                uow.commit()
        except Exception:
            log.exception("payment_job_failed", item=str(item_id), job=work.__name__)
            continue
        done += bool(did)
    return done


def _discover(
    sessions: sessionmaker[Session], sql: str, **params: object
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    with sessions() as session:
        return [(row[0], row[1]) for row in session.execute(text(sql), {"n": BATCH, **params})]


def sweep_payments(
    sessions: sessionmaker[Session],
    *,
    payment_timeout_s: int = DEFAULT_PAYMENT_TIMEOUT_S,
    headers: Headers = None,
) -> PaymentSweep:
    """One pass: release registrations never paid, default overdue remainders, and ask for the
    refunds of cancelled events. Records only; refunds reach providers through the workers."""
    timeout = timedelta(seconds=payment_timeout_s)

    def release(uow: UnitOfWork, registration_id: uuid.UUID) -> bool:
        return saga.release_unpaid_registration(uow, registration_id, timeout=timeout)

    def request_refund(uow: UnitOfWork, payment_id: uuid.UUID) -> bool:
        return saga.refund_cancelled_event_payment(uow, payment_id) is not None

    result = PaymentSweep()
    result.released = _each(
        sessions,
        _discover(
            sessions,
            "SELECT * FROM registrations_awaiting_payment(:timeout, :n)",
            timeout=payment_timeout_s,
        ),
        release,
        headers,
    )
    result.defaulted = _each(
        sessions,
        _discover(sessions, "SELECT * FROM registrations_remainder_overdue(:n)"),
        saga.default_unpaid_remainder,
        headers,
    )
    result.refunds_requested = _each(
        sessions,
        _discover(sessions, "SELECT * FROM cancelled_event_payments(:n)"),
        request_refund,
        headers,
    )
    return result


def submit_requested_refunds(
    sessions: sessionmaker[Session], providers: Providers, *, headers: Headers = None
) -> int:
    """Hand every requested refund to its provider; answers how many left the requested state
    (a provider that cannot be reached keeps its refunds for the next pass)."""

    def submit(uow: UnitOfWork, refund_id: uuid.UUID) -> bool:
        refund = service.submit_refund(uow, providers, refund_id)
        return refund is not None and refund.status != RefundStatus.REQUESTED

    return _each(
        sessions, _discover(sessions, "SELECT * FROM refunds_to_submit(:n)"), submit, headers
    )
