"""Events of payments (aggregate ``payment``, key = the payment id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from domain.events import DomainEvent


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


@dataclass(frozen=True, kw_only=True)
class PaymentCreated(_PaymentFact):
    """A payment of a registration was started with its provider (status pending)."""

    event_type = "payment.created"

    amount: int


@dataclass(frozen=True, kw_only=True)
class PaymentCompleted(_PaymentFact):
    """The provider took the money; the registration counts it (once)."""

    event_type = "payment.completed"

    amount: int


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(_PaymentFact):
    """The provider reports the payment failed (``failure_code``: its reason)."""

    event_type = "payment.failed"

    amount: int
    failure_code: str | None = None


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
