"""A local stand-in for api.stripe.com: a real HTTP server speaking the part of Stripe's
documented protocol the adapter uses, so the adapter is tested over the wire.

- ``POST /v1/payment_intents`` and ``POST /v1/refunds``: form-encoded bodies (``metadata[k]``
  for nested keys), ``Authorization: Bearer <secret key>``, JSON answers and Stripe's error
  shape ``{"error": {"type", "code", "message"}}``.
- ``Idempotency-Key``: the same key with the same parameters replays the first answer; with
  other parameters it is a 400 ``idempotency_error``.
- Refunds never exceed what a PaymentIntent received (400 ``amount_too_large``).
- Webhook events as Stripe sends them (``{"id": "evt_...", "object": "event", "type", "data":
  {"object": ...}}``), signed with ``Stripe-Signature: t=...,v1=...`` over ``"{t}.{body}"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


def stripe_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value, computed as Stripe's documentation describes."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``metadata[payment_id]=x`` -> ``{"metadata": {"payment_id": "x"}}`` (one level, as used)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if "[" in key and key.endswith("]"):
            outer, inner = key[:-1].split("[", 1)
            out.setdefault(outer, {})[inner] = value
        else:
            out[key] = value
    return out


class StripeStandIn:
    def __init__(self, api_key: str, webhook_secret: str) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self._idempotent: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self._failures: list[int] = []
        self.refund_status = "succeeded"
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StripeStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, status: int) -> None:
        """Answer the next API request with this status (e.g. 500, 429)."""
        self._failures.append(status)

    # --- what Stripe's side does after the API call --------------------------------------------
    def event(self, type_: str, obj: dict[str, Any]) -> bytes:
        """The body of a webhook event about ``obj``."""
        return json.dumps(
            {
                "id": f"evt_{secrets.token_hex(12)}",
                "object": "event",
                "api_version": "2024-06-20",
                "created": int(time.time()),
                "type": type_,
                "data": {"object": obj},
                "livemode": False,
            }
        ).encode()

    def settle(self, intent_id: str, outcome: str) -> bytes:
        """The payer confirmed: the PaymentIntent ``succeeded`` (or failed); the event body."""
        intent = self.intents[intent_id]
        if outcome == "succeeded":
            intent.update(status="succeeded", amount_received=intent["amount"])
            return self.event("payment_intent.succeeded", intent)
        if outcome == "processing":
            intent["status"] = "processing"
            return self.event("payment_intent.processing", intent)
        intent.update(
            status="requires_payment_method",
            last_payment_error={"type": "card_error", "code": "card_declined",
                                "decline_code": "insufficient_funds"},
        )  # fmt: skip
        return self.event("payment_intent.payment_failed", intent)

    def signed(
        self, body: bytes, *, secret: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_signature(secret or self.webhook_secret, body, timestamp),
        }

    # --- the API ------------------------------------------------------------------------------
    def _create_intent(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            amount = int(form["amount"])
        except (KeyError, ValueError):
            return 400, _error("invalid_request_error", "parameter_missing", "amount")
        currency = form.get("currency", "")
        if amount < 1 or len(currency) != 3 or currency != currency.lower():
            return 400, _error("invalid_request_error", "parameter_invalid", "amount/currency")
        intent_id = f"pi_{secrets.token_hex(12)}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "description": form.get("description"),
            "metadata": form.get("metadata", {}),
            "last_payment_error": None,
        }
        self.intents[intent_id] = intent
        return 200, intent

    def _create_refund(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return 400, _error("invalid_request_error", "resource_missing", "payment_intent")
        if intent["status"] != "succeeded":
            return 400, _error("invalid_request_error", "charge_not_captured", "payment_intent")
        refunded = sum(
            r["amount"]
            for r in self.refunds.values()
            if r["payment_intent"] == intent["id"] and r["status"] != "failed"
        )
        amount = int(form.get("amount", intent["amount_received"] - refunded))
        if amount < 1 or refunded + amount > intent["amount_received"]:
            return 400, _error("invalid_request_error", "amount_too_large", "amount")
        refund = {
            "id": f"re_{secrets.token_hex(12)}",
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": self.refund_status,
            "metadata": form.get("metadata", {}),
        }
        self.refunds[refund["id"]] = refund
        return 200, refund

    def _handle(self, method: str, path: str, headers: Any, raw: bytes) -> tuple[int, dict]:
        form = _nest(parse_qsl(raw.decode(), keep_blank_values=True))
        self.requests.append(
            {"method": method, "path": path, "headers": dict(headers), "form": form}
        )
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, _error("invalid_request_error", "api_key_invalid", "Invalid API Key")
        if headers.get("Content-Type") != "application/x-www-form-urlencoded":
            return 400, _error("invalid_request_error", "invalid_content_type", "form bodies only")
        if self._failures:
            status = self._failures.pop(0)
            return status, _error("api_error", None, "stand-in failure")
        routes: dict[str, Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]] = {
            "/v1/payment_intents": self._create_intent,
            "/v1/refunds": self._create_refund,
        }
        if method != "POST" or path not in routes:
            return 404, _error("invalid_request_error", None, "Unrecognized request URL")
        key = headers.get("Idempotency-Key")
        fingerprint = hashlib.sha256(path.encode() + raw).hexdigest()
        with self._lock:
            if key and key in self._idempotent:
                seen, status, body = self._idempotent[key]
                if seen != fingerprint:
                    return 400, _error("idempotency_error", None, "Keys for idempotent "
                                       "requests can only be used with the same parameters")  # fmt: skip
                return status, body
            status, body = routes[path](form)
            if key:
                self._idempotent[key] = (fingerprint, status, body)
            return status, dict(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, body = standin._handle("POST", self.path, self.headers, raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        return Handler


def _error(type_: str, code: str | None, message: str) -> dict[str, Any]:
    return {"error": {"type": type_, "code": code, "message": message}}
