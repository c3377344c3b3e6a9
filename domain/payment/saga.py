"""The payment saga's steps between payments and registrations.

Each is a plain function of a unit of work (in the tenant's context), idempotent by the state
it finds: run twice, or after the webhook path already ran it, it changes nothing. The webhook
path runs them in its own transaction (a completed payment confirms its registration at once);
issue E wires them to the payment.* / registration.* / event.* streams as well, and the sweeper
runs the time-driven ones.

Refunds asked for here are only recorded (``request_refund``): the payment workers hand them to
the provider, so no step here calls a provider except ``initiate_payment_for_registration``.

The steps build on the payment records (``ledger.py``), never on ``service.py``: settling a
provider's report there runs the steps here, so the dependency goes one way.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import exists, select

from domain.errors import Conflict
from domain.event.models import Event, EventStatus
from domain.payment import ledger
from domain.payment.models import Payment, PaymentStatus, Refund
from domain.payment.providers import Providers
from domain.payment.states import PAID, REFUNDABLE
from domain.registration import service as registrations
from domain.registration.models import PaymentMode, Registration, RegistrationStatus
from domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

# request_key of the refunds each step asks for: one per payment and step, however often it runs.
EVENT_CANCELLED = "saga:event-cancelled"
REMAINDER_UNPAID = "saga:remainder-unpaid"
REGISTRATION_CANCELLED = "saga:registration-cancelled"
PARTICIPANT_CANCELLED = "saga:participant-cancelled"


def _now() -> datetime:
    return datetime.now(UTC)


def initiate_payment_for_registration(
    uow: UnitOfWork, providers: Providers, registration_id: uuid.UUID
) -> Payment | None:
    """registration.created: start the payment of a registration awaiting one, with the default
    provider; None for free, paid or cancelled registrations."""
    registration = registrations.get_registration(uow, registration_id)
    if registration.status != RegistrationStatus.PENDING_PAYMENT:
        return None
    try:
        payment, _ = ledger.initiate_payment(uow, providers, registration_id)
    except Conflict as exc:
        if exc.code in ("nothing_due", "event_cancelled", "remainder_overdue"):
            return None
        raise
    return payment


def confirm_registration_on_payment(uow: UnitOfWork, payment_id: uuid.UUID) -> Registration | None:
    """payment.completed: count the payment towards its registration, once (``applied_at``);
    the registration is confirmed once what was due now is paid (a deposit, or the whole
    price), and a remainder adds to ``amount_paid``. A payment completing after its registration
    was cancelled (timed out, remainder unpaid) is refunded in full instead."""
    payment = ledger.get_payment(uow, payment_id, lock=True)
    if payment.status not in PAID or payment.applied_at is not None:
        return None
    registration = registrations.get_registration(uow, payment.registration_id, lock=True)
    payment.applied_at = _now()
    uow.session.flush()
    if registration.status == RegistrationStatus.CANCELLED:
        log.warning(
            "payment_after_cancellation",
            payment_id=str(payment.id),
            registration=str(registration.id),
        )
        _request_refund(uow, payment, reason="registration_cancelled", key=REGISTRATION_CANCELLED)
        return registration
    return registrations.confirm(uow, registration.id, payment.amount)


def release_seat_on_payment_failure(uow: UnitOfWork, payment_id: uuid.UUID) -> Registration | None:
    """payment.failed: a registration still awaiting its first payment is cancelled and its
    seats freed. A failed remainder leaves the (confirmed) registration alone: it may be paid
    again until the deadline."""
    payment = ledger.get_payment(uow, payment_id)
    if payment.status != PaymentStatus.FAILED:
        return None
    registration = registrations.get_registration(uow, payment.registration_id, lock=True)
    if registration.status != RegistrationStatus.PENDING_PAYMENT:
        return None
    if ledger.open_payment(uow, registration.id) is not None:
        return None  # another attempt is under way
    return registrations.cancel(uow, registration.id, reason="payment_failed")


def release_unpaid_registration(
    uow: UnitOfWork, registration_id: uuid.UUID, *, timeout: timedelta
) -> bool:
    """The sweeper: a registration awaiting payment for longer than ``timeout``, with no payment
    being processed, is cancelled and its seats freed. A payment completing later is refunded."""
    registration = uow.session.scalar(
        select(Registration)
        .where(
            Registration.id == registration_id,
            Registration.status == RegistrationStatus.PENDING_PAYMENT,
            Registration.created_at <= _now() - timeout,
        )
        .with_for_update(skip_locked=True)
    )
    if registration is None or _processing(uow, registration.id):
        return False
    registrations.cancel(uow, registration.id, reason="payment_timeout")
    return True


def default_unpaid_remainder(uow: UnitOfWork, registration_id: uuid.UUID) -> bool:
    """The sweeper: past the event's remainder deadline, a deposit-paid registration whose
    remainder is still unpaid (and not being processed) is cancelled and its seats freed; its
    deposit is refunded when the event says so (``refund_deposit_on_default``)."""
    registration = uow.session.scalar(
        select(Registration)
        .where(
            Registration.id == registration_id,
            Registration.status == RegistrationStatus.CONFIRMED,
            Registration.payment_mode == PaymentMode.DEPOSIT,
            Registration.amount_paid < Registration.amount_total,
            Registration.checked_in_at.is_(None),
        )
        .with_for_update(skip_locked=True)
    )
    if registration is None:
        return False
    event = uow.session.get(Event, registration.event_id)
    if (
        event is None
        or event.status != EventStatus.PUBLISHED
        or _now() < ledger.remainder_due_at(event)
        or _processing(uow, registration.id)
    ):
        return False
    registrations.cancel(uow, registration.id, reason="remainder_unpaid")
    if event.refund_deposit_on_default:
        for payment in ledger.payments_of(uow, registration.id):
            if payment.status in REFUNDABLE:
                _request_refund(uow, payment, reason="remainder_unpaid", key=REMAINDER_UNPAID)
    return True


def refund_event_payments(uow: UnitOfWork, event_id: uuid.UUID) -> list[Refund]:
    """event.cancelled: refund every payment of the event that still holds money."""
    payment_ids = list(
        uow.session.scalars(
            select(Payment.id).where(Payment.event_id == event_id, Payment.status.in_(REFUNDABLE))
        )
    )
    refunds = [refund_cancelled_event_payment(uow, pid) for pid in payment_ids]
    return [r for r in refunds if r is not None]


def refund_cancelled_event_payment(uow: UnitOfWork, payment_id: uuid.UUID) -> Refund | None:
    """One payment of a cancelled event: what is left of it goes back (once)."""
    payment = ledger.get_payment(uow, payment_id)
    event = uow.session.get(Event, payment.event_id)
    if event is None or event.status != EventStatus.CANCELLED or payment.status not in REFUNDABLE:
        return None
    return _request_refund(uow, payment, reason="event_cancelled", key=EVENT_CANCELLED)


def refund_participant_cancellation(uow: UnitOfWork, registration_id: uuid.UUID) -> list[Refund]:
    """registration.cancelled by its participant: ask for what the event's refund policy gave
    back (``refund_due``, decided when they cancelled; domain/payment/cancellation.py), spread
    over the registration's payments oldest first. Once: what was asked for before under this
    step's key counts, so a second run asks for nothing more."""
    registration = registrations.get_registration(uow, registration_id)
    if registration.status != RegistrationStatus.CANCELLED or not registration.refund_due:
        return []
    payments = ledger.payments_of(uow, registration.id)
    asked = list(
        uow.session.scalars(
            select(Refund).where(
                Refund.payment_id.in_([p.id for p in payments]),
                Refund.request_key == PARTICIPANT_CANCELLED,
            )
        )
    )
    remaining = registration.refund_due - sum(r.amount for r in asked)
    done = {r.payment_id for r in asked}
    refunds = list(asked)
    for payment in payments:
        if remaining <= 0:
            break
        if payment.id in done or payment.status not in REFUNDABLE:
            continue
        payment = ledger.get_payment(uow, payment.id, lock=True)
        amount = min(remaining, ledger.refundable(uow, payment))
        if amount <= 0:
            continue
        refund, _ = ledger.request_refund(
            uow,
            payment.id,
            amount=amount,
            reason="participant_cancelled",
            request_key=PARTICIPANT_CANCELLED,
        )
        remaining -= refund.amount
        refunds.append(refund)
    return refunds


