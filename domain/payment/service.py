"""Payments of registrations and their refunds.

A registration owes its full price, or its ticket type's deposit and later the remainder
(``owed``). Paying starts with the provider (its reference and checkout URL come back) and ends
when the provider reports the outcome by webhook (``apply_status``), moving the payment through
the state machine of ``states``. Refunds are recorded first (``request_refund``, which reserves
the amount so refunds never exceed what was paid) and then handed to the provider
(``submit_refund``); a provider's report settles them (``apply_refund_outcome``).

Provider calls are made inside the caller's transaction, with the rows involved locked, and
with idempotency keys derived from our own ids, so a retry after any failure asks the provider
for the same thing again rather than for something new.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select

from domain.db.base import add_unique, uuid7
from domain.errors import Conflict, InvalidState, NotFound, ValidationFailed
from domain.event.models import Event, EventStatus
from domain.organization.models import Organization
from domain.payment import saga
from domain.payment.errors import ProviderRejected, ProviderUnavailable, UnknownProvider
from domain.payment.events import (
    PaymentCompleted,
    PaymentCreated,
    PaymentFailed,
    PaymentRefunded,
)
from domain.payment.models import (
    Payment,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from domain.payment.providers import Providers
from domain.payment.providers.base import PaymentRequest, RefundOutcome, RefundRequest
from domain.payment.states import OPEN, REFUNDABLE, after_refund, check_transition, path_to
from domain.registration.models import PaymentMode, Registration, RegistrationStatus
from domain.registration.service import get_registration
from domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

RESERVING = (RefundStatus.REQUESTED, RefundStatus.PENDING)


def _now() -> datetime:
    return datetime.now(UTC)


def _provider_key(*parts: object) -> str:
    """An idempotency key for the provider: the same request always sends the same key."""
    return "aqs_" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:48]


def remainder_due_at(event: Event) -> datetime:
    """When the rest of a deposit is due: the event's setting, else its start."""
    return event.remainder_due_at or event.starts_at


def owed(registration: Registration) -> tuple[PaymentPurpose, int]:
    """What the registration owes now: nothing paid yet, its ``amount_due_now`` (the full price,
    or the deposit); after a deposit, the remainder of ``amount_total``."""
    if registration.amount_paid == 0:
        purpose = (
            PaymentPurpose.DEPOSIT
            if registration.payment_mode == PaymentMode.DEPOSIT
            else PaymentPurpose.FULL
        )
        return purpose, registration.amount_due_now
    return PaymentPurpose.REMAINDER, registration.amount_total - registration.amount_paid


# --- payments ---------------------------------------------------------------------------------


def get_payment(uow: UnitOfWork, payment_id: uuid.UUID, *, lock: bool = False) -> Payment:
    payment = uow.session.get(Payment, payment_id, with_for_update=lock or None)
    if payment is None:
        raise NotFound("Payment not found")
    return payment


def payments_of(uow: UnitOfWork, registration_id: uuid.UUID) -> list[Payment]:
    return list(
        uow.session.scalars(
            select(Payment).where(Payment.registration_id == registration_id).order_by(Payment.id)
        )
    )


def open_payment(uow: UnitOfWork, registration_id: uuid.UUID) -> Payment | None:
    return uow.session.scalar(
        select(Payment).where(Payment.registration_id == registration_id, Payment.status.in_(OPEN))
    )


def initiate_payment(
    uow: UnitOfWork,
    providers: Providers,
    registration_id: uuid.UUID,
    *,
    payer_id: uuid.UUID | None = None,
    provider: str | None = None,
    request_key: str | None = None,
) -> tuple[Payment, bool]:
    """Start paying what the registration owes now; answers the payment and whether it is new.

    Idempotent: while a payment of the registration is open (pending or processing) that
    payment is the answer. ``payer_id``: the participant asking (only for their own
    registration); None when the saga asks. ``request_key``: the client's idempotency key, so a
    retry after a lost answer reaches the provider with the same key."""
    registration = get_registration(uow, registration_id, lock=True)
    if payer_id is not None and registration.user_id != payer_id:
        raise NotFound("Registration not found")
    if registration.status == RegistrationStatus.CANCELLED:
        raise InvalidState("The registration is cancelled", details={"status": "cancelled"})
    current = open_payment(uow, registration.id)
    if current is not None:
        if provider and provider != current.provider:
            raise Conflict(
                "Another payment of this registration is in progress",
                code="payment_in_progress",
                details={"payment_id": str(current.id), "provider": current.provider},
            )
        return current, False
    purpose, amount = owed(registration)
    if amount <= 0:
        raise Conflict(
            "Nothing is due on this registration",
            code="nothing_due",
            details={
                "amount_total": registration.amount_total,
                "amount_paid": registration.amount_paid,
            },
        )
    event = uow.session.get(Event, registration.event_id)
    if event is not None and event.status == EventStatus.CANCELLED:
        raise InvalidState(
            "The event is cancelled", code="event_cancelled", details={"status": "cancelled"}
        )
    if event is not None and purpose == PaymentPurpose.REMAINDER:
        due = remainder_due_at(event)
        if _now() >= due:
            raise InvalidState(
                "The remainder was due earlier",
                code="remainder_overdue",
                details={"due_at": due.isoformat()},
            )
    try:
        chosen = providers.get(provider)
    except UnknownProvider as exc:
        raise ValidationFailed(exc.message, code="unknown_provider", details=exc.details) from None
    payment_id = uuid7()
    # The organization's slug, for providers that scope by it (the sandbox's demo chaos).
    slug = uow.session.scalar(
        select(Organization.slug).where(Organization.id == registration.tenant_id)
    )
    result = chosen.create_payment(
        PaymentRequest(
            payment_id=payment_id,
            registration_id=registration.id,
            tenant_id=registration.tenant_id,
            tenant_slug=slug,
            amount=amount,
            currency=registration.currency,
            description=f"Registration {registration.id} ({purpose.value})",
            idempotency_key=_provider_key(
                "payment", registration.id, purpose.value, request_key or payment_id
            ),
        )
    )
    payment = Payment(
        id=payment_id,
        tenant_id=registration.tenant_id,
        registration_id=registration.id,
        event_id=registration.event_id,
        user_id=registration.user_id,
        purpose=purpose,
        provider=chosen.name,
        provider_ref=result.reference,
        amount=amount,
        currency=registration.currency,
        amount_refunded=0,
        status=PaymentStatus.PENDING,
        checkout_url=result.checkout_url,
        client_secret=result.client_secret,
    )
    add_unique(
        uow.session,
        payment,
        Conflict(
            "A payment of this registration is already in progress", code="payment_in_progress"
        ),
    )
    # Whatever the provider says now, the outcome arrives by webhook, and is applied then.
    uow.emit(PaymentCreated(**_fact(uow, payment), amount=amount))
    return payment, True


