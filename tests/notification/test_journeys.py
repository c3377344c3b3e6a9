"""People hear about changes, end to end: API -> outbox -> relay -> Kafka -> the notifications
agent of a running worker -> the SMTP stand-in. A private event's publication reaches its group's
members; an edit of the venue or the time reaches the registrants, a description edit nobody; an
unpublished event stays readable to its registrant (not to others); a failed payment, a refund and
a registration cancelled for non-payment each reach the participant."""

from __future__ import annotations

import pytest

from tests.factories import (
    V1,
    Organizer,
    auth,
    refund,
    registered,
    registration_now,
    sandbox,
    settle_sandbox,
    submit_refunds,
    sweep,
)
from tests.notification.conftest import set_locale
from tests.streams.conftest import relays  # noqa: F401  (fixture)
from tests.worker.conftest import (  # noqa: F401  (fixtures)
    _empty_sandbox_queue,
    scalar,
    wait_for,
    worker_settings,
    workers,
)

pytestmark = pytest.mark.slow


def _subjects(smtp, user: dict) -> list[str]:
    return [m["Subject"] for m in smtp.to(user["email"])]


def _arrived(smtp, user: dict, subject: str, what: str) -> None:
    wait_for(lambda: subject in _subjects(smtp, user), 60, what)


def _text(smtp, user: dict, subject: str) -> str:
    message = next(m for m in smtp.to(user["email"]) if m["Subject"] == subject)
    return message.get_body(("plain",)).get_content()


def _edit(client, event_id: str, owner: dict, **changes) -> dict:
    response = client.put(f"{V1}/events/{event_id}", json=changes, headers=owner["headers"])
    assert response.status_code == 200, response.text
    return response.json()


def test_group_publication_changes_and_unpublishing(
    client,
    api,
    admin,
    owner_engine,
    smtp,
    worker_settings,  # noqa: F811
    relays,  # noqa: F811
    workers,  # noqa: F811
) -> None:
    org = Organizer(client, api, admin)
    group, member = org.group_with_member()
    set_locale(owner_engine, member, "ru")
    outsider = api.register("outsider")
    relays(worker_settings, "relay-journeys")
    workers(worker_settings)

    event = org.event(visibility="private", group_id=group["id"], title="Club Night",
                      venue="Hall A")  # fmt: skip
    ticket_type = org.ticket_type(event["id"], capacity=5)
    org.publish(event["id"])
    announced = f"Новое в группе «{group['name']}»: «Club Night»"
    _arrived(smtp, member, announced, "the group's announcement")
    assert "Где: Hall A" in _text(smtp, member, announced)

    registration = registered(client, event["id"], member, ticket_type_id=ticket_type["id"])
    _edit(client, event["id"], org.owner, description="Bring shoes")  # nobody hears of it
    _edit(client, event["id"], org.owner, venue="Hall B")
    changed = "Изменения: «Club Night»"
    _arrived(smtp, member, changed, "the venue change")
    assert "Где: Hall B (новое)" in _text(smtp, member, changed)
    assert "Когда" not in _text(smtp, member, changed)
    # In order per event: the description edit was handled before the venue edit, and sent nothing.
    assert _subjects(smtp, member).count(changed) == 1

    # Unpublished: still the registrant's to read, with its ticket types; nobody else's.
    org.moved(event["id"], "unpublish")
    mine = client.get(f"{V1}/events/{event['id']}", headers=auth(member))
    assert mine.status_code == 200, mine.text
    types = client.get(f"{V1}/events/{event['id']}/ticket-types", headers=auth(member))
    assert types.status_code == 200 and [t["id"] for t in types.json()["items"]] == [
        ticket_type["id"]
    ]
    assert registration_now(client, registration["id"], member)["status"] == "confirmed"
    assert client.get(f"{V1}/events/{event['id']}", headers=auth(outsider)).status_code == 404

    # The time moves while unpublished (it is locked while published): the registrant hears it.
    _edit(client, event["id"], org.owner, starts_at="2031-05-01T18:00:00+00:00",
          ends_at="2031-05-01T21:00:00+00:00", timezone="UTC")  # fmt: skip
    wait_for(lambda: _subjects(smtp, member).count(changed) == 2, 60, "the time change")
    last = [m for m in smtp.to(member["email"]) if m["Subject"] == changed][-1]
    assert "Когда: 2031-05-01 18:00 (UTC) (новое)" in last.get_body(("plain",)).get_content()

    # Published again: the member is registered already, so no second announcement.
    org.publish(event["id"])
    org.moved(event["id"], "cancel", reason="roof leak")
    _arrived(smtp, member, "Отменено: «Club Night»", "the cancellation")
    assert _subjects(smtp, member).count(announced) == 1


