"""Prepayment: a deposit confirms the registration, the remainder is paid by the event's deadline
with a second payment; an unpaid remainder cancels the registration (refunding the deposit when
the event says so). The deadline and the refund rule are event settings of the events API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.factories import (
    V1,
    assert_error,
    at,
    outbox_rows,
    pay,
    paying,
    payment_now,
    registration_now,
    settle_sandbox,
    submit_refunds,
    sweep,
)
from tests.payment.conftest import Shop


def _set_deadline(engine: Engine, event_id: str, when: str) -> None:
    """Move the remainder deadline (the API keeps it ahead of now only by the clock)."""
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE events SET remainder_due_at = {when} WHERE id = :id"), {"id": event_id}
        )


def test_deposit_then_remainder_ends_confirmed_with_each_payment_counted_once(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer("deposit")
    assert (registration["amount_total"], registration["amount_due_now"]) == (10000, 2500)
    deposit = paying(client, registration["id"], user)
    assert (deposit["purpose"], deposit["amount"]) == ("deposit", 2500)
    # Duplicated and out of order: the deposit still counts once.
    settle_sandbox(client, duplicate=True, reverse=True)
    registration = registration_now(client, registration["id"], user)
    assert (registration["status"], registration["amount_paid"]) == ("confirmed", 2500)

    remainder = paying(client, registration["id"], user)
    assert (remainder["purpose"], remainder["amount"]) == ("remainder", 7500)
    settle_sandbox(client, duplicate=True)
    registration = registration_now(client, registration["id"], user)
    assert (registration["status"], registration["amount_paid"]) == ("confirmed", 10000)
    assert payment_now(client, remainder["id"], user)["status"] == "completed"
    assert_error(pay(client, registration["id"], user), 409, "nothing_due")
    # One confirmation, one completion per payment; the sweeper leaves a paid registration be.
    assert len(outbox_rows(owner_engine, registration["id"], "registration.confirmed")) == 1
    for payment in (deposit, remainder):
        assert len(outbox_rows(owner_engine, payment["id"], "payment.completed")) == 1
    _set_deadline(owner_engine, shop.event_id, "now() - interval '1 minute'")
    sweep(client)
    assert registration_now(client, registration["id"], user)["status"] == "confirmed"


def test_a_failed_remainder_can_be_paid_again(client: TestClient, shop: Shop) -> None:
    from tests.factories import sandbox

    user, registration = shop.buyer("deposit")
    paying(client, registration["id"], user)
    settle_sandbox(client)
    sandbox(client).script("failed")
    failed = paying(client, registration["id"], user)
    settle_sandbox(client)
    assert payment_now(client, failed["id"], user)["status"] == "failed"
    # The deposit holds the seat: a failed remainder cancels nothing.
    assert registration_now(client, registration["id"], user)["status"] == "confirmed"
    retry = paying(client, registration["id"], user)
    assert retry["id"] != failed["id"] and retry["purpose"] == "remainder"
    settle_sandbox(client)
    assert registration_now(client, registration["id"], user)["amount_paid"] == 10000


@pytest.mark.parametrize("refund_deposit", [False, True])
def test_an_unpaid_remainder_past_the_deadline_cancels_the_registration(
    client: TestClient, api, admin: dict, owner_engine: Engine, refund_deposit: bool
) -> None:
    shop = Shop(client, api, admin, refund_deposit_on_default=refund_deposit)
    elsewhere = Shop(client, api, admin)  # another event, its deadline still ahead
    user, registration = shop.buyer("deposit")
    other_user, other_registration = elsewhere.buyer("deposit")
    deposit = paying(client, registration["id"], user)
    paying(client, other_registration["id"], other_user)
    settle_sandbox(client)
    sweep(client)  # not due yet: the deadline is the start, in 30 days
    assert registration_now(client, registration["id"], user)["status"] == "confirmed"
    _set_deadline(owner_engine, shop.event_id, "now() - interval '1 minute'")
    assert_error(pay(client, registration["id"], user), 409, "remainder_overdue")

    sweep(client)
    registration = registration_now(client, registration["id"], user)
    assert registration["status"] == "cancelled"
    assert shop.sold(shop.event_id, shop.deposit["id"]) == 0
    reasons = outbox_rows(owner_engine, registration["id"], "registration.cancelled")
    assert [r["payload"]["reason"] for r in reasons] == ["remainder_unpaid"]
    submit_refunds(client)
    settle_sandbox(client)
    deposit = payment_now(client, deposit["id"], user)
    if refund_deposit:
        assert (deposit["status"], deposit["amount_refunded"]) == ("refunded", 2500)
        assert [r["reason"] for r in deposit["refunds"]] == ["remainder_unpaid"]
    else:
        assert (deposit["status"], deposit["refunds"]) == ("completed", [])
    sweep(client)  # a second pass changes nothing
    assert len(payment_now(client, deposit["id"], user)["refunds"]) == int(refund_deposit)
    assert registration_now(client, other_registration["id"], other_user)["status"] == "confirmed"


def test_a_remainder_being_processed_holds_the_seat_past_the_deadline(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    from tests.factories import sandbox

    user, registration = shop.buyer("deposit")
    paying(client, registration["id"], user)
    settle_sandbox(client)
    remainder = paying(client, registration["id"], user)
    processing = sandbox(client).pending()[0]
    assert processing.type == "payment.processing"
    assert (
        sandbox(client).deliver_due(
            lambda body, headers: (
                client.post(f"{V1}/webhooks/sandbox", content=body, headers=headers).status_code
            ),
            now=processing.due,
        )
        == 1
    )
    assert payment_now(client, remainder["id"], user)["status"] == "processing"
    _set_deadline(owner_engine, shop.event_id, "now() - interval '1 minute'")
    sweep(client)
    assert registration_now(client, registration["id"], user)["status"] == "confirmed"
    settle_sandbox(client)
    assert registration_now(client, registration["id"], user)["amount_paid"] == 10000


# --- the event settings -------------------------------------------------------------------------


def test_events_carry_the_prepayment_settings(client: TestClient, shop: Shop) -> None:
    assert shop.event_body["remainder_due_at"] is None
    assert shop.event_body["refund_deposit_on_default"] is False
    due = at(days=20)
    created = shop.create_event(remainder_due_at=due.isoformat(), refund_deposit_on_default=True)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["remainder_due_at"].startswith(due.strftime("%Y-%m-%dT%H:%M:%S"))
    assert event["refund_deposit_on_default"] is True
    # Due after the start: refused.
    late = shop.create_event(remainder_due_at=at(days=40).isoformat())
    assert_error(late, 422, "invalid_schedule")
    update = client.put(
        f"{V1}/events/{event['id']}",
        json={"remainder_due_at": None, "refund_deposit_on_default": False},
        headers=shop.owner["headers"],
    )
    assert update.status_code == 200, update.text
    assert update.json()["remainder_due_at"] is None
    assert update.json()["refund_deposit_on_default"] is False
    nulled = client.put(
        f"{V1}/events/{event['id']}",
        json={"refund_deposit_on_default": None},
        headers=shop.owner["headers"],
    )
    assert_error(nulled, 422, "validation_error")


def test_once_published_the_deadline_may_move_but_not_the_refund_rule(
    client: TestClient, shop: Shop
) -> None:
    moved = client.put(
        f"{V1}/events/{shop.event_id}",
        json={"remainder_due_at": at(days=25).isoformat()},
        headers=shop.owner["headers"],
    )
    assert moved.status_code == 200, moved.text
    locked = client.put(
        f"{V1}/events/{shop.event_id}",
        json={"refund_deposit_on_default": True},
        headers=shop.owner["headers"],
    )
    error = assert_error(locked, 409, "field_locked")
    assert error["details"]["fields"] == ["refund_deposit_on_default"]
    past_start = client.put(
        f"{V1}/events/{shop.event_id}",
        json={"remainder_due_at": at(days=31).isoformat()},
        headers=shop.owner["headers"],
    )
    assert_error(past_start, 422, "invalid_schedule")
