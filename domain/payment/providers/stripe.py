"""Stripe: PaymentIntents and Refunds over its REST API (form-encoded requests, JSON answers,
``Idempotency-Key``), and webhooks verified by the documented ``Stripe-Signature`` scheme
(``signing``: ``t=...,v1=...`` over ``"{t}.{raw body}"``, HMAC-SHA256 with the endpoint's
signing secret, one or more ``v1`` values, a timestamp tolerance).

The payer confirms a PaymentIntent with Stripe.js using its ``client_secret``; Stripe then
reports the outcome by webhook: ``payment_intent.processing``, ``.succeeded``, ``.payment_failed``,
``.canceled``, and ``refund.created`` / ``refund.updated`` / ``refund.failed`` for refunds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from core.settings import Settings
from domain.payment.errors import ProviderRejected, ProviderUnavailable
from domain.payment.models import PaymentStatus
from domain.payment.providers import register, signing
from domain.payment.providers.base import (
    IgnoredFact,
    MalformedWebhook,
    PaymentFact,
    PaymentRequest,
    ProviderPayment,
    ProviderRefund,
    RefundFact,
    RefundOutcome,
    RefundRequest,
    WebhookFact,
    header_value,
    uuid_or_none,
)

SIGNATURE_HEADER = "Stripe-Signature"
API_VERSION = "2024-06-20"

# PaymentIntent.status -> ours. Waiting for the payer is pending; requires_capture (funds held)
# is still processing to us: the payment completes when Stripe captures.
_INTENT_STATUS = {
    "requires_payment_method": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
    "requires_action": PaymentStatus.PENDING,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.PROCESSING,
    "succeeded": PaymentStatus.COMPLETED,
    "canceled": PaymentStatus.FAILED,
}
_INTENT_EVENTS = {
    "payment_intent.processing": PaymentStatus.PROCESSING,
    "payment_intent.succeeded": PaymentStatus.COMPLETED,
    "payment_intent.payment_failed": PaymentStatus.FAILED,
    "payment_intent.canceled": PaymentStatus.FAILED,
}
_REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed"}
_REFUND_STATUS = {
    "pending": RefundOutcome.PENDING,
    "requires_action": RefundOutcome.PENDING,
    "succeeded": RefundOutcome.SUCCEEDED,
    "failed": RefundOutcome.FAILED,
    "canceled": RefundOutcome.FAILED,
}


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secrets: list[str],
        base_url: str = "https://api.stripe.com",
        timeout_s: float = 10.0,
        tolerance_s: int = 300,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.webhook_secrets = webhook_secrets
        self.tolerance_s = tolerance_s
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {api_key}", "Stripe-Version": API_VERSION},
            transport=transport,
        )

    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        intent = self._post(
            "/v1/payment_intents",
            {
                "amount": str(request.amount),
                "currency": request.currency.lower(),
                "description": request.description,
                "automatic_payment_methods[enabled]": "true",
                "metadata[payment_id]": str(request.payment_id),
                "metadata[registration_id]": str(request.registration_id),
                "metadata[tenant_id]": str(request.tenant_id),
            },
            request.idempotency_key,
        )
        status = _INTENT_STATUS.get(str(intent.get("status")))
        if not isinstance(intent.get("id"), str) or status is None:
            raise ProviderRejected("Stripe answered with an unexpected PaymentIntent")
        return ProviderPayment(
            reference=intent["id"], status=status, client_secret=intent.get("client_secret")
        )

    def refund(self, request: RefundRequest) -> ProviderRefund:
        refund = self._post(
            "/v1/refunds",
            {
                "payment_intent": request.payment_reference,
                "amount": str(request.amount),
                "metadata[payment_id]": str(request.payment_id),
                "metadata[refund_id]": str(request.refund_id),
            },
            request.idempotency_key,
        )
        status = _REFUND_STATUS.get(str(refund.get("status")))
        if not isinstance(refund.get("id"), str) or status is None:
            raise ProviderRejected("Stripe answered with an unexpected Refund")
        return ProviderRefund(refund["id"], status, refund.get("failure_reason"))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookFact:
        signing.verify(
            header_value(headers, SIGNATURE_HEADER),
            body,
            self.webhook_secrets,
            tolerance_s=self.tolerance_s,
        )
        try:
            event = json.loads(body)
            event_id, type_, obj = event["id"], event["type"], event["data"]["object"]
            if not isinstance(event_id, str) or not event_id:
                raise TypeError("id")
            metadata = obj.get("metadata") or {}
            if type_ in _INTENT_EVENTS:
                error = obj.get("last_payment_error") or {}
                code = error.get("decline_code") or error.get("code")
                if type_ == "payment_intent.canceled":
                    code = obj.get("cancellation_reason") or "canceled"
                return PaymentFact(
                    event_id=event_id,
                    payment_reference=obj["id"],
                    status=_INTENT_EVENTS[type_],
                    payment_id=uuid_or_none(metadata.get("payment_id")),
                    amount=int(obj.get("amount_received") or obj["amount"]),
                    currency=str(obj.get("currency", "")).upper() or None,
                    failure_code=code,
                )
            if type_ in _REFUND_EVENTS:
                status = _REFUND_STATUS.get(obj["status"])
                if status is None:
                    raise KeyError(f"refund status {obj['status']}")
                return RefundFact(
                    event_id=event_id,
                    payment_reference=obj["payment_intent"],
                    refund_reference=obj["id"],
                    amount=int(obj["amount"]),
                    status=status,
                    payment_id=uuid_or_none(metadata.get("payment_id")),
                    refund_id=uuid_or_none(metadata.get("refund_id")),
                    currency=str(obj.get("currency", "")).upper() or None,
                    failure_code=obj.get("failure_reason"),
                )
            return IgnoredFact(event_id=event_id, type=str(type_))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedWebhook(f"not a Stripe event: {exc}") from None

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, form: dict[str, str], idempotency_key: str) -> dict[str, Any]:
        try:
            response = self._http.post(
                path, data=form, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                "Stripe could not be reached", details={"provider": self.name}
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        details = {
            "provider": self.name,
            "provider_status": response.status_code,
            "provider_code": (error or {}).get("code") or (error or {}).get("type"),
        }
        # 409: the same idempotency key is still being processed by Stripe; retry.
        if response.status_code in (409, 429) or response.status_code >= 500:
            raise ProviderUnavailable("Stripe is unavailable; retry shortly", details=details)
        if response.status_code >= 400 or not isinstance(body, dict):
            raise ProviderRejected("Stripe refused the request", details=details)
        return body


@register("stripe")
def build(settings: Settings) -> StripeProvider:
    if settings.stripe_secret_key is None or settings.stripe_webhook_secret is None:
        raise ValueError(
            "stripe needs AQSTREAM_STRIPE_SECRET_KEY and AQSTREAM_STRIPE_WEBHOOK_SECRET"
        )
    return StripeProvider(
        api_key=settings.stripe_secret_key.get_secret_value(),
        webhook_secrets=[
            s.strip()
            for s in settings.stripe_webhook_secret.get_secret_value().split(",")
            if s.strip()
        ],
        base_url=settings.stripe_api_base,
        timeout_s=settings.payment_provider_timeout_s,
        tolerance_s=settings.payment_webhook_tolerance_s,
    )
