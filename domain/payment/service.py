"""Payments of registrations and their refunds.

A registration owes its full price, or its ticket type's deposit and later the remainder
(``owed``). Paying starts with the provider (its reference and checkout URL come back) and ends
when the provider reports the outcome by webhook (``apply_status``), moving the payment through
the state machine of ``states``. Refunds are recorded first (``request_refund``, which reserves
the amount so refunds never exceed what was paid) and then handed to the provider
(``submit_refund``); a provider's report settles them (``apply_refund_outcome``).

Settling a report runs the payment saga's steps in the same transaction (``saga.py``). What the
saga itself builds on, the records and their reads, starting a payment and reserving a refund,
is in ``ledger.py`` and answered here as well, so callers ask this one module.

Provider calls are made inside the caller's transaction, with the rows involved locked, and
with idempotency keys derived from our own ids, so a retry after any failure asks the provider
for the same thing again rather than for something new.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import select

from domain.payment import saga
from domain.payment.errors import ProviderRejected, ProviderUnavailable, UnknownProvider
from domain.payment.events import PaymentCompleted, PaymentFailed, PaymentRefunded
from domain.payment.ledger import (
    get_payment,
    initiate_payment,
    open_payment,
    owed,
    payments_of,
    provider_key,
    refundable,
    refunds_of,
    registration_of,
    remainder_due_at,
    request_refund,
)
from domain.payment.models import Payment, PaymentStatus, Refund, RefundStatus
from domain.payment.providers import Providers
from domain.payment.providers.base import RefundOutcome, RefundRequest
from domain.payment.states import OPEN, REFUNDABLE, after_refund, check_transition, path_to
from domain.uow import UnitOfWork

__all__ = [
    "apply_refund_outcome",
    "apply_status",
    "get_payment",
    "initiate_payment",
    "open_payment",
    "owed",
    "payments_of",
    "refund_payment",
    "refundable",
    "refunds_of",
    "remainder_due_at",
    "request_refund",
    "submit_refund",
]

log = structlog.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


# --- settling the provider's reports ------------------------------------------------------------


def _move(payment: Payment, target: PaymentStatus) -> None:
    check_transition(payment.status, target)
    now = _now()
    payment.status = target
    if target == PaymentStatus.PROCESSING:
        payment.processing_at = now
    elif target == PaymentStatus.COMPLETED:
        payment.completed_at = now
    elif target == PaymentStatus.FAILED:
        payment.failed_at = now


def apply_status(
    uow: UnitOfWork,
    payment: Payment,
    reported: PaymentStatus,
    failure_code: str | None = None,
) -> bool:
    """Bring a locked payment to the outcome its provider reports, through legal steps only;
    False when the report is stale or contradicts a final state (nothing changes).

    Completion counts the payment towards its registration; failure releases the seats of a
    registration still awaiting payment (both saga steps, in this transaction)."""
    steps = path_to(payment.status, reported)
    if not steps:
        if payment.status != reported:
            log.info(
                "payment_report_ignored",
                payment_id=str(payment.id),
                status=payment.status.value,
                reported=reported.value,
            )
        return False
    for step in steps:
        _move(payment, step)
    if payment.status == PaymentStatus.FAILED:
        payment.failure_code = (failure_code or "failed")[:64]
    uow.session.flush()
    if payment.status == PaymentStatus.COMPLETED:
        uow.emit(PaymentCompleted.of(payment, registration_of(uow, payment)))
        saga.confirm_registration_on_payment(uow, payment.id)
    elif payment.status == PaymentStatus.FAILED:
        uow.emit(PaymentFailed.of(payment, registration_of(uow, payment)))
        saga.release_seat_on_payment_failure(uow, payment.id)
    return True


# --- refunds ----------------------------------------------------------------------------------


def submit_refund(uow: UnitOfWork, providers: Providers, refund_id: uuid.UUID) -> Refund | None:
    """Hand a requested refund to its payment's provider. A provider that cannot be reached
    leaves it requested (the payment workers try again); one that refuses fails it. None when
    the refund is no longer requested (or another process is submitting it)."""
    refund = uow.session.scalar(
        select(Refund)
        .where(Refund.id == refund_id, Refund.status == RefundStatus.REQUESTED)
        .with_for_update(skip_locked=True)
    )
    if refund is None:
        return None
    payment = get_payment(uow, refund.payment_id, lock=True)
    try:
        provider = providers.get(payment.provider)
    except UnknownProvider:
        log.warning("refund_provider_disabled", refund_id=str(refund.id), provider=payment.provider)
        return refund
    try:
        result = provider.refund(
            RefundRequest(
                refund_id=refund.id,
                payment_id=payment.id,
                payment_reference=payment.provider_ref,
                amount=refund.amount,
                currency=refund.currency,
                idempotency_key=provider_key("refund", refund.id),
            )
        )
    except ProviderUnavailable as exc:
        log.warning("refund_provider_unavailable", refund_id=str(refund.id), error=exc.message)
        return refund
    except ProviderRejected as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        _fail_refund(refund, str(details.get("provider_code") or "rejected"))
        uow.session.flush()
        log.warning("refund_rejected", refund_id=str(refund.id), error=exc.message, **details)
        return refund
    refund.provider_ref = result.reference
    uow.session.flush()
    apply_refund_outcome(uow, payment, refund, result.status, result.failure_code)
    return refund


def _fail_refund(refund: Refund, code: str | None) -> None:
    refund.status = RefundStatus.FAILED
    refund.failure_code = (code or "failed")[:64]
    refund.failed_at = _now()


def apply_refund_outcome(
    uow: UnitOfWork,
    payment: Payment,
    refund: Refund,
    outcome: RefundOutcome,
    failure_code: str | None = None,
) -> bool:
    """Settle a refund as its provider reports (both rows locked); False if nothing changed.
    Succeeded and failed are final: a late "pending" changes nothing."""
    if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
        if refund.status.value != outcome.value:
            log.warning(
                "refund_report_ignored",
                refund_id=str(refund.id),
                status=refund.status.value,
                reported=outcome.value,
            )
        return False
    if outcome == RefundOutcome.PENDING:
        if refund.status == RefundStatus.PENDING:
            return False
        refund.status = RefundStatus.PENDING
        uow.session.flush()
        return True
    if outcome == RefundOutcome.FAILED:
        _fail_refund(refund, failure_code)
        uow.session.flush()
        log.warning("refund_failed", refund_id=str(refund.id), code=refund.failure_code)
        return True
    if payment.status in OPEN:
        # Money can only go back once it was taken: the completion report is still on its way.
        apply_status(uow, payment, PaymentStatus.COMPLETED)
    if payment.status not in REFUNDABLE:
        log.error("refund_of_unpaid_payment", refund_id=str(refund.id), status=payment.status.value)
        return False
    if payment.amount_refunded + refund.amount > payment.amount:
        log.error(
            "refund_exceeds_payment",
            refund_id=str(refund.id),
            amount=refund.amount,
            amount_refunded=payment.amount_refunded,
            payment_amount=payment.amount,
        )
        return False
    refund.status = RefundStatus.SUCCEEDED
    refund.succeeded_at = _now()
    payment.amount_refunded += refund.amount
    target = after_refund(payment.amount, payment.amount_refunded)
    if target != payment.status:
        _move(payment, target)
    uow.session.flush()
    uow.emit(PaymentRefunded.of(payment, registration_of(uow, payment), refund))
    saga.cancel_registration_if_refunded(uow, payment.registration_id)
    return True


def refund_payment(
    uow: UnitOfWork,
    providers: Providers,
    payment_id: uuid.UUID,
    *,
    amount: int | None,
    request_key: str,
    requested_by: uuid.UUID,
    note: str | None = None,
) -> Refund:
    """An organizer's refund: recorded, then handed to the provider at once."""
    refund_row, created = request_refund(
        uow,
        payment_id,
        amount=amount,
        reason="organizer",
        request_key=request_key,
        note=note,
        requested_by=requested_by,
    )
    if created:
        submit_refund(uow, providers, refund_row.id)
    return refund_row
