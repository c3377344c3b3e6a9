"""Payments and refunds as recorded: what a registration owes, starting its payment with the
provider, reserving a refund, and the reads over them.

The payment saga (``saga.py``) builds on this module, and the settlement of the provider's
reports (``service.py``) runs the saga's steps; this module knows neither, so the dependency goes
one way: service, then saga, then ledger. ``service`` answers these functions too.
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
from domain.payment.errors import UnknownProvider
from domain.payment.events import PaymentCreated
from domain.payment.models import (
    Payment,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from domain.payment.providers import Providers
from domain.payment.providers.base import PaymentRequest
from domain.payment.states import OPEN, REFUNDABLE
from domain.registration.models import PaymentMode, Registration, RegistrationStatus
from domain.registration.service import get_registration
from domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

RESERVING = (RefundStatus.REQUESTED, RefundStatus.PENDING)


def _now() -> datetime:
    return datetime.now(UTC)


def provider_key(*parts: object) -> str:
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
            idempotency_key=provider_key(
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
    uow.emit(PaymentCreated.of(payment, registration))
    return payment, True


def registration_of(uow: UnitOfWork, payment: Payment) -> Registration | None:
    """The payment's registration, for its events (usually loaded already)."""
    return uow.session.get(Registration, payment.registration_id)


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