def cancel_registration_if_refunded(
    uow: UnitOfWork, registration_id: uuid.UUID
) -> Registration | None:
    """payment.refunded: once everything paid for a registration went back, the registration
    is cancelled and its seats freed. Partial refunds leave it; so does a check-in."""
    registration = registrations.get_registration(uow, registration_id, lock=True)
    if registration.status == RegistrationStatus.CANCELLED:
        return None
    paid = [p for p in ledger.payments_of(uow, registration.id) if p.status in PAID]
    total = sum(p.amount for p in paid)
    if total == 0 or sum(p.amount_refunded for p in paid) < total:
        return None
    if registration.checked_in_at is not None:
        log.info("refunded_registration_checked_in", registration_id=str(registration.id))
        return None
    return registrations.cancel(uow, registration.id, reason="refunded")


def _processing(uow: UnitOfWork, registration_id: uuid.UUID) -> bool:
    return bool(
        uow.session.scalar(
            select(
                exists().where(
                    Payment.registration_id == registration_id,
                    Payment.status == PaymentStatus.PROCESSING,
                )
            )
        )
    )


def _request_refund(uow: UnitOfWork, payment: Payment, *, reason: str, key: str) -> Refund | None:
    try:
        refund, _ = ledger.request_refund(
            uow, payment.id, amount=None, reason=reason, request_key=key
        )
    except Conflict as exc:
        if exc.code == "nothing_to_refund":
            return None
        raise
    return refund
