"""Signed but impossible reports from a payment provider (issue L, findings 11 and 12): a refund
larger than what is left of the payment is refused and stored nowhere; a success for another
amount or currency does not make the payment paid and is flagged for the organizer."""

from __future__ import annotations

import json
import secrets

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import V1, paying, refund, sandbox
from tests.payment.conftest import Shop, count_rows


def _event(type_: str, obj: dict) -> bytes:
    return json.dumps(
        {"id": f"evt_sbx_{secrets.token_hex(10)}", "type": type_, "data": {"object": obj}}
    ).encode()


def _deliver(client: TestClient, body: bytes):
    return client.post(f"{V1}/webhooks/sandbox", content=body, headers=sandbox(client).sign(body))


def _paid(client: TestClient, shop: Shop) -> dict:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    sandbox(client).deliver_all(lambda body, headers: 200)  # its own story is replaced by ours
    succeeded = {"object": "payment", "id": payment["provider_reference"], "amount": 5000,
                 "currency": "EUR", "status": "succeeded",
                 "metadata": {"payment_id": payment["id"]}}  # fmt: skip
    assert _deliver(client, _event("payment.succeeded", succeeded)).status_code == 200
    return payment


def test_a_refund_report_larger_than_the_payment_is_refused_and_stored_nowhere(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    payment = _paid(client, shop)
    huge = {"object": "refund", "id": f"sbx_re_{secrets.token_hex(8)}",
            "payment": payment["provider_reference"], "amount": 999_999, "currency": "EUR",
            "status": "pending"}  # fmt: skip
    response = _deliver(client, _event("refund.pending", huge))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "impossible_report"
    assert count_rows(owner_engine, "SELECT count(*) FROM refunds WHERE payment_id = :p",
                      p=payment["id"]) == 0  # fmt: skip
    # the organizer can still refund what was paid
    refunded = refund(client, payment["id"], shop.owner, amount=5000)
    assert refunded.status_code == 201, refunded.text


def test_a_refund_report_in_another_currency_is_refused(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    payment = _paid(client, shop)
    other = {"object": "refund", "id": f"sbx_re_{secrets.token_hex(8)}",
             "payment": payment["provider_reference"], "amount": 100, "currency": "RUB",
             "status": "succeeded"}  # fmt: skip
    response = _deliver(client, _event("refund.succeeded", other))
    assert response.status_code == 422, response.text
    assert count_rows(owner_engine, "SELECT count(*) FROM refunds WHERE payment_id = :p",
                      p=payment["id"]) == 0  # fmt: skip


def test_a_success_for_another_amount_or_currency_is_not_paid_and_is_flagged(
    client: TestClient, shop: Shop
) -> None:
    for amount, currency in ((100, "RUB"), (100, "EUR"), (5000, "RUB")):
        user, registration = shop.buyer()
        payment = paying(client, registration["id"], user)
        sandbox(client).deliver_all(lambda body, headers: 200)
        forged = {"object": "payment", "id": payment["provider_reference"], "amount": amount,
                  "currency": currency, "status": "succeeded",
                  "metadata": {"payment_id": payment["id"]}}  # fmt: skip
        response = _deliver(client, _event("payment.succeeded", forged))
        assert response.status_code == 200, response.text  # received, so not redelivered
        now = client.get(f"{V1}/payments/{payment['id']}", headers=shop.owner["headers"]).json()
        assert now["status"] != "completed", (amount, currency, now)
        assert now["failure_code"] == "amount_mismatch", now
        state = client.get(
            f"{V1}/registrations/{registration['id']}", headers=user["headers"]
        ).json()
        assert state["amount_paid"] == 0, state
