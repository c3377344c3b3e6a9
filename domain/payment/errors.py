"""Errors of payments and their providers, each with a stable code (docs/payments.md)."""

from __future__ import annotations

from domain.errors import Conflict, DomainError, NotFound


class ProviderUnavailable(DomainError):
    """The provider could not be reached or answered with a server error; retry later (503)."""

    code = "payment_provider_unavailable"


class ProviderRejected(DomainError):
    """The provider refused a request we made (bad credentials, an invalid request) (502)."""

    code = "payment_provider_rejected"


class WebhookRejected(DomainError):
    """A webhook whose signature does not verify, or that cannot be read (400)."""

    code = "invalid_signature"


class UnknownProvider(NotFound):
    code = "unknown_provider"


class UnknownPayment(Conflict):
    """A webhook about a payment not (yet) known here: not recorded, so the provider's retry
    applies it once the payment's creation has committed."""

    code = "unknown_payment"
