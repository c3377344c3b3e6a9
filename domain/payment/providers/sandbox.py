"""The sandbox: a built-in payment provider that behaves like a real one, with no money moving.

Like a real PSP it hands out a checkout URL, confirms asynchronously (a ``payment.processing``
and then a ``payment.succeeded`` or ``payment.failed`` webhook after ``delay_s``), refunds
asynchronously (``refund.succeeded``), signs every delivery (``Sandbox-Signature``, the
timestamped HMAC scheme of ``signing``), and retries deliveries that are not answered 2xx.
Chaos on demand: a share of payments fails (``failure_rate``), a share of deliveries arrives
twice (``duplicate_rate``), a share of payments has its webhooks delivered out of order
(``reorder_rate``); tests script outcomes and deliver in any order they like.

Its state lives in the memory of the process that made the payments (the API process); the
``PaymentWorkers`` of that process deliver its webhooks over HTTP. Tests call ``deliver_due``
or ``deliver_all`` with a sender of their own instead, deterministically.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import random
import secrets
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.settings import Settings
from domain.payment.errors import ProviderRejected
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

SIGNATURE_HEADER = "Sandbox-Signature"
MAX_ATTEMPTS = 8  # then a delivery is given up, as a PSP gives up after days of retries
KEEP_SENT = 10_000  # delivered events kept for redelivery, the oldest forgotten first

# A sender posts one delivery and answers the HTTP status (0 when nothing answered).
Sender = Callable[[bytes, dict[str, str]], int]


@dataclass
class _Payment:
    reference: str
    payment_id: uuid.UUID
    amount: int
    currency: str
    outcome: str  # "succeeded" or "failed", decided when the payment is made
    refunded: int = 0


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    type: str = field(compare=False)
    body: bytes = field(compare=False)
    attempts: int = field(default=0, compare=False)


class SandboxProvider:
    name = "sandbox"

    def __init__(
        self,
        *,
        secret: str,
        delay_s: float = 2.0,
        failure_rate: float = 0.0,
        failure_scope: str | None = None,
        duplicate_rate: float = 0.0,
        reorder_rate: float = 0.0,
        tolerance_s: int = 300,
        checkout_base_url: str = "http://127.0.0.1:8000/sandbox/checkout",
        webhook_url: str | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.delay_s = delay_s
        self.failure_rate = failure_rate
        # Organization slug prefix the failure rate applies to (None: every organization).
        self.failure_scope = failure_scope
        self.duplicate_rate = duplicate_rate
        self.reorder_rate = reorder_rate
        self.tolerance_s = tolerance_s
        self.checkout_base_url = checkout_base_url.rstrip("/")
        self.webhook_url = webhook_url
        self._rng = rng or random.Random()
        self._clock = clock
        self._lock = threading.Lock()
        self._payments: dict[str, _Payment] = {}
        self._payment_keys: dict[str, str] = {}
        self._refund_keys: dict[str, ProviderRefund] = {}
        self._queue: list[Delivery] = []
        self._sent: OrderedDict[str, Delivery] = OrderedDict()
        self._seq = itertools.count()
        self._scripted: deque[str] = deque()

    # --- the PSP's API ----------------------------------------------------------------------
    def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        with self._lock:
            known = self._payment_keys.get(request.idempotency_key)
            if known is not None:
                payment = self._payments[known]
                if (payment.amount, payment.currency) != (request.amount, request.currency):
                    raise ProviderRejected(
                        "The idempotency key was used for another payment",
                        details={"provider_code": "idempotency_key_reused"},
                    )
                return self._view(payment)
            if self._scripted:
                outcome = self._scripted.popleft()
            elif self._in_scope(request) and self._rng.random() < self.failure_rate:
                outcome = "failed"
            else:
                outcome = "succeeded"
            payment = _Payment(
                reference=self._reference(
                    request.payment_id, request.amount, request.currency, outcome
                ),
                payment_id=request.payment_id,
                amount=request.amount,
                currency=request.currency,
                outcome=outcome,
            )
            self._payments[payment.reference] = payment
            self._payment_keys[request.idempotency_key] = payment.reference
            obj = self._payment_object(payment)
            now = self._clock()
            types = ["payment.processing", f"payment.{outcome}"]
            dues = [now + self.delay_s / 2, now + self.delay_s]
            if self._rng.random() < self.reorder_rate:
                dues.reverse()
            for type_, due in zip(types, dues, strict=True):
                self._enqueue(type_, {**obj, "status": type_.split(".")[1]}, due)
            return self._view(payment)

    def refund(self, request: RefundRequest) -> ProviderRefund:
        with self._lock:
            known = self._refund_keys.get(request.idempotency_key)
            if known is not None:
                return known
            payment = self._known(request.payment_reference)
            if payment is None:
                raise ProviderRejected(
                    "No such sandbox payment", details={"provider_code": "resource_missing"}
                )
            if payment.outcome != "succeeded":
                raise ProviderRejected(
                    "The payment was not captured", details={"provider_code": "not_captured"}
                )
            if payment.refunded + request.amount > payment.amount:
                raise ProviderRejected(
                    "The refund exceeds the unrefunded amount",
                    details={"provider_code": "amount_too_large"},
                )
            payment.refunded += request.amount
            refund = ProviderRefund(f"sbx_re_{secrets.token_hex(12)}", RefundOutcome.PENDING)
            self._refund_keys[request.idempotency_key] = refund
            self._enqueue(
                "refund.succeeded",
                {
                    "object": "refund",
                    "id": refund.reference,
                    "payment": payment.reference,
                    "amount": request.amount,
                    "currency": request.currency,
                    "status": "succeeded",
                    "metadata": {
                        "payment_id": str(request.payment_id),
                        "refund_id": str(request.refund_id),
                    },
                },
                self._clock() + self.delay_s,
            )
            return refund

    def close(self) -> None:
        return None

    # --- webhooks, our side -----------------------------------------------------------------
    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookFact:
        signing.verify(
            header_value(headers, SIGNATURE_HEADER),
            body,
            [self.secret],
            tolerance_s=self.tolerance_s,
        )
        try:
            event = json.loads(body)
            event_id, type_, obj = event["id"], event["type"], event["data"]["object"]
            if not isinstance(event_id, str) or not event_id:
                raise TypeError("id")
            metadata = obj.get("metadata") or {}
            if type_ in _PAYMENT_STATUS:
                return PaymentFact(
                    event_id=event_id,
                    payment_reference=obj["id"],
                    status=_PAYMENT_STATUS[type_],
                    payment_id=uuid_or_none(metadata.get("payment_id")),
                    amount=int(obj["amount"]),
                    currency=obj.get("currency"),
                    failure_code=obj.get("failure_code"),
                )
            if type_ in _REFUND_STATUS:
                return RefundFact(
                    event_id=event_id,
                    payment_reference=obj["payment"],
                    refund_reference=obj["id"],
                    amount=int(obj["amount"]),
                    status=_REFUND_STATUS[type_],
                    payment_id=uuid_or_none(metadata.get("payment_id")),
                    refund_id=uuid_or_none(metadata.get("refund_id")),
                    currency=obj.get("currency"),
                    failure_code=obj.get("failure_code"),
                )
            return IgnoredFact(event_id=event_id, type=str(type_))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedWebhook(f"not a sandbox event: {exc}") from None

    # --- delivering webhooks ----------------------------------------------------------------
    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers a delivery of ``body`` carries."""
        ts = int(self._clock()) if timestamp is None else timestamp
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signing.header(self.secret, body, ts),
        }

    def pending(self) -> list[Delivery]:
        """Deliveries not yet made, in due order."""
        with self._lock:
            return sorted(self._queue)

    def deliver_due(self, send: Sender, now: float | None = None) -> int:
        """Deliver every delivery due by ``now``; failed ones are retried later with backoff.
        Answers how many were answered 2xx."""
        now = self._clock() if now is None else now
        with self._lock:
            due = []
            while self._queue and self._queue[0].due <= now:
                due.append(heapq.heappop(self._queue))
        return sum(self._send(d, send) for d in due)

    def deliver_all(
        self, send: Sender, *, reverse: bool = False, duplicate: bool = False
    ) -> list[int]:
        """Deliver everything pending at once, in due order or ``reverse``d, each twice if
        ``duplicate``: out-of-order and duplicate deliveries on demand. Answers the statuses."""
        with self._lock:
            batch, self._queue = sorted(self._queue), []
        if reverse:
            batch.reverse()
        statuses = []
        for delivery in batch:
            for _ in range(2 if duplicate else 1):
                statuses.append(self._post(delivery, send))
        return statuses

    def redeliver(self, event_id: str, send: Sender) -> int:
        """Send an already delivered event again (a PSP dashboard's "resend")."""
        return self._post(self._sent[event_id], send)

    def checkout(self, reference: str) -> dict[str, Any] | None:
        """What the checkout page of a payment shows."""
        with self._lock:
            payment = self._known(reference)
        if payment is None:
            return None
        return {
            "reference": payment.reference,
            "amount": payment.amount,
            "currency": payment.currency,
            "delay_s": self.delay_s,
        }

    def script(self, *outcomes: str) -> None:
        """The outcomes ("succeeded" or "failed") of the next payments, in order."""
        for outcome in outcomes:
            if outcome not in ("succeeded", "failed"):
                raise ValueError(outcome)
        with self._lock:
            self._scripted.extend(outcomes)

    # --- internals --------------------------------------------------------------------------
    def _in_scope(self, request: PaymentRequest) -> bool:
        return self.failure_scope is None or (request.tenant_slug or "").startswith(
            self.failure_scope
        )

    # A reference carries what the sandbox must know of its payment, signed with its secret:
    # any process with the same secret (the API, the stream worker) can then refund a payment
    # another one made, or show its checkout page, as one PSP account would. Refunds are also
    # capped by the platform's own ledger (docs/payments.md).
    def _reference(self, payment_id: uuid.UUID, amount: int, currency: str, outcome: str) -> str:
        body = f"sbx_pay_{secrets.token_hex(6)}_{payment_id.hex}_{amount}_{currency}_{outcome[0]}"
        return f"{body}_{self._mac(body)}"

    def _mac(self, body: str) -> str:
        return hmac.new(self.secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:32]

    def _known(self, reference: str) -> _Payment | None:
        """The payment this process made, or one another process made (from its reference)."""
        payment = self._payments.get(reference)
        if payment is not None:
            return payment
        body, _, mac = reference.rpartition("_")
        parts = body.split("_")
        if len(parts) != 7 or parts[:2] != ["sbx", "pay"]:
            return None
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payment = _Payment(
                reference=reference,
                payment_id=uuid.UUID(hex=parts[3]),
                amount=int(parts[4]),
                currency=parts[5],
                outcome={"s": "succeeded", "f": "failed"}[parts[6]],
            )
        except (ValueError, KeyError):
            return None
        self._payments[reference] = payment
        return payment

    def _view(self, payment: _Payment) -> ProviderPayment:
        return ProviderPayment(
            reference=payment.reference,
            status=PaymentStatus.PENDING,
            checkout_url=f"{self.checkout_base_url}/{payment.reference}",
        )

    def _payment_object(self, payment: _Payment) -> dict[str, Any]:
        return {
            "object": "payment",
            "id": payment.reference,
            "amount": payment.amount,
            "currency": payment.currency,
            "metadata": {"payment_id": str(payment.payment_id)},
            "failure_code": "card_declined" if payment.outcome == "failed" else None,
        }

    def _enqueue(self, type_: str, obj: dict[str, Any], due: float) -> None:
        event_id = f"evt_sbx_{secrets.token_hex(12)}"
        body = json.dumps(
            {"id": event_id, "type": type_, "created": int(self._clock()), "data": {"object": obj}}
        ).encode()
        heapq.heappush(self._queue, Delivery(due, next(self._seq), event_id, type_, body))
        if self._rng.random() < self.duplicate_rate:
            heapq.heappush(
                self._queue, Delivery(due + 0.05, next(self._seq), event_id, type_, body)
            )

    def _post(self, delivery: Delivery, send: Sender) -> int:
        with self._lock:
            self._sent[delivery.event_id] = delivery
            if len(self._sent) > KEEP_SENT:
                self._sent.popitem(last=False)
        try:
            return send(delivery.body, self.sign(delivery.body))
        except Exception:  # a sender that could not reach the endpoint: not answered
            return 0

    def _send(self, delivery: Delivery, send: Sender) -> bool:
        status = self._post(delivery, send)
        if 200 <= status < 300:
            return True
        delivery.attempts += 1
        if delivery.attempts < MAX_ATTEMPTS:
            delivery.due = self._clock() + min(2**delivery.attempts, 300)
            with self._lock:
                heapq.heappush(self._queue, delivery)
        return False


