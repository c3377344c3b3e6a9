"""The worker end to end, against the real broker and PostgreSQL with a real relay: register for a
paid event through the API -> the relay publishes -> the saga starts the payment -> the sandbox
pays -> the registration is confirmed and its ticket reaches the Telegram stand-in; cancelling
the event refunds the payment, cancels the registration and sends the notice."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    V1,
    Organizer,
    auth,
    registered,
    registration_now,
    settle_sandbox,
    submit_refunds,
)
from tests.notification.conftest import link_telegram
from tests.worker.conftest import scalar, wait_for


def _payments(client: TestClient, registration_id: str, user: dict) -> list[dict]:
    response = client.get(f"{V1}/registrations/{registration_id}/payments", headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()["items"]


@pytest.mark.slow
def test_paid_registration_to_ticket_and_cancellation_to_refund(
    client, api, admin, owner_engine, telegram, worker_settings, relays, workers
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(capacity=5, price_amount=5000)
    user = api.register("payer")
    chat = link_telegram(owner_engine, user)
    # Started once the chat is linked: a worker that handled the sign-up first would send no
    # Telegram welcome (a race a backlog of earlier tests' events used to hide).
    relays(worker_settings, "relay-e2e")
    worker = workers(worker_settings)

    t0 = time.monotonic()
    registration = registered(client, event["id"], user, ticket_type_id=ticket_type["id"])
    assert registration["status"] == "pending_payment"

    # The saga started the payment (nobody called POST /payments).
    [payment] = wait_for(
        lambda: _payments(client, registration["id"], user), 30, "the saga to start the payment"
    )
    assert payment["status"] == "pending" and payment["amount"] == 5000
    initiated_after = time.monotonic() - t0

    settle_sandbox(client)  # the sandbox pays: its webhooks reach our endpoint
    wait_for(
        lambda: registration_now(client, registration["id"], user)["status"] == "confirmed",
        30,
        "the registration to be confirmed",
    )
    ticket = wait_for(
        lambda: [m for m in telegram.to(chat) if m["method"] == "sendPhoto"],
        30,
        "the ticket to reach Telegram",
    )
    assert len(ticket) == 1 and ticket[0]["photo_type"] == "image/png"
    wait_for(lambda: len(telegram.to(chat)) >= 3, 30, "welcome, ticket and receipt")
    # The saga consumed payment.completed after the webhook had confirmed: once, nothing more.
    wait_for(
        lambda: scalar(
            owner_engine,
            "SELECT count(*) FROM inbox WHERE consumer = 'worker.payment-saga' AND event_id IN "
            "(SELECT id FROM outbox WHERE aggregate_id = :p AND event_type = 'payment.completed')",
            p=payment["id"],
        ),
        30,
        "the saga to consume payment.completed",
    )
    assert (
        scalar(
            owner_engine,
            "SELECT count(*) FROM outbox WHERE aggregate_id = :r "
            "AND event_type = 'registration.confirmed'",
            r=registration["id"],
        )
        == 1
    )
    assert registration_now(client, registration["id"], user)["amount_paid"] == 5000

    # Cancel the event: the saga asks for the refund and cancels the registration.
    org.moved(event["id"], "cancel", reason="venue flooded")
    wait_for(
        lambda: scalar(owner_engine, "SELECT count(*) FROM refunds WHERE payment_id = :p",
                       p=payment["id"]),
        30,
        "the saga to ask for the refund",
    )  # fmt: skip
    wait_for(
        lambda: registration_now(client, registration["id"], user)["status"] == "cancelled",
        30,
        "the registration to be cancelled",
    )
    assert submit_refunds(client) >= 1  # the payment workers hand it (and others') over
    settle_sandbox(client)  # refund.succeeded -> payment.refunded
    notice = wait_for(
        lambda: [m for m in telegram.to(chat) if "venue flooded" in m.get("text", "")],
        30,
        "the cancellation notice",
    )
    assert len(notice) == 1
    wait_for(
        lambda: scalar(
            owner_engine,
            "SELECT count(*) FROM inbox WHERE consumer = 'worker.payment-saga' AND event_id IN "
            "(SELECT id FROM outbox WHERE aggregate_id = :p AND event_type = 'payment.refunded')",
            p=payment["id"],
        ),
        30,
        "the saga to consume payment.refunded",
    )
    assert scalar(owner_engine, "SELECT status FROM payments WHERE id = :p", p=payment["id"]) == (
        "refunded"
    )
    refund_status = "SELECT status FROM refunds WHERE payment_id = :p"
    assert scalar(owner_engine, refund_status, p=payment["id"]) == "succeeded"
    assert scalar(owner_engine, "SELECT count(*) FROM refunds WHERE payment_id = :p",
                  p=payment["id"]) == 1  # fmt: skip
    assert registration_now(client, registration["id"], user)["status"] == "cancelled"
    reason = "SELECT cancel_reason FROM registrations WHERE id = :r"
    assert scalar(owner_engine, reason, r=registration["id"]) == "event_cancelled"
    assert worker.processor is not None and worker.processor.dead_letters == 0
    print(f"payment initiated {initiated_after:.2f}s after the registration")
