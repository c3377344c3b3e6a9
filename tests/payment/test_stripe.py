"""The Stripe adapter against a local stand-in for api.stripe.com (tests/payment/stripe_standin.py):
PaymentIntents and Refunds over HTTP, webhooks signed as Stripe signs them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from core.settings import Settings
from domain.payment.errors import ProviderRejected
from domain.payment.providers.base import PaymentRequest
from domain.payment.providers.stripe import StripeProvider
from tests.factories import (
    V1,
    assert_error,
    outbox_rows,
    pay,
    paying,
    payment_now,
    refund,
    registration_now,
)
from tests.payment.conftest import Shop, count_rows
from tests.payment.stripe_standin import StripeStandIn, stripe_signature

API_KEY = "sk_test_standin_4eC39HqLyjWDarjtT1zdp7dc"
SECRET = "whsec_standin_current"
PREVIOUS_SECRET = "whsec_standin_previous"  # still accepted while the endpoint's secret rotates


@pytest.fixture(scope="module")
def standin() -> Iterator[StripeStandIn]:
    server = StripeStandIn(API_KEY, SECRET).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stripe_client(settings: Settings, standin: StripeStandIn) -> Iterator[TestClient]:
    """The API with Stripe enabled (and the default), talking to the stand-in."""
    from api.app import create_app

    app = create_app(
        settings.model_copy(
            update={
                "payment_providers": "stripe,sandbox",
                "stripe_secret_key": SecretStr(API_KEY),
                "stripe_webhook_secret": SecretStr(f"{SECRET},{PREVIOUS_SECRET}"),
                "stripe_api_base": standin.url,
            }
        )
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture
def shop(stripe_client: TestClient, api, admin: dict) -> Shop:
    return Shop(stripe_client, api, admin)


def _webhook(client: TestClient, body: bytes, headers: dict[str, str]):
    return client.post(f"{V1}/webhooks/stripe", content=body, headers=headers)


def _intent(shop: Shop) -> tuple[dict, dict, dict]:
    user, registration = shop.buyer()
    payment = paying(shop.client, registration["id"], user)
    return user, registration, payment


def test_a_payment_intent_is_created_and_confirmed_by_webhook(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn, owner_engine: Engine
) -> None:
    user, registration, payment = _intent(shop)
    assert payment["provider"] == "stripe"
    intent_id = payment["provider_reference"]
    assert intent_id.startswith("pi_")
    assert payment["client_secret"] == standin.intents[intent_id]["client_secret"]
    assert payment["checkout_url"] is None
    # What went over the wire: form-encoded, authenticated, idempotent, with our ids.
    sent = standin.requests[-1]
    assert sent["path"] == "/v1/payment_intents"
    assert sent["form"]["amount"] == "5000"
    assert sent["form"]["currency"] == "eur"
    assert sent["form"]["metadata"]["payment_id"] == payment["id"]
    assert sent["form"]["metadata"]["registration_id"] == registration["id"]
    assert sent["headers"]["Idempotency-Key"].startswith("aqs_")
    assert sent["headers"]["Stripe-Version"]
    # The organizer sees the payment, never the payer's client secret.
    assert payment_now(stripe_client, payment["id"], shop.owner)["client_secret"] is None

    succeeded = standin.settle(intent_id, "succeeded")
    response = _webhook(stripe_client, succeeded, standin.signed(succeeded))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "applied"}
    assert payment_now(stripe_client, payment["id"], user)["status"] == "completed"
    assert registration_now(stripe_client, registration["id"], user)["status"] == "confirmed"
    # Stripe retries: the same event again changes nothing; a late "processing" neither.
    again = _webhook(stripe_client, succeeded, standin.signed(succeeded))
    assert again.json()["outcome"] == "duplicate"
    late = standin.event(
        "payment_intent.processing", {**standin.intents[intent_id], "status": "processing"}
    )
    assert _webhook(stripe_client, late, standin.signed(late)).json()["outcome"] == "unchanged"
    assert payment_now(stripe_client, payment["id"], user)["status"] == "completed"
    assert len(outbox_rows(owner_engine, payment["id"], "payment.completed")) == 1


def test_a_declined_payment_fails(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn
) -> None:
    user, registration, payment = _intent(shop)
    processing = standin.settle(payment["provider_reference"], "processing")
    assert _webhook(stripe_client, processing, standin.signed(processing)).status_code == 200
    assert payment_now(stripe_client, payment["id"], user)["status"] == "processing"
    failed = standin.settle(payment["provider_reference"], "failed")
    assert _webhook(stripe_client, failed, standin.signed(failed)).status_code == 200
    now = payment_now(stripe_client, payment["id"], user)
    assert (now["status"], now["failure_code"]) == ("failed", "insufficient_funds")
    assert registration_now(stripe_client, registration["id"], user)["status"] == "cancelled"


def test_refunds_go_to_stripe_and_settle_at_once_when_it_says_so(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn, owner_engine: Engine
) -> None:
    user, _, payment = _intent(shop)
    succeeded = standin.settle(payment["provider_reference"], "succeeded")
    assert _webhook(stripe_client, succeeded, standin.signed(succeeded)).status_code == 200
    response = refund(stripe_client, payment["id"], shop.owner, amount=2000)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert (body["payment"]["status"], body["payment"]["amount_refunded"]) == (
        "partially_refunded",
        2000,
    )
    sent = standin.requests[-1]
    assert sent["path"] == "/v1/refunds"
    assert sent["form"]["payment_intent"] == payment["provider_reference"]
    assert sent["form"]["amount"] == "2000"
    assert sent["form"]["metadata"]["refund_id"] == body["id"]
    # Stripe's refund.updated for the same refund afterwards changes nothing.
    stripe_refund = next(
        r for r in standin.refunds.values() if r["metadata"]["refund_id"] == body["id"]
    )
    updated = standin.event("refund.updated", stripe_refund)
    assert (
        _webhook(stripe_client, updated, standin.signed(updated)).json()["outcome"] == "unchanged"
    )
    assert payment_now(stripe_client, payment["id"], user)["amount_refunded"] == 2000
    assert len(outbox_rows(owner_engine, payment["id"], "payment.refunded")) == 1


def test_a_refund_made_in_the_stripe_dashboard_is_recorded(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn
) -> None:
    user, registration, payment = _intent(shop)
    succeeded = standin.settle(payment["provider_reference"], "succeeded")
    _webhook(stripe_client, succeeded, standin.signed(succeeded))
    dashboard_refund = {
        "id": "re_dashboard_" + uuid.uuid4().hex[:8],
        "object": "refund",
        "amount": 5000,
        "currency": "eur",
        "payment_intent": payment["provider_reference"],
        "status": "succeeded",
        "metadata": {},
    }
    body = standin.event("refund.created", dashboard_refund)
    assert _webhook(stripe_client, body, standin.signed(body)).json()["outcome"] == "applied"
    now = payment_now(stripe_client, payment["id"], user)
    assert (now["status"], now["amount_refunded"]) == ("refunded", 5000)
    assert [(r["reason"], r["amount"]) for r in now["refunds"]] == [("provider", 5000)]
    assert registration_now(stripe_client, registration["id"], user)["status"] == "cancelled"


# --- signatures ---------------------------------------------------------------------------------


def _signature_cases(body: bytes) -> dict[str, tuple[bytes, dict[str, str], str | None]]:
    """name -> (body sent, headers, expected rejection reason or None for accepted)."""
    now = int(time.time())
    good = stripe_signature(SECRET, body, now)
    other = stripe_signature("whsec_somebody_else", body, now)
    json_headers = {"Content-Type": "application/json"}
    return {
        "valid": (body, {**json_headers, "Stripe-Signature": good}, None),
        "previous secret while rotating": (
            body,
            {**json_headers, "Stripe-Signature": stripe_signature(PREVIOUS_SECRET, body, now)},
            None,
        ),
        "several v1, one valid": (
            body,
            {**json_headers, "Stripe-Signature": f"{other},v1={good.split('v1=')[1]},v0=abc"},
            None,
        ),
        "tampered body": (
            body.replace(b'"amount": 5000', b'"amount": 1'),
            {**json_headers, "Stripe-Signature": good},
            "mismatch",
        ),
        "stale timestamp": (
            body,
            {**json_headers, "Stripe-Signature": stripe_signature(SECRET, body, now - 301)},
            "stale",
        ),
        "wrong secret": (body, {**json_headers, "Stripe-Signature": other}, "mismatch"),
        "no header": (body, json_headers, "missing"),
        "no v1": (body, {**json_headers, "Stripe-Signature": f"t={now},v0=abc"}, "malformed"),
    }


def test_stripe_signatures_are_verified_before_anything_changes(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn
) -> None:
    user, _, payment = _intent(shop)
    cases = _signature_cases(standin.settle(payment["provider_reference"], "succeeded"))
    # Rejections first: each is a 400 with the reason, and the payment stays pending.
    for name, (body, headers, reason) in sorted(cases.items(), key=lambda c: c[1][2] is None):
        response = _webhook(stripe_client, body, headers)
        if reason is None:
            assert response.status_code == 200, f"{name}: {response.text}"
            continue
        error = assert_error(response, 400, "invalid_signature")
        assert error["details"] == {"reason": reason}, name
        assert payment_now(stripe_client, payment["id"], user)["status"] == "pending", name
    assert payment_now(stripe_client, payment["id"], user)["status"] == "completed"


def test_every_signature_case_of_a_fresh_payment_changes_nothing(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn, owner_engine: Engine
) -> None:
    """Rejected deliveries write nothing: no inbox row, no outbox event, no state."""
    user, _, payment = _intent(shop)
    before = count_rows(owner_engine, "SELECT count(*) FROM inbox")
    body = standin.settle(payment["provider_reference"], "succeeded")
    for name, (sent, headers, reason) in _signature_cases(body).items():
        if reason is not None:
            assert _webhook(stripe_client, sent, headers).status_code == 400, name
    assert count_rows(owner_engine, "SELECT count(*) FROM inbox") == before
    assert outbox_rows(owner_engine, payment["id"], "payment.completed") == []
    assert payment_now(stripe_client, payment["id"], user)["status"] == "pending"


# --- a provider in trouble ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_an_unavailable_stripe_answers_503_and_nothing_is_written(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn, owner_engine: Engine, status: int
) -> None:
    user, registration = shop.buyer()
    standin.fail_next(status)
    response = pay(stripe_client, registration["id"], user)
    error = assert_error(response, 503, "payment_provider_unavailable")
    assert error["details"]["provider_status"] == status
    assert response.headers["Retry-After"]
    assert (
        count_rows(
            owner_engine,
            "SELECT count(*) FROM payments WHERE registration_id = :r",
            r=registration["id"],
        )
        == 0
    )
    # The same registration pays once Stripe is back.
    assert pay(stripe_client, registration["id"], user).status_code == 201


def test_stripe_refusing_our_credentials_is_a_502(
    stripe_client: TestClient, shop: Shop, standin: StripeStandIn, monkeypatch
) -> None:
    user, registration = shop.buyer()
    provider = stripe_client.app.state.payments.providers.get("stripe")
    monkeypatch.setitem(provider._http.headers, "Authorization", "Bearer sk_test_revoked")
    error = assert_error(
        pay(stripe_client, registration["id"], user), 502, "payment_provider_rejected"
    )
    assert error["details"]["provider_code"] == "api_key_invalid"


def test_the_same_idempotency_key_reaches_the_same_intent(standin: StripeStandIn) -> None:
    provider = StripeProvider(api_key=API_KEY, webhook_secrets=[SECRET], base_url=standin.url)
    request = PaymentRequest(
        payment_id=uuid.uuid4(),
        registration_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        amount=1234,
        currency="EUR",
        description="retry",
        idempotency_key=f"aqs_{uuid.uuid4().hex}",
    )
    try:
        first = provider.create_payment(request)
        assert provider.create_payment(request).reference == first.reference
        with pytest.raises(ProviderRejected):  # the same key for another amount
            provider.create_payment(PaymentRequest(**{**request.__dict__, "amount": 999}))
    finally:
        provider.close()