def test_payment_failed_refund_and_unpaid_registration(
    client,
    api,
    admin,
    owner_engine,
    smtp,
    worker_settings,  # noqa: F811
    relays,  # noqa: F811
    workers,  # noqa: F811
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(capacity=5, price_amount=2500, title="Paid Gala")
    relays(worker_settings, "relay-payments")
    workers(worker_settings)

    def pending(name: str) -> tuple[dict, dict]:
        user = api.register(name)
        registration = registered(client, event["id"], user, ticket_type_id=ticket_type["id"])
        assert registration["status"] == "pending_payment"
        # The saga starts the payment (nobody called POST /payments).
        wait_for(
            lambda: scalar(owner_engine, "SELECT count(*) FROM payments WHERE registration_id = :r",
                           r=registration["id"]),
            60,
            "the saga to start the payment",
        )  # fmt: skip
        return user, registration

    # Failed: the payer hears it; the saga cancels the registration (no second message for that).
    sandbox(client).script("failed")  # the outcome of the next payment made
    failing, failed_registration = pending("failing")
    settle_sandbox(client)
    _arrived(smtp, failing, "Payment failed: 25.00 EUR for Paid Gala", "the failure notice")
    wait_for(
        lambda: (
            registration_now(client, failed_registration["id"], failing)["status"] == "cancelled"
        ),
        60,
        "the saga to cancel the registration",
    )

    # Refunded in part by the organizer.
    payer, paid_registration = pending("payer")
    settle_sandbox(client)
    wait_for(
        lambda: registration_now(client, paid_registration["id"], payer)["status"] == "confirmed",
        60,
        "the payment to confirm the registration",
    )
    payment_id = scalar(owner_engine, "SELECT id FROM payments WHERE registration_id = :r",
                        r=paid_registration["id"])  # fmt: skip
    answer = refund(client, str(payment_id), org.owner, amount=1000, note="late start")
    assert answer.status_code == 201, answer.text
    submit_refunds(client)
    settle_sandbox(client)
    _arrived(smtp, payer, "Refund: 10.00 EUR for Paid Gala", "the refund notice")
    assert "Refunded so far: 10.00 EUR of 25.00 EUR." in _text(
        smtp, payer, "Refund: 10.00 EUR for Paid Gala"
    )

    # Not paid in time: the sweeper cancels it, the participant hears why.
    late, late_registration = pending("late")
    with owner_engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE registrations SET created_at = now() - interval '2 days' WHERE id = %s",
            (late_registration["id"],),
        )
    sweep(client)
    assert registration_now(client, late_registration["id"], late)["status"] == "cancelled"
    _arrived(smtp, late, "Registration cancelled: Paid Gala", "the non-payment notice")
    assert "it was not paid in time." in _text(smtp, late, "Registration cancelled: Paid Gala")
    # None for the failed one's cancellation (its payment_failed said so), none twice.
    assert not any("Registration cancelled" in s for s in _subjects(smtp, failing))
    assert _subjects(smtp, late).count("Registration cancelled: Paid Gala") == 1
