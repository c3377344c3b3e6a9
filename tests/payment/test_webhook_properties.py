"""Property: whatever the order of a provider's webhooks, however often each arrives, a payment
ends in the state the provider's history implies, refunds never exceed what was paid, and each
fact counts once (the registration's amount_paid, the outbox events).

Hypothesis draws a provider-side history that a real provider could have (the payment succeeds
or fails; after success, refunds that succeed or fail, in total at most the amount), turns it
into the sandbox's signed events, then delivers them shuffled and with duplicates."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from tests.factories import V1, paying, registration_now, sandbox
from tests.payment.conftest import Shop

PRICE = 5000
STATES = {"completed", "failed", "partially_refunded", "refunded"}


@dataclass
class History:
    """What happened at the provider."""

    succeeded: bool
    refunds: list[tuple[int, bool]] = field(default_factory=list)  # (amount, succeeded)

    @property
    def refunded(self) -> int:
        return sum(amount for amount, ok in self.refunds if ok)

    @property
    def status(self) -> str:
        if not self.succeeded:
            return "failed"
        if self.refunded == 0:
            return "completed"
        return "refunded" if self.refunded == PRICE else "partially_refunded"


@st.composite
def histories(draw) -> History:
    if not draw(st.booleans()):
        return History(succeeded=False)
    refunds, left = [], PRICE
    for _ in range(draw(st.integers(0, 3))):
        if left == 0:
            break
        ok = draw(st.booleans())
        amount = draw(st.integers(1, left))
        if ok:
            left -= amount
        refunds.append((amount, ok))
    if draw(st.booleans()) and left:  # sometimes everything goes back
        refunds.append((left, True))
    return History(succeeded=True, refunds=refunds)


def _event(type_: str, obj: dict) -> bytes:
    return json.dumps(
        {"id": f"evt_sbx_{secrets.token_hex(10)}", "type": type_, "data": {"object": obj}}
    ).encode()


def _events(history: History, reference: str, payment_id: str) -> list[bytes]:
    """The signed-to-be bodies the provider sends for ``history`` (each event once)."""
    payment = {"object": "payment", "id": reference, "amount": PRICE, "currency": "EUR",
               "metadata": {"payment_id": payment_id}}  # fmt: skip
    bodies = [_event("payment.processing", {**payment, "status": "processing"})]
    if not history.succeeded:
        return [*bodies, _event("payment.failed", {**payment, "failure_code": "card_declined"})]
    bodies.append(_event("payment.succeeded", {**payment, "status": "succeeded"}))
    for amount, ok in history.refunds:
        refund = {"object": "refund", "id": f"sbx_re_{secrets.token_hex(8)}",
                  "payment": reference, "amount": amount, "currency": "EUR"}  # fmt: skip
        bodies.append(_event("refund.pending", {**refund, "status": "pending"}))
        bodies.append(_event(f"refund.{'succeeded' if ok else 'failed'}", refund))
    return bodies


@pytest.fixture(scope="module")
def property_shop(client: TestClient, api, admin: dict) -> Shop:
    shop = Shop(client, api, admin)
    shop.full = shop.ticket_type(shop.event_id, name="Many", capacity=1000, price_amount=PRICE)
    return shop


def _outbox(engine: Engine, aggregate_id: str) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_type, payload FROM outbox WHERE aggregate_id = :id ORDER BY id"),
            {"id": aggregate_id},
        )
        return [(r[0], r[1]) for r in rows]


@given(history=histories(), data=st.data())
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_delivery_order_ends_in_the_providers_truth(
    client: TestClient, property_shop: Shop, owner_engine: Engine, history: History, data
) -> None:
    shop = property_shop
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    box = sandbox(client)
    box.deliver_all(lambda body, headers: 200)  # the sandbox's own story is replaced by ours
    bodies = _events(history, payment["provider_reference"], payment["id"])
    order = data.draw(st.permutations(bodies), label="order")
    repeats = data.draw(st.lists(st.sampled_from(bodies), max_size=6), label="repeats")
    deliveries = list(order)
    for body in repeats:
        deliveries.insert(data.draw(st.integers(0, len(deliveries)), label="at"), body)

    outcomes = []
    for body in deliveries:
        response = client.post(f"{V1}/webhooks/sandbox", content=body, headers=box.sign(body))
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["outcome"])
    assert outcomes.count("duplicate") == len(repeats)

    now = client.get(f"{V1}/payments/{payment['id']}", headers=shop.owner["headers"]).json()
    assert now["status"] in STATES
    assert now["status"] == history.status
    assert 0 <= now["amount_refunded"] <= now["amount"] == PRICE
    assert now["amount_refunded"] == history.refunded
    assert sorted((r["amount"], r["status"]) for r in now["refunds"]) == sorted(
        (amount, "succeeded" if ok else "failed") for amount, ok in history.refunds
    )
    events = _outbox(owner_engine, payment["id"])
    kinds = [kind for kind, _ in events]
    assert kinds.count("payment.completed") == int(history.succeeded)
    assert kinds.count("payment.failed") == int(not history.succeeded)
    refunded = [p for kind, p in events if kind == "payment.refunded"]
    assert sorted(p["amount"] for p in refunded) == sorted(a for a, ok in history.refunds if ok)

    registration = registration_now(client, registration["id"], user)
    confirmations = _outbox(owner_engine, registration["id"])
    assert [k for k, _ in confirmations].count("registration.confirmed") == int(history.succeeded)
    if not history.succeeded:
        assert (registration["status"], registration["amount_paid"]) == ("cancelled", 0)
    else:
        assert registration["amount_paid"] == PRICE  # counted once, however often it came
        expected = "cancelled" if history.status == "refunded" else "confirmed"
        assert registration["status"] == expected
