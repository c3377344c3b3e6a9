"""Reservations: timed seat holds, their expiry by the sweeper, giving them back, converting them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    V1,
    Organizer,
    assert_error,
    backdate_reservation,
    cancel_reservation,
    get_reservation,
    now,
    outbox_rows,
    register,
    reserve,
    reserved,
    sweep,
)


@pytest.fixture
def organizer(client: TestClient, api, admin: dict) -> Organizer:
    return Organizer(client, api, admin)


@pytest.fixture
def participant(api) -> dict:
    return api.register("participant")


# --- holding seats --------------------------------------------------------------------------------


def test_reserve_holds_seats_for_the_default_hold_time(
    client: TestClient, organizer: Organizer, participant: dict, owner_engine: Engine
) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], capacity=5)
    before = now()
    response = reserve(client, event["id"], participant, tt["id"], quantity=3)
    after = now()
    assert response.status_code == 201, response.text
    hold = response.json()
    assert uuid.UUID(hold["id"])
    assert hold["event_id"] == event["id"]
    assert hold["ticket_type_id"] == tt["id"]
    assert hold["quantity"] == 3
    assert hold["status"] == "active"
    expires = datetime.fromisoformat(hold["expires_at"])
    assert before + timedelta(minutes=15) <= expires <= after + timedelta(minutes=15)
    assert hold["created_at"]
    assert organizer.sold(event["id"], tt["id"]) == 3

    [created] = outbox_rows(owner_engine, hold["id"])
    assert created["event_type"] == "reservation.created"
    assert created["aggregate_type"] == "reservation"
    assert str(created["tenant_id"]) == organizer.org["id"]
    payload = created["payload"]
    assert payload["reservation_id"] == hold["id"]
    assert payload["event_id"] == event["id"]
    assert payload["ticket_type_id"] == tt["id"]
    assert payload["user_id"] == participant["user"]["id"]
    assert payload["quantity"] == 3
    assert datetime.fromisoformat(payload["expires_at"]) == expires
    assert payload["from_waitlist"] is False


def test_hold_time_is_the_events(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    event = organizer.event(publish=True, hold_minutes=45)
    tt = organizer.ticket_type(event["id"])
    before = now()
    hold = reserved(client, event["id"], participant, tt["id"])
    expires = datetime.fromisoformat(hold["expires_at"])
    assert before + timedelta(minutes=45) <= expires <= now() + timedelta(minutes=45)


def test_holds_cannot_oversell(client: TestClient, organizer: Organizer) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], capacity=3)
    reserved(client, event["id"], organizer.api.register("a"), tt["id"], quantity=2)
    too_many = reserve(client, event["id"], organizer.api.register("b"), tt["id"], quantity=2)
    assert assert_error(too_many, 409, "sold_out")["details"] == {"ticket_type_id": tt["id"]}
    reserved(client, event["id"], organizer.api.register("c"), tt["id"], quantity=1)
    assert_error(
        reserve(client, event["id"], organizer.api.register("d"), tt["id"]), 409, "sold_out"
    )
    # A direct registration is refused too while every seat is held.
    assert_error(
        register(client, event["id"], organizer.api.register("e"), ticket_type_id=tt["id"]),
        409,
        "sold_out",
    )
    assert organizer.sold(event["id"], tt["id"]) == 3


def test_reserve_rules(client: TestClient, organizer: Organizer, participant: dict) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], max_per_order=2)
    too_many = reserve(client, event["id"], participant, tt["id"], quantity=3)
    assert assert_error(too_many, 422, "max_per_order")["details"] == {"max_per_order": 2}
    inactive = organizer.ticket_type(event["id"], is_active=False)
    assert_error(reserve(client, event["id"], participant, inactive["id"]), 409, "not_on_sale")
    for quantity in (0, 101):
        assert_error(
            reserve(client, event["id"], participant, tt["id"], quantity), 422, "validation_error"
        )
    assert_error(reserve(client, event["id"], participant, str(uuid.uuid4())), 404, "not_found")
    other = organizer.event(publish=True)
    assert_error(reserve(client, other["id"], participant, tt["id"]), 404, "not_found")
    assert_error(reserve(client, str(uuid.uuid4()), participant, tt["id"]), 404, "not_found")
    assert_error(reserve(client, event["id"], None, tt["id"]), 401, "unauthorized")
    assert organizer.sold(event["id"], tt["id"]) == 0


def test_no_holds_on_drafts_or_closed_events(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    draft = organizer.event()
    tt = organizer.ticket_type(draft["id"])
    assert_error(reserve(client, draft["id"], participant, tt["id"]), 404, "not_found")

    closed = organizer.event(
        publish=True, registration_closes_at=(now() - timedelta(minutes=1)).isoformat()
    )
    closed_tt = organizer.ticket_type(closed["id"])
    assert_error(
        reserve(client, closed["id"], participant, closed_tt["id"]), 409, "registration_closed"
    )

    cancelled = organizer.event(publish=True)
    cancelled_tt = organizer.ticket_type(cancelled["id"])
    organizer.moved(cancelled["id"], "cancel")
    response = reserve(client, cancelled["id"], participant, cancelled_tt["id"])
    assert assert_error(response, 409, "registration_closed")["details"] == {"status": "cancelled"}


def test_a_hold_is_its_holders(client: TestClient, organizer: Organizer, participant: dict) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"])
    hold = reserved(client, event["id"], participant, tt["id"])
    assert get_reservation(client, hold["id"], participant).json() == hold
    stranger = organizer.api.register("stranger")
    for response in (
        get_reservation(client, hold["id"], stranger),
        get_reservation(client, hold["id"], organizer.owner),
        cancel_reservation(client, hold["id"], stranger),
        register(client, event["id"], stranger, reservation_id=hold["id"]),
        get_reservation(client, str(uuid.uuid4()), participant),
    ):
        assert_error(response, 404, "not_found")
    assert get_reservation(client, hold["id"], participant).json()["status"] == "active"
    assert_error(client.get(f"{V1}/reservations/{hold['id']}"), 401, "unauthorized")


# --- giving a hold back ---------------------------------------------------------------------------


def test_cancel_a_hold_frees_its_seats(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], capacity=2)
    hold = reserved(client, event["id"], participant, tt["id"], quantity=2)
    response = cancel_reservation(client, hold["id"], participant)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert organizer.sold(event["id"], tt["id"]) == 0

    again = cancel_reservation(client, hold["id"], participant)
    assert assert_error(again, 409, "invalid_state")["details"] == {"status": "cancelled"}
    converting = register(client, event["id"], participant, reservation_id=hold["id"])
    assert assert_error(converting, 409, "reservation_expired")["details"] == {
        "status": "cancelled"
    }
    assert organizer.sold(event["id"], tt["id"]) == 0
    reserved(client, event["id"], organizer.api.register("next"), tt["id"], quantity=2)


# --- expiry by the sweeper ------------------------------------------------------------------------


def test_the_sweeper_expires_due_holds(
    client: TestClient, organizer: Organizer, participant: dict, owner_engine: Engine
) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], capacity=2)
    due = reserved(client, event["id"], participant, tt["id"], quantity=2)
    backdate_reservation(owner_engine, due["id"])
    # Due but not yet swept: the seats are still held, yet the hold no longer converts.
    assert_error(
        reserve(client, event["id"], organizer.api.register("early"), tt["id"]), 409, "sold_out"
    )
    converting = register(client, event["id"], participant, reservation_id=due["id"])
    assert assert_error(converting, 409, "reservation_expired")["details"] == {"status": "active"}

    sweep(client)
    assert get_reservation(client, due["id"], participant).json()["status"] == "expired"
    assert organizer.sold(event["id"], tt["id"]) == 0
    facts = outbox_rows(owner_engine, due["id"])
    assert [f["event_type"] for f in facts] == ["reservation.created", "reservation.expired"]
    expired = facts[-1]
    assert expired["aggregate_type"] == "reservation"
    assert str(expired["tenant_id"]) == organizer.org["id"]
    assert expired["payload"]["reservation_id"] == due["id"]
    assert expired["payload"]["event_id"] == event["id"]
    assert expired["payload"]["ticket_type_id"] == tt["id"]
    assert expired["payload"]["user_id"] == participant["user"]["id"]
    assert expired["payload"]["quantity"] == 2

    converting = register(client, event["id"], participant, reservation_id=due["id"])
    assert assert_error(converting, 409, "reservation_expired")["details"] == {"status": "expired"}
    assert_error(cancel_reservation(client, due["id"], participant), 409, "invalid_state")
    # Sweeping again changes nothing.
    sweep(client)
    assert organizer.sold(event["id"], tt["id"]) == 0
    assert len(outbox_rows(owner_engine, due["id"])) == 2


def test_the_sweeper_leaves_live_and_converted_holds(
    client: TestClient, organizer: Organizer, owner_engine: Engine
) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], capacity=5)
    live_user, converted_user = organizer.api.register("live"), organizer.api.register("converted")
    live = reserved(client, event["id"], live_user, tt["id"])
    converted = reserved(client, event["id"], converted_user, tt["id"])
    registered = register(client, event["id"], converted_user, reservation_id=converted["id"])
    assert registered.status_code == 201, registered.text
    backdate_reservation(owner_engine, converted["id"])

    sweep(client)
    assert get_reservation(client, live["id"], live_user).json()["status"] == "active"
    assert get_reservation(client, converted["id"], converted_user).json()["status"] == "converted"
    assert organizer.sold(event["id"], tt["id"]) == 2
    assert [f["event_type"] for f in outbox_rows(owner_engine, converted["id"])] == [
        "reservation.created"
    ]


# --- converting -----------------------------------------------------------------------------------


def test_convert_a_hold(
    client: TestClient, organizer: Organizer, participant: dict, owner_engine: Engine
) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], capacity=3)
    hold = reserved(client, event["id"], participant, tt["id"], quantity=2)
    response = register(client, event["id"], participant, reservation_id=hold["id"])
    assert response.status_code == 201, response.text
    registration = response.json()
    assert registration["status"] == "confirmed"
    assert registration["reservation_id"] == hold["id"]
    assert registration["quantity"] == 2
    assert get_reservation(client, hold["id"], participant).json()["status"] == "converted"
    assert organizer.sold(event["id"], tt["id"]) == 2
    assert [f["event_type"] for f in outbox_rows(owner_engine, registration["id"])] == [
        "registration.created",
        "registration.confirmed",
    ]
    # A converted hold is gone: it can be neither converted again nor given back.
    again = register(client, event["id"], participant, reservation_id=hold["id"])
    assert assert_error(again, 409, "reservation_expired")["details"] == {"status": "converted"}
    assert_error(cancel_reservation(client, hold["id"], participant), 409, "invalid_state")
    assert organizer.sold(event["id"], tt["id"]) == 2


def test_a_hold_converts_only_at_its_own_event(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"])
    hold = reserved(client, event["id"], participant, tt["id"])
    other = organizer.event(publish=True)
    assert_error(
        register(client, other["id"], participant, reservation_id=hold["id"]), 404, "not_found"
    )
    assert get_reservation(client, hold["id"], participant).json()["status"] == "active"


def test_a_hold_converts_after_registration_closed(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    """The hold was taken while registration was open: it is honoured until it expires."""
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"])
    hold = reserved(client, event["id"], participant, tt["id"])
    closed = client.put(
        f"{V1}/events/{event['id']}",
        json={"registration_closes_at": (now() - timedelta(seconds=1)).isoformat()},
        headers=organizer.owner["headers"],
    )
    assert closed.status_code == 200, closed.text
    response = register(client, event["id"], participant, reservation_id=hold["id"])
    assert response.status_code == 201, response.text


def test_a_hold_does_not_convert_once_the_event_is_cancelled(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"])
    hold = reserved(client, event["id"], participant, tt["id"])
    organizer.moved(event["id"], "cancel")
    response = register(client, event["id"], participant, reservation_id=hold["id"])
    assert_error(response, 409, "registration_closed")


def test_give_a_hold_back_after_the_event_was_unpublished(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    """Unpublishing hides the event from participants; a hold must still be theirs to give back
    (else its seats stay taken until the sweeper expires it)."""
    event = organizer.event(publish=True)
    tt = organizer.ticket_type(event["id"], capacity=2)
    hold = reserved(client, event["id"], participant, tt["id"], quantity=2)
    organizer.moved(event["id"], "unpublish")
    response = cancel_reservation(client, hold["id"], participant)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert organizer.sold(event["id"], tt["id"]) == 0


# --- holds per account (issue L, finding 9: one account held all 200 seats in seconds) -----------


def test_an_account_holds_at_most_the_events_limits_and_the_error_says_so(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    event = organizer.event(publish=True)
    assert (event["max_holds_per_account"], event["max_held_seats_per_account"]) == (3, 10)
    tt = organizer.ticket_type(event["id"], capacity=200)
    for _ in range(2):
        reserved(client, event["id"], participant, tt["id"], quantity=4)
    too_many_seats = reserve(client, event["id"], participant, tt["id"], quantity=3)
    body = assert_error(too_many_seats, 409, "hold_limit_reached")
    assert body["details"] == {"scope": "event", "limit": 10, "held": 8, "requested": 3}
    assert "10" in body["message"]
    reserved(client, event["id"], participant, tt["id"], quantity=2)  # 10 seats in 3 holds
    fourth = reserve(client, event["id"], participant, tt["id"], quantity=1)
    body = assert_error(fourth, 409, "hold_limit_reached")
    assert body["details"]["scope"] == "event" and body["details"]["limit"] == 10
    # others are not limited by this account's holds
    reserved(client, event["id"], organizer.api.register("other"), tt["id"], quantity=4)


def test_the_number_of_holds_and_a_ticket_types_seats_are_capped_as_the_organizer_sets(
    client: TestClient, organizer: Organizer, participant: dict
) -> None:
    event = organizer.event(publish=True)
    changed = client.put(
        f"{V1}/events/{event['id']}",
        json={"max_holds_per_account": 2, "max_held_seats_per_account": 50},
        headers=organizer.owner["headers"],
    )
    assert changed.status_code == 200, changed.text
    vip = organizer.ticket_type(event["id"], capacity=20, max_held_seats_per_account=2)
    floor = organizer.ticket_type(event["id"], name="Floor", capacity=100)
    assert vip["max_held_seats_per_account"] == 2 and floor["max_held_seats_per_account"] is None
    body = assert_error(
        reserve(client, event["id"], participant, vip["id"], quantity=3), 409, "hold_limit_reached"
    )
    assert body["details"] == {"scope": "ticket_type", "limit": 2, "held": 0, "requested": 3}
    reserved(client, event["id"], participant, vip["id"], quantity=2)
    first = reserved(client, event["id"], participant, floor["id"], quantity=1)
    body = assert_error(
        reserve(client, event["id"], participant, floor["id"], quantity=1),
        409,
        "hold_limit_reached",
    )
    assert body["details"] == {"scope": "holds", "limit": 2, "held": 2, "requested": 1}
    # a hold given back frees its place
    assert cancel_reservation(client, first["id"], participant).status_code == 200
    reserved(client, event["id"], participant, floor["id"], quantity=1)