_PAYMENT_STATUS = {
    "payment.processing": PaymentStatus.PROCESSING,
    "payment.succeeded": PaymentStatus.COMPLETED,
    "payment.failed": PaymentStatus.FAILED,
}
_REFUND_STATUS = {
    "refund.pending": RefundOutcome.PENDING,
    "refund.succeeded": RefundOutcome.SUCCEEDED,
    "refund.failed": RefundOutcome.FAILED,
}


def webhook_url(settings: Settings) -> str:
    """Where the sandbox delivers: the setting, else this API's own webhook endpoint."""
    if settings.payment_sandbox_webhook_url:
        return settings.payment_sandbox_webhook_url
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    return f"http://{host}:{settings.api_port}/api/v1/webhooks/sandbox"


@register("sandbox")
def build(settings: Settings) -> SandboxProvider:
    return SandboxProvider(
        secret=settings.payment_sandbox_secret.get_secret_value(),
        delay_s=settings.payment_sandbox_delay_s,
        failure_rate=settings.payment_sandbox_failure_rate,
        failure_scope=settings.payment_sandbox_failure_scope,
        duplicate_rate=settings.payment_sandbox_duplicate_rate,
        reorder_rate=settings.payment_sandbox_reorder_rate,
        tolerance_s=settings.payment_webhook_tolerance_s,
        checkout_base_url=f"{settings.api_base_url}/sandbox/checkout",
        webhook_url=webhook_url(settings),
    )
