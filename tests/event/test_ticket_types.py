"""Ticket types of an event: creation, listing, editing, deletion, and who may do what."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    V1,
    Organizer,
    assert_error,
    at,
    auth,
    cancel_reservation,
    registered,
    reserved,
)


class TicketTypes(Organizer):
    """An organization with its owner, and the ticket type calls the tests below make."""

    def list(self, event_id: str, user: dict | None):
        return self.client.get(f"{V1}/events/{event_id}/ticket-types", headers=auth(user))

    def update(self, event_id: str, tt_id: str, user: dict | None = None, **changes):
        return self.client.put(
            f"{V1}/events/{event_id}/ticket-types/{tt_id}",
            json=changes,
            headers=(user or self.owner)["headers"],
        )

    def delete(self, event_id: str, tt_id: str, user: dict | None = None):
        return self.client.delete(
            f"{V1}/events/{event_id}/ticket-types/{tt_id}", headers=(user or self.owner)["headers"]
        )


@pytest.fixture
def tickets(client: TestClient, api, admin: dict) -> TicketTypes:
    return TicketTypes(client, api, admin)


@pytest.fixture
def event(tickets: TicketTypes) -> dict:
    return tickets.event()


# --- creation and listing -------------------------------------------------------------------------


def test_create_ticket_type_with_every_field(tickets: TicketTypes, event: dict) -> None:
    starts, ends = at(days=1), at(days=20)
    response = tickets.create_ticket_type(
        event["id"],
        name="Early bird",
        description="The first hundred",
        price_amount=2500,
        currency="USD",
        capacity=100,
        sales_starts_at=starts.isoformat(),
        sales_ends_at=ends.isoformat(),
        max_per_order=4,
        deposit_percent=20,
        is_active=False,
    )
    assert response.status_code == 201, response.text
    tt = response.json()
    assert uuid.UUID(tt["id"])
    assert tt["event_id"] == event["id"]
    assert tt["name"] == "Early bird"
    assert tt["description"] == "The first hundred"
    assert tt["price_amount"] == 2500
    assert tt["currency"] == "USD"
    assert tt["capacity"] == 100
    assert tt["sold"] == 0
    assert tt["available"] == 100
    assert datetime.fromisoformat(tt["sales_starts_at"]) == starts
    assert datetime.fromisoformat(tt["sales_ends_at"]) == ends
    assert tt["max_per_order"] == 4
    assert tt["deposit_amount"] is None
    assert tt["deposit_percent"] == 20
    assert tt["is_active"] is False


def test_ticket_type_defaults(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"], capacity=5)
    assert tt["price_amount"] == 0
    assert tt["currency"] == "EUR"
    assert tt["max_per_order"] == 10
    assert tt["deposit_amount"] is None and tt["deposit_percent"] is None
    assert tt["sales_starts_at"] is None and tt["sales_ends_at"] is None
    assert tt["is_active"] is True


def test_list_ticket_types_cheapest_first(tickets: TicketTypes, event: dict) -> None:
    vip = tickets.ticket_type(event["id"], name="VIP", price_amount=9000, deposit_amount=1000)
    free = tickets.ticket_type(event["id"], name="Free", price_amount=0)
    regular = tickets.ticket_type(event["id"], name="Regular", price_amount=1500)
    other = tickets.event()
    tickets.ticket_type(other["id"], name="Elsewhere")

    listed = tickets.list(event["id"], tickets.owner)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [free, regular, vip], "next_cursor": None}


def test_ticket_types_of_a_draft_are_for_members_only(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"])
    assert tickets.list(event["id"], tickets.member("analyst")).json()["items"] == [tt]
    for stranger in (None, tickets.api.register("stranger")):
        assert_error(tickets.list(event["id"], stranger), 404, "not_found")

    tickets.publish(event["id"])
    for reader in (None, tickets.api.register("reader")):
        response = tickets.list(event["id"], reader)
        assert response.status_code == 200, response.text
        assert [t["id"] for t in response.json()["items"]] == [tt["id"]]
    assert_error(tickets.list(str(uuid.uuid4()), tickets.owner), 404, "not_found")


def test_available_counts_what_is_sold(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"], capacity=5)
    tickets.publish(event["id"])
    tickets.participant(event["id"], tt["id"], quantity=2)
    [listed] = tickets.list(event["id"], None).json()["items"]
    assert listed["sold"] == 2
    assert listed["available"] == 3


def test_held_counts_the_seats_in_active_holds_for_members_only(
    tickets: TicketTypes, event: dict
) -> None:
    """``held`` is the part of ``sold`` still in holds: a hold adds to it, registering from the
    hold and cancelling it take it away; outsiders get null (holds are not theirs to see)."""
    tt = tickets.ticket_type(event["id"], capacity=10)
    other = tickets.ticket_type(event["id"], name="Other", capacity=10)
    tickets.publish(event["id"])
    tickets.participant(event["id"], tt["id"], quantity=1)
    holder, later = tickets.api.register("holder"), tickets.api.register("later")
    first = reserved(tickets.client, event["id"], holder, tt["id"], quantity=2)
    second = reserved(tickets.client, event["id"], later, tt["id"], quantity=3)

    def counts(user: dict | None) -> dict[str, tuple]:
        items = tickets.list(event["id"], user).json()["items"]
        return {t["id"]: (t["sold"], t["held"], t["available"]) for t in items}

    assert counts(tickets.owner) == {tt["id"]: (6, 5, 4), other["id"]: (0, 0, 10)}
    assert counts(tickets.member("analyst"))[tt["id"]] == (6, 5, 4)
    for outsider in (None, tickets.api.register("outsider")):
        assert counts(outsider)[tt["id"]] == (6, None, 4)

    registered(tickets.client, event["id"], holder, reservation_id=first["id"])
    assert counts(tickets.owner)[tt["id"]] == (6, 3, 4)
    assert cancel_reservation(tickets.client, second["id"], later).is_success
    assert counts(tickets.owner)[tt["id"]] == (3, 0, 7)
    # The answer of an edit carries it too.
    edited = tickets.update(event["id"], tt["id"], name="Renamed")
    assert (edited.json()["sold"], edited.json()["held"]) == (3, 0)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"price_amount": 1000, "deposit_amount": 1000}, "invalid_deposit"),
        ({"price_amount": 1000, "deposit_amount": 2000}, "invalid_deposit"),
        ({"price_amount": 1000, "deposit_amount": 100, "deposit_percent": 10}, "invalid_deposit"),
        ({"price_amount": 0, "deposit_percent": 10}, "invalid_deposit"),
        ({"price_amount": 0, "deposit_amount": 1}, "invalid_deposit"),
        (
            {"sales_starts_at": at(days=5).isoformat(), "sales_ends_at": at(days=4).isoformat()},
            "invalid_sales_window",
        ),
    ],
)
def test_create_ticket_type_domain_validation(
    tickets: TicketTypes, event: dict, fields: dict, code: str
) -> None:
    assert_error(tickets.create_ticket_type(event["id"], **fields), 422, code)
    assert tickets.list(event["id"], tickets.owner).json()["items"] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"capacity": -1},
        {"price_amount": -1},
        {"currency": "eur"},
        {"currency": "EURO"},
        {"max_per_order": 0},
        {"max_per_order": 101},
        {"deposit_percent": 0},
        {"deposit_percent": 100},
        {"deposit_amount": 0},
        {"sales_starts_at": "2030-01-01T00:00:00"},  # no time zone
        {"colour": "red"},
    ],
)
def test_create_ticket_type_request_validation(
    tickets: TicketTypes, event: dict, fields: dict
) -> None:
    assert_error(tickets.create_ticket_type(event["id"], **fields), 422, "validation_error")


def test_missing_capacity_is_a_validation_error(
    client: TestClient, tickets: TicketTypes, event: dict
) -> None:
    response = client.post(
        f"{V1}/events/{event['id']}/ticket-types",
        json={"name": "No capacity"},
        headers=tickets.owner["headers"],
    )
    assert_error(response, 422, "validation_error")


def test_who_may_manage_ticket_types(tickets: TicketTypes, event: dict) -> None:
    moderator = tickets.member("moderator")
    by_moderator = tickets.create_ticket_type(event["id"], moderator, name="By moderator")
    assert by_moderator.status_code == 201, by_moderator.text
    tt = by_moderator.json()

    analyst = tickets.member("analyst")
    assert_error(tickets.create_ticket_type(event["id"], analyst), 403, "insufficient_role")
    assert_error(tickets.update(event["id"], tt["id"], analyst, name="x"), 403, "insufficient_role")
    assert_error(tickets.delete(event["id"], tt["id"], analyst), 403, "insufficient_role")

    stranger = tickets.api.register("stranger")
    assert_error(tickets.create_ticket_type(event["id"], stranger), 404, "not_found")
    assert_error(tickets.update(event["id"], tt["id"], stranger, name="x"), 404, "not_found")
    assert_error(tickets.delete(event["id"], tt["id"], stranger), 404, "not_found")
    assert_error(tickets.create_ticket_type(str(uuid.uuid4())), 404, "not_found")

    unauthenticated = tickets.client.post(
        f"{V1}/events/{event['id']}/ticket-types", json={"name": "x", "capacity": 1}
    )
    assert_error(unauthenticated, 401, "unauthorized")
    assert [t["name"] for t in tickets.list(event["id"], tickets.owner).json()["items"]] == [
        "By moderator"
    ]


@pytest.mark.parametrize("closing", ["cancel", "complete"])
def test_closed_events_take_no_new_ticket_types(
    tickets: TicketTypes, event: dict, closing: str
) -> None:
    tickets.ticket_type(event["id"])
    if closing == "complete":
        tickets.publish(event["id"])
    tickets.moved(event["id"], closing)
    status = "cancelled" if closing == "cancel" else "completed"
    error = assert_error(tickets.create_ticket_type(event["id"]), 409, "invalid_state")
    assert error["details"] == {"status": status}


# --- editing and deletion -------------------------------------------------------------------------


def test_update_ticket_type(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"], price_amount=1000)
    response = tickets.update(
        event["id"],
        tt["id"],
        name="Renamed",
        capacity=20,
        price_amount=1200,
        deposit_amount=200,
        max_per_order=2,
        is_active=False,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "Renamed"
    assert updated["capacity"] == 20
    assert updated["available"] == 20
    assert updated["price_amount"] == 1200
    assert updated["deposit_amount"] == 200
    assert updated["max_per_order"] == 2
    assert updated["is_active"] is False
    assert updated["currency"] == tt["currency"]
    assert tickets.list(event["id"], tickets.owner).json()["items"] == [updated]

    switched = tickets.update(event["id"], tt["id"], deposit_amount=None, deposit_percent=25)
    assert switched.status_code == 200, switched.text
    assert switched.json()["deposit_amount"] is None
    assert switched.json()["deposit_percent"] == 25


def test_update_validation(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"], price_amount=1000, deposit_amount=100)
    assert_error(tickets.update(event["id"], tt["id"], deposit_percent=10), 422, "invalid_deposit")
    assert_error(tickets.update(event["id"], tt["id"], price_amount=50), 422, "invalid_deposit")
    assert_error(
        tickets.update(
            event["id"],
            tt["id"],
            sales_starts_at=at(days=3).isoformat(),
            sales_ends_at=at(days=2).isoformat(),
        ),
        422,
        "invalid_sales_window",
    )
    for field in ("name", "price_amount", "currency", "capacity", "max_per_order", "is_active"):
        assert_error(
            tickets.update(event["id"], tt["id"], **{field: None}), 422, "validation_error"
        )
    assert_error(tickets.update(event["id"], tt["id"], sold=0), 422, "validation_error")
    assert tickets.list(event["id"], tickets.owner).json()["items"] == [tt]


def test_capacity_never_below_sold(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"], capacity=5)
    tickets.publish(event["id"])
    tickets.participant(event["id"], tt["id"], quantity=3)
    error = assert_error(
        tickets.update(event["id"], tt["id"], capacity=2), 409, "capacity_below_sold"
    )
    assert error["details"] == {"sold": 3}
    at_sold = tickets.update(event["id"], tt["id"], capacity=3)
    assert at_sold.status_code == 200, at_sold.text
    assert at_sold.json()["available"] == 0


def test_prices_are_fixed_once_seats_are_taken(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"], price_amount=1000)
    tickets.publish(event["id"])
    # Nothing sold yet: the price may still change.
    repriced = tickets.update(event["id"], tt["id"], price_amount=1100)
    assert repriced.status_code == 200, repriced.text

    tickets.participant(event["id"], tt["id"])
    for change in (
        {"price_amount": 900},
        {"currency": "USD"},
        {"deposit_amount": 100},
        {"deposit_percent": 10},
    ):
        error = assert_error(tickets.update(event["id"], tt["id"], **change), 409, "field_locked")
        assert error["details"] == {"fields": list(change), "status": "published"}
    safe = tickets.update(event["id"], tt["id"], name="Still editable", capacity=50)
    assert safe.status_code == 200, safe.text
    assert safe.json()["price_amount"] == 1100


def test_ticket_type_must_belong_to_the_event(tickets: TicketTypes, event: dict) -> None:
    tt = tickets.ticket_type(event["id"])
    other = tickets.event()
    assert_error(tickets.update(other["id"], tt["id"], name="x"), 404, "not_found")
    assert_error(tickets.delete(other["id"], tt["id"]), 404, "not_found")
    assert_error(tickets.update(event["id"], str(uuid.uuid4()), name="x"), 404, "not_found")


def test_delete_an_unused_ticket_type(tickets: TicketTypes, event: dict) -> None:
    kept = tickets.ticket_type(event["id"], name="Kept")
    gone = tickets.ticket_type(event["id"], name="Gone")
    response = tickets.delete(event["id"], gone["id"])
    assert response.status_code == 204, response.text
    assert tickets.list(event["id"], tickets.owner).json()["items"] == [kept]
    assert_error(tickets.update(event["id"], gone["id"], name="x"), 404, "not_found")
    assert_error(tickets.delete(event["id"], gone["id"]), 404, "not_found")


def test_a_ticket_type_with_seats_taken_cannot_be_deleted(
    tickets: TicketTypes, event: dict
) -> None:
    tt = tickets.ticket_type(event["id"])
    tickets.publish(event["id"])
    tickets.participant(event["id"], tt["id"])
    assert_error(tickets.delete(event["id"], tt["id"]), 409, "ticket_type_in_use")
    assert [t["id"] for t in tickets.list(event["id"], None).json()["items"]] == [tt["id"]]
