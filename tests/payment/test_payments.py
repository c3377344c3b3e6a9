"""Paying a registration in full through the sandbox provider: starting a payment, its
asynchronous outcome, who sees it, and the clear 4xx answers to bad requests (nothing written)."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    V1,
    assert_error,
    get_payment,
    outbox_rows,
    pay,
    paying,
    payment_now,
    registered,
    registration_now,
    sandbox,
    settle_sandbox,
)
from tests.payment.conftest import Shop, count_rows


def _payments_of(engine: Engine, registration_id: str) -> int:
    return count_rows(
        engine, "SELECT count(*) FROM payments WHERE registration_id = :r", r=registration_id
    )


def test_a_full_payment_confirms_the_registration(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    assert registration["status"] == "pending_payment"
    payment = paying(client, registration["id"], user)
    assert payment["status"] == "pending"
    assert payment["purpose"] == "full"
    assert (payment["amount"], payment["currency"]) == (5000, "EUR")
    assert payment["provider"] == "sandbox"
    assert payment["provider_reference"].startswith("sbx_pay_")
    assert payment["checkout_url"].endswith(f"/sandbox/checkout/{payment['provider_reference']}")
    assert payment["refundable"] == 0
    created = outbox_rows(owner_engine, payment["id"], "payment.created")
    assert len(created) == 1
    assert created[0]["payload"]["amount"] == 5000
    assert created[0]["tenant_id"] == uuid.UUID(shop.org["id"])

    # The provider confirms asynchronously: processing, then succeeded.
    assert settle_sandbox(client) == [200, 200]
    payment = payment_now(client, payment["id"], user)
    assert payment["status"] == "completed"
    assert payment["completed_at"] is not None
    assert payment["refundable"] == 5000
    registration = registration_now(client, registration["id"], user)
    assert registration["status"] == "confirmed"
    assert registration["amount_paid"] == 5000
    assert [r["event_type"] for r in outbox_rows(owner_engine, payment["id"])] == [
        "payment.created",
        "payment.completed",
    ]
    assert len(outbox_rows(owner_engine, registration["id"], "registration.confirmed")) == 1


def test_the_checkout_page_shows_the_sandbox_payment(client: TestClient, shop: Shop) -> None:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    page = client.get(urlsplit(payment["checkout_url"]).path)
    assert page.status_code == 200
    assert payment["provider_reference"] in page.text
    assert "50.00 EUR" in page.text
    assert client.get("/sandbox/checkout/sbx_pay_nope").status_code == 404


def test_a_failed_payment_releases_the_seat(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    assert shop.sold(shop.event_id, shop.full["id"]) == 1
    sandbox(client).script("failed")
    payment = paying(client, registration["id"], user)
    settle_sandbox(client)
    payment = payment_now(client, payment["id"], user)
    assert payment["status"] == "failed"
    assert payment["failure_code"] == "card_declined"
    registration = registration_now(client, registration["id"], user)
    assert registration["status"] == "cancelled"
    assert shop.sold(shop.event_id, shop.full["id"]) == 0
    failed = outbox_rows(owner_engine, payment["id"], "payment.failed")
    assert [r["payload"]["failure_code"] for r in failed] == ["card_declined"]
    cancelled = outbox_rows(owner_engine, registration["id"], "registration.cancelled")
    assert [r["payload"]["reason"] for r in cancelled] == ["payment_failed"]
    # Nothing more can be paid for it.
    assert_error(pay(client, registration["id"], user), 409, "invalid_state")


def test_the_idempotency_key_is_required_and_replays(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    assert_error(pay(client, registration["id"], user, key=None), 400, "idempotency_key_required")
    assert _payments_of(owner_engine, registration["id"]) == 0
    first = pay(client, registration["id"], user, key="k-1")
    assert first.status_code == 201, first.text
    again = pay(client, registration["id"], user, key="k-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    # A new key while the payment is open answers that payment (200), charging nothing new.
    other = pay(client, registration["id"], user, key="k-2")
    assert other.status_code == 200, other.text
    assert other.json()["id"] == first.json()["id"]
    assert _payments_of(owner_engine, registration["id"]) == 1
    assert len(sandbox(client).pending()) == 2  # one payment's deliveries at the provider


def test_nothing_is_due_once_paid_or_when_free(client: TestClient, shop: Shop, api) -> None:
    user, registration = shop.buyer()
    paying(client, registration["id"], user)
    settle_sandbox(client)
    error = assert_error(pay(client, registration["id"], user), 409, "nothing_due")
    assert error["details"] == {"amount_total": 5000, "amount_paid": 5000}
    free = shop.ticket_type(shop.event_id, name="Free", capacity=5)
    guest = api.register("guest")
    free_registration = registered(client, shop.event_id, guest, ticket_type_id=free["id"])
    assert_error(pay(client, free_registration["id"], guest), 409, "nothing_due")


def test_bad_requests_answer_4xx_and_write_nothing(
    client: TestClient, shop: Shop, api, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    stranger = api.register("stranger")
    # Someone else's registration, or none at all: not found.
    assert_error(pay(client, registration["id"], stranger), 404, "not_found")
    assert_error(pay(client, str(uuid.uuid4()), user), 404, "not_found")
    # The organizer cannot pay on the participant's behalf either.
    assert_error(pay(client, registration["id"], shop.owner), 404, "not_found")
    error = assert_error(
        pay(client, registration["id"], user, provider="paypal"), 422, "unknown_provider"
    )
    assert error["details"] == {"enabled": ["sandbox"]}
    bad = client.post(
        f"{V1}/payments",
        json={"registration_id": registration["id"], "amount": 1},
        headers={**user["headers"], "X-Idempotency-Key": uuid.uuid4().hex},
    )
    assert_error(bad, 422, "validation_error")
    assert_error(pay(client, "not-a-uuid", user), 422, "validation_error")
    anonymous = client.post(
        f"{V1}/payments",
        json={"registration_id": registration["id"]},
        headers={"X-Idempotency-Key": uuid.uuid4().hex},
    )
    assert_error(anonymous, 401, "unauthorized")
    assert _payments_of(owner_engine, registration["id"]) == 0
    assert outbox_rows(owner_engine, registration["id"], "payment.created") == []


def test_a_cancelled_registration_or_event_takes_no_payment(client: TestClient, shop: Shop) -> None:
    user, registration = shop.buyer()
    cancelled = client.post(
        f"{V1}/registrations/{registration['id']}/cancel", headers=user["headers"]
    )
    assert cancelled.status_code == 200
    error = assert_error(pay(client, registration["id"], user), 409, "invalid_state")
    assert error["details"] == {"status": "cancelled"}
    user2, registration2 = shop.buyer()
    shop.moved(shop.event_id, "cancel")
    assert_error(pay(client, registration2["id"], user2), 409, "event_cancelled")


def test_who_sees_a_payment(client: TestClient, shop: Shop, api) -> None:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    analyst = shop.member("analyst")
    for viewer in (user, shop.owner, analyst):
        seen = get_payment(client, payment["id"], viewer)
        assert seen.status_code == 200, seen.text
        assert seen.json()["id"] == payment["id"]
    outsider = api.register("outsider")
    other_org = shop.another()
    for viewer in (outsider, other_org.owner):
        assert_error(get_payment(client, payment["id"], viewer), 404, "not_found")
    assert_error(get_payment(client, payment["id"], None), 401, "unauthorized")
    assert_error(get_payment(client, str(uuid.uuid4()), user), 404, "not_found")
    listed = client.get(
        f"{V1}/registrations/{registration['id']}/payments", headers=shop.owner["headers"]
    )
    assert listed.status_code == 200
    assert listed.json() == {"items": [listed.json()["items"][0]], "next_cursor": None}
    assert [p["id"] for p in listed.json()["items"]] == [payment["id"]]
    mine = client.get(f"{V1}/registrations/{registration['id']}/payments", headers=user["headers"])
    assert [p["id"] for p in mine.json()["items"]] == [payment["id"]]
    assert_error(
        client.get(
            f"{V1}/registrations/{registration['id']}/payments", headers=outsider["headers"]
        ),
        404,
        "not_found",
    )


def test_webhooks_of_unknown_payments_are_left_for_a_retry(client: TestClient, shop: Shop) -> None:
    """A webhook racing the commit of its payment is refused (409, not recorded), so the
    provider's retry applies it."""
    box = sandbox(client)
    body = (
        b'{"id": "evt_early", "type": "payment.succeeded", "data": {"object": {"object": '
        b'"payment", "id": "sbx_pay_not_yet", "amount": 5000, "currency": "EUR"}}}'
    )
    response = client.post(f"{V1}/webhooks/sandbox", content=body, headers=box.sign(body))
    error = assert_error(response, 409, "unknown_payment")
    assert error["details"] == {"reference": "sbx_pay_not_yet"}
