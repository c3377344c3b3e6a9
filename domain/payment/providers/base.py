"""The port every payment provider implements, and the facts its webhooks are read into.

A provider turns our requests into its API calls, and its signed webhooks into facts
(``PaymentFact``, ``RefundFact``); the payment service never sees a provider's own format.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from domain.payment.models import PaymentStatus


class RefundOutcome(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class PaymentRequest:
    payment_id: uuid.UUID
    registration_id: uuid.UUID
    tenant_id: uuid.UUID
    amount: int
    currency: str
    description: str
    # Sent as the provider's idempotency key: a retry of the same request creates nothing new.
    idempotency_key: str
    tenant_slug: str | None = None  # the organization's (the sandbox scopes its chaos by it)


@dataclass(frozen=True)
class ProviderPayment:
    reference: str
    status: PaymentStatus  # pending, processing, completed or failed
    checkout_url: str | None = None  # where the payer completes the payment (redirect flows)
    client_secret: str | None = None  # what the payer's client confirms with (Stripe.js flows)


@dataclass(frozen=True)
class RefundRequest:
    refund_id: uuid.UUID
    payment_id: uuid.UUID
    payment_reference: str
    amount: int
    currency: str
    idempotency_key: str


@dataclass(frozen=True)
class ProviderRefund:
    reference: str
    status: RefundOutcome
    failure_code: str | None = None


@dataclass(frozen=True)
class PaymentFact:
    """The provider says: this payment is now ``status``."""

    event_id: str
    payment_reference: str
    status: PaymentStatus  # processing, completed or failed
    payment_id: uuid.UUID | None = None  # ours, when the provider echoes our metadata
    amount: int | None = None
    currency: str | None = None
    failure_code: str | None = None


@dataclass(frozen=True)
class RefundFact:
    """The provider says: this refund of that payment is now ``status``."""

    event_id: str
    payment_reference: str
    refund_reference: str
    amount: int
    status: RefundOutcome
    payment_id: uuid.UUID | None = None
    refund_id: uuid.UUID | None = None
    currency: str | None = None
    failure_code: str | None = None


@dataclass(frozen=True)
class IgnoredFact:
    """A verified event of a type that means nothing to us (acknowledged, not applied)."""

    event_id: str
    type: str


WebhookFact = PaymentFact | RefundFact | IgnoredFact


class SignatureError(Exception):
    """A webhook signature did not verify; ``reason`` is stable (missing, malformed, stale,
    mismatch), the message is for logs."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MalformedWebhook(Exception):
    """A correctly signed body that is not an event we can read."""


@runtime_checkable
class PaymentProvider(Protocol):
    """A payment service provider. Calls raise ``ProviderUnavailable`` (transient: retry) or
    ``ProviderRejected`` (the provider refused the request)."""

    name: str

    def create_payment(self, request: PaymentRequest) -> ProviderPayment: ...

    def refund(self, request: RefundRequest) -> ProviderRefund: ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookFact:
        """Verify the signature first (``SignatureError``), then read the event
        (``MalformedWebhook``)."""
        ...

    def close(self) -> None: ...


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A request header, whatever its case."""
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def uuid_or_none(value: object) -> uuid.UUID | None:
    """Our id echoed back in a provider's metadata, if it is one."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
