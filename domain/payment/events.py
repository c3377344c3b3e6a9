"""Events of payments (aggregate ``payment``, key = the payment id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from domain.events import DomainEvent
from domain.payment.models import PaymentStatus

if TYPE_CHECKING:
    from domain.payment.models import Payment, Refund
    from domain.registration.models import Registration


@dataclass(frozen=True, kw_only=True)
class _PaymentFact(DomainEvent):
    aggregate_type = "payment"

    payment_id: uuid.UUID
    registration_id: uuid.UUID
    event_id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    purpose: str
    currency: str
    # added to v1 (analytics by ticket type): absent in records written before it
    ticket_type_id: uuid.UUID | None = field(default=None, metadata={"added": True})


def _about(payment: Payment, registration: Registration | None) -> dict[str, Any]:
    """The fields every payment event has (``registration``: the payment's, for its ticket type;
    None where it cannot be read)."""
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


@dataclass(frozen=True, kw_only=True)
class PaymentCreated(_PaymentFact):
    """A payment of a registration was started with its provider (status pending)."""

    event_type = "payment.created"

    amount: int

    @classmethod
    def of(cls, payment: Payment, registration: Registration | None) -> Self:
        return cls(**_about(payment, registration), amount=payment.amount)


@dataclass(frozen=True, kw_only=True)
class PaymentCompleted(_PaymentFact):
    """The provider took the money; the registration counts it (once)."""

    event_type = "payment.completed"

    amount: int

    @classmethod
    def of(cls, payment: Payment, registration: Registration | None) -> Self:
        return cls(**_about(payment, registration), amount=payment.amount)


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(_PaymentFact):
    """The provider reports the payment failed (``failure_code``: its reason)."""

    event_type = "payment.failed"

    amount: int
    failure_code: str | None = None

    @classmethod
    def of(cls, payment: Payment, registration: Registration | None) -> Self:
        return cls(
            **_about(payment, registration),
            amount=payment.amount,
            failure_code=payment.failure_code,
        )


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(_PaymentFact):
    """A refund succeeded: ``amount`` went back (``refund_id``), ``amount_refunded`` of
    ``payment_amount`` in all; ``partial`` while some of the payment is kept."""

    event_type = "payment.refunded"

    refund_id: uuid.UUID
    amount: int
    amount_refunded: int
    payment_amount: int
    partial: bool
    reason: str

    @classmethod
    def of(cls, payment: Payment, registration: Registration | None, refund: Refund) -> Self:
        return cls(
            **_about(payment, registration),
            refund_id=refund.id,
            amount=refund.amount,
            amount_refunded=payment.amount_refunded,
            payment_amount=payment.amount,
            partial=payment.status == PaymentStatus.PARTIALLY_REFUNDED,
            reason=refund.reason,
        )
