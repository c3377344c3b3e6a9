"""Refunds by organizers: full and partial, never more than was paid in all, who may refund,
settling by webhook, and a provider that cannot be reached."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from domain.payment.errors import ProviderUnavailable
from tests.factories import (
    assert_error,
    outbox_rows,
    paying,
    payment_now,
    refund,
    registration_now,
    sandbox,
    settle_sandbox,
    submit_refunds,
)
from tests.payment.conftest import Shop, count_rows


def _paid(client: TestClient, shop: Shop) -> tuple[dict, dict, dict]:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    settle_sandbox(client)
    assert payment_now(client, payment["id"], user)["status"] == "completed"
    return user, registration, payment


def _refunds_of(engine: Engine, payment_id: str) -> int:
    return count_rows(engine, "SELECT count(*) FROM refunds WHERE payment_id = :p", p=payment_id)


def test_partial_refunds_then_the_rest(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration, payment = _paid(client, shop)
    first = refund(client, payment["id"], shop.owner, amount=1000, note="late start")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["amount"], body["status"], body["reason"]) == (1000, "pending", "organizer")
    assert body["note"] == "late start"
    assert body["payment"]["refundable"] == 4000  # the pending 1000 is reserved
    assert body["payment"]["status"] == "completed"  # until the provider confirms
    settle_sandbox(client)
    now = payment_now(client, payment["id"], shop.owner)
    assert (now["status"], now["amount_refunded"], now["refundable"]) == (
        "partially_refunded",
        1000,
        4000,
    )
    assert [r["status"] for r in now["refunds"]] == ["succeeded"]
    # A partial refund keeps the registration.
    assert registration_now(client, registration["id"], user)["status"] == "confirmed"

    rest = refund(client, payment["id"], shop.owner)  # no amount: everything left
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 4000
    settle_sandbox(client)
    now = payment_now(client, payment["id"], user)
    assert (now["status"], now["amount_refunded"], now["refundable"]) == ("refunded", 5000, 0)
    refunded = outbox_rows(owner_engine, payment["id"], "payment.refunded")
    assert [(r["payload"]["amount"], r["payload"]["partial"]) for r in refunded] == [
        (1000, True),
        (4000, False),
    ]
    assert refunded[-1]["payload"]["amount_refunded"] == 5000
    # Everything paid went back: the registration is cancelled and its seat freed.
    registration = registration_now(client, registration["id"], user)
    assert registration["status"] == "cancelled"
    assert shop.sold(shop.event_id, shop.full["id"]) == 0
    cancelled = outbox_rows(owner_engine, registration["id"], "registration.cancelled")
    assert [r["payload"]["reason"] for r in cancelled] == ["refunded"]


def test_refunds_never_exceed_what_was_paid(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    _, _, payment = _paid(client, shop)
    error = assert_error(
        refund(client, payment["id"], shop.owner, amount=5001), 409, "refund_exceeds_paid"
    )
    assert error["details"] == {"refundable": 5000, "amount": 5000, "amount_refunded": 0}
    assert refund(client, payment["id"], shop.owner, amount=3000).status_code == 201
    # The pending 3000 counts already: 2001 would exceed what is left.
    error = assert_error(
        refund(client, payment["id"], shop.owner, amount=2001), 409, "refund_exceeds_paid"
    )
    assert error["details"]["refundable"] == 2000
    assert refund(client, payment["id"], shop.owner, amount=2000).status_code == 201
    assert_error(refund(client, payment["id"], shop.owner), 409, "nothing_to_refund")
    settle_sandbox(client)
    assert payment_now(client, payment["id"], shop.owner)["amount_refunded"] == 5000
    error = assert_error(refund(client, payment["id"], shop.owner, amount=1), 409, "invalid_state")
    assert error["details"] == {"status": "refunded"}
    assert _refunds_of(owner_engine, payment["id"]) == 2


def test_only_paid_payments_are_refunded(client: TestClient, shop: Shop) -> None:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    error = assert_error(refund(client, payment["id"], shop.owner), 409, "invalid_state")
    assert error["details"] == {"status": "pending"}


def test_who_may_refund(client: TestClient, shop: Shop, api, owner_engine: Engine) -> None:
    user, _, payment = _paid(client, shop)
    analyst = shop.member("analyst")
    error = assert_error(refund(client, payment["id"], analyst), 403, "insufficient_role")
    assert error["details"] == {"role": "analyst"}
    assert_error(refund(client, payment["id"], user), 404, "not_found")  # the payer is no member
    assert_error(refund(client, payment["id"], shop.another().owner), 404, "not_found")
    assert_error(refund(client, payment["id"], None), 401, "unauthorized")
    assert_error(refund(client, str(uuid.uuid4()), shop.owner), 404, "not_found")
    assert_error(
        refund(client, payment["id"], shop.owner, key=None), 400, "idempotency_key_required"
    )
    assert_error(refund(client, payment["id"], shop.owner, amount=0), 422, "validation_error")
    assert_error(refund(client, payment["id"], shop.owner, amount=-5), 422, "validation_error")
    assert_error(refund(client, payment["id"], shop.owner, amont=5), 422, "validation_error")
    assert _refunds_of(owner_engine, payment["id"]) == 0
    moderator = shop.member("moderator")
    assert refund(client, payment["id"], moderator, amount=100).status_code == 201


def test_a_retried_refund_refunds_once(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    _, _, payment = _paid(client, shop)
    first = refund(client, payment["id"], shop.owner, key="refund-1", amount=700)
    again = refund(client, payment["id"], shop.owner, key="refund-1", amount=700)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert _refunds_of(owner_engine, payment["id"]) == 1
    # Delivered twice and out of order, the refund still counts once.
    settle_sandbox(client, duplicate=True, reverse=True)
    assert payment_now(client, payment["id"], shop.owner)["amount_refunded"] == 700


def test_an_unreachable_provider_gets_the_refund_later(
    client: TestClient, shop: Shop, owner_engine: Engine, monkeypatch
) -> None:
    _, _, payment = _paid(client, shop)
    box = sandbox(client)

    def down(request):
        raise ProviderUnavailable("the sandbox is down")

    with monkeypatch.context() as patch:
        patch.setattr(box, "refund", down)
        response = refund(client, payment["id"], shop.owner, amount=1500)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "requested"
        assert submit_refunds(client) == 0  # still down: kept for later
    assert submit_refunds(client) == 1
    settle_sandbox(client)
    now = payment_now(client, payment["id"], shop.owner)
    assert (now["status"], now["amount_refunded"]) == ("partially_refunded", 1500)
    assert [r["status"] for r in now["refunds"]] == ["succeeded"]
    assert submit_refunds(client) == 0


def test_a_refund_the_provider_refuses_fails_and_frees_its_amount(
    client: TestClient, shop: Shop, monkeypatch
) -> None:
    from domain.payment.errors import ProviderRejected

    _, _, payment = _paid(client, shop)

    def refuse(request):
        raise ProviderRejected("no", details={"provider_code": "charge_disputed"})

    monkeypatch.setattr(sandbox(client), "refund", refuse)
    response = refund(client, payment["id"], shop.owner, amount=1500)
    assert response.status_code == 201, response.text
    assert (response.json()["status"], response.json()["failure_code"]) == (
        "failed",
        "charge_disputed",
    )
    now = payment_now(client, payment["id"], shop.owner)
    assert (now["status"], now["refundable"]) == ("completed", 5000)
