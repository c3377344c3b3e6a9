"""The payment saga's agent (``payment-saga``, on the registration, payment and event topics):
the steps of ``domain/payment/saga.py``, each in ONE unit of work in the event's tenant together
with an inbox row ``(worker.payment-saga, event id)``: a redelivered record finds the row and
changes nothing. The steps are idempotent by the state they find as well, so running one after
the webhook path already did (a completed payment confirms its registration at once) is
harmless."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import text

from core.logging import get_logger
from domain.payment import saga
from domain.registration.cancellation import cancel_event_registrations
from domain.registration.models import RegistrationStatus
from domain.uow import UnitOfWork
from streams.processor import Deps
from streams.records import Record

log = get_logger(__name__)

SAGA = "payment-saga"
SAGA_EVENT_TYPES = (
    "registration.created",
    "registration.cancelled",
    "payment.completed",
    "payment.failed",
    "payment.refunded",
    "event.cancelled",
)

_INBOX = text(
    "INSERT INTO inbox (consumer, event_id) VALUES (:consumer, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


def _saga_step(deps: Deps, uow: UnitOfWork, event_type: str, p: dict[str, Any]) -> str | None:
    """Run the saga step of ``event_type``; answer what it did (None: not a saga event)."""
    if event_type == "registration.created":
        if p.get("status") != RegistrationStatus.PENDING_PAYMENT.value:
            return "skipped"  # free or already paid: nothing to pay
        payment = saga.initiate_payment_for_registration(
            uow, deps.providers, uuid.UUID(p["registration_id"])
        )
        return "initiated" if payment is not None else "unchanged"
    if event_type == "registration.cancelled":
        if not p.get("refund_due"):
            return "skipped"  # not a participant's cancellation with something to give back
        refunds = saga.refund_participant_cancellation(uow, uuid.UUID(p["registration_id"]))
        return f"refunds={len(refunds)}"
    if event_type == "payment.completed":
        done = saga.confirm_registration_on_payment(uow, uuid.UUID(p["payment_id"]))
        return "applied" if done is not None else "unchanged"
    if event_type == "payment.failed":
        done = saga.release_seat_on_payment_failure(uow, uuid.UUID(p["payment_id"]))
        return "released" if done is not None else "unchanged"
    if event_type == "payment.refunded":
        if p.get("partial"):
            return "skipped"
        done = saga.cancel_registration_if_refunded(uow, uuid.UUID(p["registration_id"]))
        return "cancelled" if done is not None else "unchanged"
    if event_type == "event.cancelled":
        event_id = uuid.UUID(p["event_id"])
        refunds = saga.refund_event_payments(uow, event_id)
        cancelled = cancel_event_registrations(uow, event_id)
        return f"refunds={len(refunds)} cancelled={cancelled}"
    return None


def run_saga_step(deps: Deps, record: Record, consumer: str = f"worker.{SAGA}") -> str:
    """One record of the saga in one transaction, with its inbox row (blocking)."""
    with UnitOfWork(
        deps.sessions, tenant_id=record.tenant_id, headers=record.outbox_headers
    ) as uow:
        fresh = uow.session.execute(
            _INBOX, {"consumer": consumer, "event_id": record.event_id}
        ).first()
        if fresh is None:
            return "duplicate"
        outcome = _saga_step(deps, uow, record.event_type, record.payload())
        uow.commit()
        return outcome or "ignored"


async def saga_handler(deps: Deps, record: Record) -> None:
    if record.event_type not in SAGA_EVENT_TYPES:
        return
    outcome = await asyncio.to_thread(run_saga_step, deps, record)
    log.info(
        "saga_step",
        event_type=record.event_type,
        event_id=str(record.event_id),
        outcome=outcome,
        correlation_id=record.headers.get("correlation_id") or None,
    )
