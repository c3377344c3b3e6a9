"""The saga's steps (domain/payment/saga.py), each run twice to show it is idempotent, and the
time-driven ones through the sweeper: unpaid registrations released, payments arriving after a
cancellation refunded, a cancelled event's payments refunded and its registrations cancelled."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from domain.payment import saga
from domain.uow import UnitOfWork
from tests.factories import (
    V1,
    outbox_rows,
    paying,
    payment_now,
    registration_now,
    sandbox,
    settle_sandbox,
    submit_refunds,
    sweep,
)
from tests.payment.conftest import Shop, count_rows


def _in_tenant(client: TestClient, shop: Shop, step: Callable[[UnitOfWork], Any]) -> Any:
    """Run a saga step as a stream processor would: its own transaction in the tenant."""
    with UnitOfWork(client.app.state.aq.sessionmaker, tenant_id=uuid.UUID(shop.org["id"])) as uow:
        result = step(uow)
        uow.commit()
    return result


def _backdate(engine: Engine, registration_id: str, minutes: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE registrations SET created_at = now() - make_interval(mins => :m) "
                 "WHERE id = :id"),
            {"m": minutes, "id": registration_id},
        )  # fmt: skip


def test_initiating_a_payment_twice_starts_one(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    providers = client.app.state.payments.providers
    rid = uuid.UUID(registration["id"])
    first = _in_tenant(
        client, shop, lambda uow: saga.initiate_payment_for_registration(uow, providers, rid).id
    )
    second = _in_tenant(
        client, shop, lambda uow: saga.initiate_payment_for_registration(uow, providers, rid).id
    )
    assert first == second
    assert len(outbox_rows(owner_engine, str(first), "payment.created")) == 1
    # The participant asking afterwards gets the same payment.
    response = client.post(
        f"{V1}/payments",
        json={"registration_id": registration["id"]},
        headers={**user["headers"], "X-Idempotency-Key": uuid.uuid4().hex},
    )
    assert (response.status_code, response.json()["id"]) == (200, str(first))


def test_confirming_on_payment_counts_a_payment_once(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer("deposit")
    payment = paying(client, registration["id"], user)
    settle_sandbox(client)
    pid = uuid.UUID(payment["id"])
    # Already applied by the webhook: the stream processor's run changes nothing, twice.
    for _ in range(2):
        assert (
            _in_tenant(client, shop, lambda uow: saga.confirm_registration_on_payment(uow, pid))
            is None
        )
    registration = registration_now(client, registration["id"], user)
    assert (registration["status"], registration["amount_paid"]) == ("confirmed", 2500)
    assert len(outbox_rows(owner_engine, registration["id"], "registration.confirmed")) == 1


def test_releasing_on_failure_is_idempotent(client: TestClient, shop: Shop) -> None:
    user, registration = shop.buyer()
    sandbox(client).script("failed")
    payment = paying(client, registration["id"], user)
    settle_sandbox(client)
    pid = uuid.UUID(payment["id"])
    assert (
        _in_tenant(client, shop, lambda uow: saga.release_seat_on_payment_failure(uow, pid)) is None
    )
    assert registration_now(client, registration["id"], user)["status"] == "cancelled"
    assert shop.sold(shop.event_id, shop.full["id"]) == 0


def test_a_registration_never_paid_in_time_is_released(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    waiting, processing_registration = shop.buyer()
    paying(client, registration["id"], user)
    slow = paying(client, processing_registration["id"], waiting)
    box = sandbox(client)
    processing = next(
        d
        for d in box.pending()
        if d.type == "payment.processing" and slow["provider_reference"].encode() in d.body
    )
    response = client.post(
        f"{V1}/webhooks/sandbox", content=processing.body, headers=box.sign(processing.body)
    )
    assert response.json()["outcome"] == "applied"
    assert payment_now(client, slow["id"], waiting)["status"] == "processing"
    box.deliver_all(lambda body, headers: 200)  # the provider goes quiet
    sweep(client)
    assert registration_now(client, registration["id"], user)["status"] == "pending_payment"
    minutes = client.app.state.aq.settings.payment_timeout_s // 60 + 1
    for rid in (registration["id"], processing_registration["id"]):
        _backdate(owner_engine, rid, minutes)
    sweep(client)
    released = registration_now(client, registration["id"], user)
    assert released["status"] == "cancelled"
    reasons = outbox_rows(owner_engine, registration["id"], "registration.cancelled")
    assert [r["payload"]["reason"] for r in reasons] == ["payment_timeout"]
    # A payment being processed holds its seat.
    held = registration_now(client, processing_registration["id"], waiting)
    assert held["status"] == "pending_payment"
    assert shop.sold(shop.event_id, shop.full["id"]) == 1


def test_a_payment_completing_after_its_registration_ended_is_refunded(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    late = sandbox(client).pending()  # the provider's answer, delivered after the timeout
    sandbox(client).deliver_all(lambda body, headers: 200)
    _backdate(owner_engine, registration["id"], 24 * 60)
    sweep(client)
    assert registration_now(client, registration["id"], user)["status"] == "cancelled"
    for delivery in late:
        response = client.post(
            f"{V1}/webhooks/sandbox",
            content=delivery.body,
            headers=sandbox(client).sign(delivery.body),
        )
        assert response.status_code == 200, response.text
    now = payment_now(client, payment["id"], user)
    assert now["status"] == "completed"
    assert [(r["reason"], r["status"], r["amount"]) for r in now["refunds"]] == [
        ("registration_cancelled", "requested", 5000)
    ]
    assert submit_refunds(client) == 1
    settle_sandbox(client)
    now = payment_now(client, payment["id"], user)
    assert (now["status"], now["amount_refunded"]) == ("refunded", 5000)
    registration = registration_now(client, registration["id"], user)
    assert (registration["status"], registration["amount_paid"]) == ("cancelled", 0)


def test_a_cancelled_event_refunds_its_payments_and_then_its_registrations(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    paid = []
    for ticket in ("full", "deposit"):
        user, registration = shop.buyer(ticket)
        payment = paying(client, registration["id"], user)
        paid.append((user, registration, payment))
    settle_sandbox(client)
    unpaid_user, unpaid = shop.buyer()
    shop.moved(shop.event_id, "cancel", reason="venue flooded")
    sweep(client)  # asks for the refunds
    sweep(client)  # and not twice
    event_id = uuid.UUID(shop.event_id)
    again = _in_tenant(client, shop, lambda uow: saga.refund_event_payments(uow, event_id))
    assert len(again) == 2  # the saga's own run finds the same two refunds
    for _, _, payment in paid:
        refunds = payment_now(client, payment["id"], shop.owner)["refunds"]
        assert [(r["reason"], r["status"]) for r in refunds] == [("event_cancelled", "requested")]
    assert submit_refunds(client) == 2
    settle_sandbox(client)
    for user, registration, payment in paid:
        now = payment_now(client, payment["id"], user)
        assert (now["status"], now["amount_refunded"]) == ("refunded", now["amount"])
        registration = registration_now(client, registration["id"], user)
        assert registration["status"] == "cancelled"
        reasons = outbox_rows(owner_engine, registration["id"], "registration.cancelled")
        assert [r["payload"]["reason"] for r in reasons] == ["refunded"]
    # The registration that never paid is left to the payment timeout.
    assert registration_now(client, unpaid["id"], unpaid_user)["status"] == "pending_payment"
    assert (
        count_rows(
            owner_engine,
            "SELECT count(*) FROM refunds r JOIN payments p ON p.id = r.payment_id "
            "WHERE p.event_id = :e",
            e=shop.event_id,
        )
        == 2
    )


def test_a_checked_in_registration_stays_when_refunded(client: TestClient, shop: Shop) -> None:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    settle_sandbox(client)
    checked = client.post(
        f"{V1}/registrations/{registration['id']}/check-in", headers=shop.owner["headers"]
    )
    assert checked.status_code == 200, checked.text
    from tests.factories import refund

    assert refund(client, payment["id"], shop.owner).status_code == 201
    settle_sandbox(client)
    assert payment_now(client, payment["id"], user)["status"] == "refunded"
    assert registration_now(client, registration["id"], user)["status"] == "confirmed"
    rid = uuid.UUID(registration["id"])
    assert (
        _in_tenant(client, shop, lambda uow: saga.cancel_registration_if_refunded(uow, rid)) is None
    )


def test_time_driven_steps_leave_fresh_rows_alone(client: TestClient, shop: Shop) -> None:
    user, registration = shop.buyer()
    rid = uuid.UUID(registration["id"])
    assert not _in_tenant(
        client,
        shop,
        lambda uow: saga.release_unpaid_registration(uow, rid, timeout=timedelta(minutes=30)),
    )
    assert not _in_tenant(client, shop, lambda uow: saga.default_unpaid_remainder(uow, rid))
    assert registration_now(client, registration["id"], user)["status"] == "pending_payment"
