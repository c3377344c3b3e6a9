"""A participant's own cancellation refunds per the event's refund policy: in full or less a fee
(percent or fixed) before the deadline, nothing after it or without a policy; the answer says
what goes back, the payment saga asks for it once and the sandbox settles it. The time is the
API's injected clock, set relative to the event's start: no test depends on today's date."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.registration.router import utc_now
from domain.payment import saga
from domain.uow import UnitOfWork
from streams.payment import run_saga_step
from streams.records import Record
from tests.factories import (
    V1,
    assert_error,
    cancel_registration,
    outbox_rows,
    paying,
    payment_now,
    refund,
    registration_now,
    settle_sandbox,
    submit_refunds,
)
from tests.payment.conftest import Shop, count_rows


class Clock:
    """The API's clock for these tests: a moment relative to an event's start."""

    def __init__(self) -> None:
        self.now: datetime | None = None

    def days_before(self, event: dict, days: float) -> None:
        self.now = datetime.fromisoformat(event["starts_at"]) - timedelta(days=days)

    def __call__(self) -> datetime:
        assert self.now is not None, "set the clock first"
        return self.now


@pytest.fixture
def clock(api_app) -> Iterator[Clock]:
    fixed = Clock()
    api_app.dependency_overrides[utc_now] = fixed
    yield fixed
    api_app.dependency_overrides.pop(utc_now, None)


def _shop(client: TestClient, api, admin: dict, **policy) -> Shop:
    return Shop(client, api, admin, **policy)


def _paid(client: TestClient, shop: Shop, ticket: str = "full") -> tuple[dict, dict, dict]:
    user, registration = shop.buyer(ticket)
    payment = paying(client, registration["id"], user)
    settle_sandbox(client)
    assert payment_now(client, payment["id"], user)["status"] == "completed"
    return user, registration, payment


def _cancel(client: TestClient, registration_id: str, user: dict) -> dict:
    response = cancel_registration(client, registration_id, user)
    assert response.status_code == 200, response.text
    return response.json()


def _in_tenant(client: TestClient, shop: Shop, step):
    with UnitOfWork(client.app.state.aq.sessionmaker, tenant_id=uuid.UUID(shop.org["id"])) as uow:
        result = step(uow)
        uow.commit()
    return result


def _saga_record(client: TestClient, engine: Engine, registration_id: str) -> str:
    """The registration's registration.cancelled, consumed by the payment saga's agent as the
    stream delivers it (the inbox row included)."""
    row = outbox_rows(engine, registration_id, "registration.cancelled")[-1]
    record = Record(
        topic="aqstream.registration.v1",
        partition=0,
        offset=0,
        key=registration_id.encode(),
        value=json.dumps(row["payload"]).encode(),
        headers={
            "event_id": str(uuid.uuid4()),
            "event_type": "registration.cancelled",
            "tenant_id": str(row["tenant_id"]),
        },
    )
    deps = SimpleNamespace(
        sessions=client.app.state.aq.sessionmaker, providers=client.app.state.payments.providers
    )
    return run_saga_step(deps, record)  # type: ignore[arg-type]


def test_full_refund_before_the_deadline_through_the_saga(
    client: TestClient, api, admin: dict, clock: Clock, owner_engine: Engine
) -> None:
    shop = _shop(client, api, admin, refund_days_before_start=7)
    deadline = datetime.fromisoformat(shop.event_body["starts_at"]) - timedelta(days=7)
    assert datetime.fromisoformat(shop.event_body["refund_deadline"]) == deadline
    user, registration, payment = _paid(client, shop)
    clock.days_before(shop.event_body, 7.5)
    body = _cancel(client, registration["id"], user)
    assert body["status"] == "cancelled"
    assert body["refund_due"] == 5000
    refund_ = body["refund"]
    assert (refund_["rule"], refund_["amount"], refund_["paid"], refund_["fee"]) == (
        "full",
        5000,
        5000,
        0,
    )
    assert refund_["currency"] == "EUR"
    assert datetime.fromisoformat(refund_["deadline"]) == deadline
    assert shop.sold(shop.event_id, shop.full["id"]) == 0  # the seat is free at once
    cancelled = outbox_rows(owner_engine, registration["id"], "registration.cancelled")
    assert [(r["payload"]["reason"], r["payload"]["refund_due"]) for r in cancelled] == [
        ("participant", 5000)
    ]
    # The saga's agent asks for it once; a second delivery (another event id) asks nothing more.
    assert _saga_record(client, owner_engine, registration["id"]) == "refunds=1"
    assert _saga_record(client, owner_engine, registration["id"]) == "refunds=1"
    rid = uuid.UUID(registration["id"])
    again = _in_tenant(client, shop, lambda uow: saga.refund_participant_cancellation(uow, rid))
    assert [r.amount for r in again] == [5000]
    refunds = payment_now(client, payment["id"], user)["refunds"]
    assert [(r["reason"], r["amount"], r["status"]) for r in refunds] == [
        ("participant_cancelled", 5000, "requested")
    ]
    assert submit_refunds(client) == 1
    settle_sandbox(client)
    now = payment_now(client, payment["id"], user)
    assert (now["status"], now["amount_refunded"]) == ("refunded", 5000)
    # Still cancelled by the participant: the refund does not cancel it a second time.
    assert registration_now(client, registration["id"], user)["status"] == "cancelled"
    cancelled = outbox_rows(owner_engine, registration["id"], "registration.cancelled")
    assert [r["payload"]["reason"] for r in cancelled] == ["participant"]


@pytest.mark.parametrize(
    ("policy", "ticket", "paid", "fee"),
    [
        ({"refund_fee_percent": 15}, "full", 5000, 750),
        ({"refund_fee_amount": 1000}, "full", 5000, 1000),
        ({"refund_fee_amount": 1000}, "deposit", 2500, 1000),  # the deposit is what was paid
        ({"refund_fee_amount": 9999}, "deposit", 2500, 2500),  # a fee never exceeds the payment
    ],
)
def test_refund_minus_the_fee(
    client: TestClient, api, admin: dict, clock: Clock, policy, ticket, paid, fee
) -> None:
    shop = _shop(client, api, admin, refund_days_before_start=3, **policy)
    user, registration, payment = _paid(client, shop, ticket)
    clock.days_before(shop.event_body, 10)
    body = _cancel(client, registration["id"], user)
    assert (body["refund"]["rule"], body["refund"]["paid"], body["refund"]["fee"]) == (
        "minus_fee",
        paid,
        fee,
    )
    assert body["refund"]["amount"] == body["refund_due"] == paid - fee
    rid = uuid.UUID(registration["id"])
    asked = _in_tenant(client, shop, lambda uow: saga.refund_participant_cancellation(uow, rid))
    assert sum(r.amount for r in asked) == paid - fee
    submit_refunds(client)
    settle_sandbox(client)
    now = payment_now(client, payment["id"], user)
    assert now["amount_refunded"] == paid - fee
    assert now["status"] == ("partially_refunded" if paid - fee else "completed")


def test_nothing_after_the_deadline_or_without_a_policy(
    client: TestClient, api, admin: dict, clock: Clock, owner_engine: Engine
) -> None:
    shop = _shop(client, api, admin, refund_days_before_start=7, refund_fee_percent=10)
    user, registration, payment = _paid(client, shop)
    clock.days_before(shop.event_body, 7)  # the deadline itself is too late
    body = _cancel(client, registration["id"], user)
    assert (body["refund"]["rule"], body["refund"]["amount"], body["refund_due"]) == (
        "after_deadline",
        0,
        0,
    )
    assert _saga_record(client, owner_engine, registration["id"]) == "skipped"

    plain = _shop(client, api, admin)  # no policy: the behaviour before policies existed
    assert plain.event_body["refund_deadline"] is None
    user2, registration2, payment2 = _paid(client, plain)
    clock.days_before(plain.event_body, 300)
    body = _cancel(client, registration2["id"], user2)
    assert (body["refund"]["rule"], body["refund"]["amount"], body["refund"]["fee"]) == (
        "no_refunds",
        0,
        5000,
    )
    for pid in (payment["id"], payment2["id"]):
        assert (
            count_rows(owner_engine, "SELECT count(*) FROM refunds WHERE payment_id = :p", p=pid)
            == 0
        )


def test_what_was_refunded_already_counts_and_organizers_refund_nothing(
    client: TestClient, api, admin: dict, clock: Clock
) -> None:
    shop = _shop(client, api, admin, refund_days_before_start=1)
    user, registration, payment = _paid(client, shop)
    assert refund(client, payment["id"], shop.owner, amount=1000).status_code == 201
    clock.days_before(shop.event_body, 2)
    body = _cancel(client, registration["id"], user)
    assert (body["refund"]["rule"], body["refund"]["amount"]) == ("full", 4000)
    rid = uuid.UUID(registration["id"])
    _in_tenant(client, shop, lambda uow: saga.refund_participant_cancellation(uow, rid))
    submit_refunds(client)
    settle_sandbox(client)
    assert payment_now(client, payment["id"], user)["amount_refunded"] == 5000

    # An organizer's cancellation says it refunds nothing, whatever the policy.
    _, registration2, _ = _paid(client, shop)
    body = _cancel(client, registration2["id"], shop.owner)
    assert (body["refund"]["rule"], body["refund"]["amount"], body["refund_due"]) == (
        "by_organizer",
        0,
        None,
    )
    # Free registrations: nothing paid.
    free = shop.ticket_type(shop.event_id, name="Free", capacity=5)
    user3, registration3 = shop.participant(shop.event_id, free["id"])
    body = _cancel(client, registration3["id"], user3)
    assert (body["refund"]["rule"], body["refund"]["amount"]) == ("nothing_paid", 0)
    assert_error(cancel_registration(client, registration3["id"], user3), 409, "invalid_state")


def test_the_policy_is_validated_and_fixed_once_published(
    client: TestClient, api, admin: dict
) -> None:
    shop = _shop(client, api, admin)
    for fields, code in (
        ({"refund_fee_percent": 10}, "invalid_refund_policy"),  # a fee needs a deadline
        (
            {"refund_days_before_start": 1, "refund_fee_percent": 5, "refund_fee_amount": 100},
            "invalid_refund_policy",
        ),
        ({"refund_days_before_start": 1, "refund_fee_percent": 100}, "validation_error"),
        ({"refund_days_before_start": -1}, "validation_error"),
        ({"refund_days_before_start": 1, "refund_fee_amount": 0}, "validation_error"),
    ):
        assert_error(shop.create_event(**fields), 422, code)
    draft = shop.event(refund_days_before_start=14)
    put = lambda body: client.put(  # noqa: E731
        f"{V1}/events/{draft['id']}", json=body, headers=shop.owner["headers"]
    )
    assert_error(put({"refund_days_before_start": None, "refund_fee_percent": 5}), 422,
                 "invalid_refund_policy")  # fmt: skip
    assert_error(put({"refund_fee_amount": 500, "refund_fee_percent": 5}), 422,
                 "invalid_refund_policy")  # fmt: skip
    changed = put({"refund_fee_amount": 500})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["refund_days_before_start"], changed.json()["refund_fee_amount"]) == (
        14,
        500,
    )
    # Nothing half-written: the refused changes left the event as it was.
    assert changed.json()["refund_fee_percent"] is None
    shop.ticket_type(draft["id"], capacity=1)
    shop.publish(draft["id"])
    error = assert_error(put({"refund_fee_amount": 100}), 409, "field_locked")
    assert error["details"]["fields"] == ["refund_fee_amount"]
    assert_error(put({"refund_days_before_start": 30}), 409, "field_locked")


def test_the_saga_asks_once_over_several_payments(
    client: TestClient, api, admin: dict, clock: Clock
) -> None:
    """A deposit and its remainder: the policy's refund is spread oldest first, and a second
    run asks for nothing more even when the first payment has nothing left to refund by then
    (an organizer refunded the rest of it meanwhile)."""
    shop = _shop(client, api, admin, refund_days_before_start=2, refund_fee_amount=8500)
    user, registration, deposit = _paid(client, shop, "deposit")
    remainder = paying(client, registration["id"], user)
    settle_sandbox(client)
    assert payment_now(client, remainder["id"], user)["amount"] == 7500
    clock.days_before(shop.event_body, 5)
    body = _cancel(client, registration["id"], user)
    assert (body["refund"]["paid"], body["refund"]["fee"], body["refund"]["amount"]) == (
        10000,
        8500,
        1500,
    )
    rid = uuid.UUID(registration["id"])
    step = lambda uow: saga.refund_participant_cancellation(uow, rid)  # noqa: E731
    assert [(str(r.payment_id), r.amount) for r in _in_tenant(client, shop, step)] == [
        (deposit["id"], 1500)
    ]
    assert refund(client, deposit["id"], shop.owner).json()["amount"] == 1000  # the rest of it
    submit_refunds(client)
    settle_sandbox(client)
    assert [r.amount for r in _in_tenant(client, shop, step)] == [1500]
    assert payment_now(client, remainder["id"], user)["refunds"] == []
    assert payment_now(client, deposit["id"], user)["amount_refunded"] == 2500