def _fact(uow: UnitOfWork, payment: Payment) -> dict:
    registration = uow.session.get(Registration, payment.registration_id)  # usually loaded
    return {
        "aggregate_id": payment.id,
        "tenant_id": payment.tenant_id,
        "payment_id": payment.id,
        "registration_id": payment.registration_id,
        "event_id": payment.event_id,
        "user_id": payment.user_id,
        "provider": payment.provider,
        "purpose": payment.purpose.value,
        "currency": payment.currency,
        "ticket_type_id": registration.ticket_type_id if registration is not None else None,
    }


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
        uow.emit(PaymentCompleted(**_fact(uow, payment), amount=payment.amount))
        saga.confirm_registration_on_payment(uow, payment.id)
    elif payment.status == PaymentStatus.FAILED:
        uow.emit(
            PaymentFailed(
                **_fact(uow, payment), amount=payment.amount, failure_code=payment.failure_code
            )
        )
        saga.release_seat_on_payment_failure(uow, payment.id)
    return True


# --- refunds ----------------------------------------------------------------------------------


def refunds_of(uow: UnitOfWork, payment_ids: list[uuid.UUID]) -> list[Refund]:
    if not payment_ids:
        return []
    return list(
        uow.session.scalars(
            select(Refund).where(Refund.payment_id.in_(payment_ids)).order_by(Refund.id)
        )
    )


def refundable(uow: UnitOfWork, payment: Payment) -> int:
    """What may still be refunded: paid, less refunded, less refunds under way."""
    if payment.status not in REFUNDABLE:
        return 0
    reserved = uow.session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.payment_id == payment.id, Refund.status.in_(RESERVING)
        )
    )
    return max(0, payment.amount - payment.amount_refunded - int(reserved))


def request_refund(
    uow: UnitOfWork,
    payment_id: uuid.UUID,
    *,
    amount: int | None,
    reason: str,
    request_key: str,
    note: str | None = None,
    requested_by: uuid.UUID | None = None,
) -> tuple[Refund, bool]:
    """Record a refund of ``amount`` (None: all that is left) and reserve it; answers the refund
    and whether it is new. The same ``request_key`` for the same payment answers the first
    refund again: a retry, or a saga step run twice, refunds once."""
    payment = get_payment(uow, payment_id, lock=True)
    existing = uow.session.scalar(
        select(Refund).where(Refund.payment_id == payment.id, Refund.request_key == request_key)
    )
    if existing is not None:
        return existing, False
    if payment.status not in REFUNDABLE:
        raise InvalidState(
            f"A {payment.status.value} payment cannot be refunded",
            details={"status": payment.status.value},
        )
    left = refundable(uow, payment)
    if left == 0:
        raise Conflict(
            "Nothing is left to refund", code="nothing_to_refund", details={"refundable": 0}
        )
    if amount is None:
        amount = left
    if amount > left:
        raise Conflict(
            f"At most {left} can still be refunded",
            code="refund_exceeds_paid",
            details={
                "refundable": left,
                "amount": payment.amount,
                "amount_refunded": payment.amount_refunded,
            },
        )
    refund = Refund(
        id=uuid7(),
        tenant_id=payment.tenant_id,
        payment_id=payment.id,
        user_id=payment.user_id,
        amount=amount,
        currency=payment.currency,
        status=RefundStatus.REQUESTED,
        reason=reason,
        note=note,
        request_key=request_key,
        requested_by=requested_by,
    )
    add_unique(
        uow.session,
        refund,
        Conflict("This refund is already being requested", code="refund_in_progress"),
    )
    log.info(
        "refund_requested", payment_id=str(payment.id), refund_id=str(refund.id), amount=amount
    )
    return refund, True


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
                idempotency_key=_provider_key("refund", refund.id),
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
    uow.emit(
        PaymentRefunded(
            **_fact(uow, payment),
            refund_id=refund.id,
            amount=refund.amount,
            amount_refunded=payment.amount_refunded,
            payment_amount=payment.amount,
            partial=payment.status == PaymentStatus.PARTIALLY_REFUNDED,
            reason=refund.reason,
        )
    )
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
