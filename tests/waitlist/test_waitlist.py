"""Waitlists of sold-out ticket types: enrolment, the queue going first, offers made by the sweeper
(priority, then arrival), unused offers passing on, accepted offers, outbox events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.factories import (
    V1,
    Organizer,
    assert_error,
    backdate_reservation,
    cancel_reservation,
    cancelled_registration,
    get_reservation,
    join_waitlist,
    now,
    outbox_rows,
    register,
    reserve,
    sweep,
)


class Waitlists(Organizer):
    """An organization with its owner, and the waitlist calls the tests below make."""

    def waiting(self, event_id: str, tt_id: str, name: str = "waiter") -> tuple[dict, dict]:
        user = self.api.register(name)
        response = join_waitlist(self.client, event_id, user, tt_id)
        assert response.status_code == 201, response.text
        return user, response.json()

    def entries(self, event_id: str, user: dict | None = None):
        return self.client.get(
            f"{V1}/events/{event_id}/waitlist", headers=(user or self.owner)["headers"]
        )

    def entry(self, event_id: str, entry_id: str) -> dict:
        response = self.entries(event_id)
        assert response.status_code == 200, response.text
        return next(e for e in response.json()["items"] if e["id"] == entry_id)

    def reservation(self, reservation_id: str, user: dict) -> dict:
        response = get_reservation(self.client, reservation_id, user)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def waitlists(client: TestClient, api, admin: dict) -> Waitlists:
    return Waitlists(client, api, admin)


# --- enrolment ------------------------------------------------------------------------------------


def test_join_only_when_sold_out(client: TestClient, waitlists: Waitlists) -> None:
    event, tt = waitlists.published_event(capacity=1)
    user = waitlists.api.register("eager")
    assert_error(join_waitlist(client, event["id"], user, tt["id"]), 409, "not_sold_out")
    assert waitlists.entries(event["id"]).json() == {"items": [], "next_cursor": None}
    # A hold takes the last seat: now the ticket type is sold out.
    hold = reserve(client, event["id"], waitlists.api.register("holder"), tt["id"])
    assert hold.status_code == 201, hold.text
    assert join_waitlist(client, event["id"], user, tt["id"]).status_code == 201


def test_join_a_sold_out_ticket_type(
    client: TestClient, waitlists: Waitlists, owner_engine: Engine
) -> None:
    event, tt = waitlists.published_event(capacity=1)
    waitlists.participant(event["id"], tt["id"])
    first = waitlists.api.register("first")
    before = now()
    response = join_waitlist(client, event["id"], first, tt["id"])
    assert response.status_code == 201, response.text
    entry = response.json()
    assert uuid.UUID(entry["id"])
    assert entry["event_id"] == event["id"]
    assert entry["ticket_type_id"] == tt["id"]
    assert entry["user_id"] == first["user"]["id"]
    assert entry["status"] == "waiting"
    assert entry["priority"] == 0
    assert entry["reservation_id"] is None
    assert entry["position"] == 1
    assert datetime.fromisoformat(entry["created_at"]) >= before - timedelta(seconds=5)

    second_user, second = waitlists.waiting(event["id"], tt["id"], "second")
    assert second["position"] == 2
    _, third = waitlists.waiting(event["id"], tt["id"], "third")
    assert third["position"] == 3

    assert_error(join_waitlist(client, event["id"], first, tt["id"]), 409, "already_waitlisted")
    assert_error(
        join_waitlist(client, event["id"], second_user, tt["id"]), 409, "already_waitlisted"
    )

    [joined] = outbox_rows(owner_engine, entry["id"])
    assert joined["event_type"] == "waitlist.joined"
    assert joined["aggregate_type"] == "waitlist_entry"
    assert str(joined["tenant_id"]) == waitlists.org["id"]
    assert joined["payload"]["entry_id"] == entry["id"]
    assert joined["payload"]["event_id"] == event["id"]
    assert joined["payload"]["ticket_type_id"] == tt["id"]
    assert joined["payload"]["user_id"] == first["user"]["id"]


def test_join_errors(client: TestClient, waitlists: Waitlists) -> None:
    event, tt = waitlists.published_event(capacity=1)
    waitlists.participant(event["id"], tt["id"])
    user = waitlists.api.register("user")
    assert_error(join_waitlist(client, event["id"], user, str(uuid.uuid4())), 404, "not_found")
    assert_error(join_waitlist(client, str(uuid.uuid4()), user, tt["id"]), 404, "not_found")
    other, _ = waitlists.published_event(capacity=1)
    assert_error(join_waitlist(client, other["id"], user, tt["id"]), 404, "not_found")
    assert_error(join_waitlist(client, event["id"], None, tt["id"]), 401, "unauthorized")
    bad = client.post(
        f"{V1}/events/{event['id']}/waitlist",
        json={"ticket_type_id": tt["id"], "priority": 9},
        headers=user["headers"],
    )
    assert_error(bad, 422, "validation_error")

    draft = waitlists.event()
    draft_tt = waitlists.ticket_type(draft["id"], capacity=0)
    assert_error(join_waitlist(client, draft["id"], user, draft_tt["id"]), 404, "not_found")

    waitlists.moved(event["id"], "cancel")
    assert_error(join_waitlist(client, event["id"], user, tt["id"]), 409, "registration_closed")


def test_leave_the_waitlist(client: TestClient, waitlists: Waitlists, owner_engine: Engine) -> None:
    event, tt = waitlists.published_event(capacity=1)
    waitlists.participant(event["id"], tt["id"])
    user, entry = waitlists.waiting(event["id"], tt["id"], "leaver")
    stranger = waitlists.api.register("stranger")
    path = f"{V1}/waitlist/{entry['id']}"
    assert_error(client.delete(path, headers=stranger["headers"]), 404, "not_found")
    assert_error(client.delete(path), 401, "unauthorized")
    assert_error(
        client.delete(f"{V1}/waitlist/{uuid.uuid4()}", headers=user["headers"]), 404, "not_found"
    )

    left = client.delete(path, headers=user["headers"])
    assert left.status_code == 200, left.text
    assert left.json()["status"] == "cancelled"
    assert waitlists.entry(event["id"], entry["id"])["status"] == "cancelled"
    again = client.delete(path, headers=user["headers"])
    assert_error(again, 409, "invalid_state")
    assert again.json()["error"]["details"] == {"status": "cancelled"}

    events = [r["event_type"] for r in outbox_rows(owner_engine, entry["id"])]
    assert events == ["waitlist.joined", "waitlist.left"]
    # The place is free again: the same participant may queue anew.
    assert join_waitlist(client, event["id"], user, tt["id"]).status_code == 201


def test_organizers_see_the_queue(client: TestClient, waitlists: Waitlists) -> None:
    event, tt = waitlists.published_event(capacity=1)
    waitlists.participant(event["id"], tt["id"])
    _, first = waitlists.waiting(event["id"], tt["id"])
    waiter, second = waitlists.waiting(event["id"], tt["id"])
    analyst = waitlists.member("analyst")
    for reader in (waitlists.owner, analyst):
        response = waitlists.entries(event["id"], reader)
        assert response.status_code == 200, response.text
        assert [e["id"] for e in response.json()["items"]] == [first["id"], second["id"]]
        assert {e["status"] for e in response.json()["items"]} == {"waiting"}
    assert_error(waitlists.entries(event["id"], waiter), 404, "not_found")
    assert_error(client.get(f"{V1}/events/{event['id']}/waitlist"), 401, "unauthorized")


# --- the waitlist goes first ----------------------------------------------------------------------


def test_the_queue_goes_before_direct_sales(client: TestClient, waitlists: Waitlists) -> None:
    event, tt = waitlists.published_event(capacity=2)
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    waitlists.participant(event["id"], tt["id"])
    waitlists.waiting(event["id"], tt["id"])
    cancelled_registration(client, registration["id"], leaver)
    assert waitlists.sold(event["id"], tt["id"]) == 1  # a seat is free ...

    newcomer = waitlists.api.register("newcomer")
    # ... but it belongs to the queue, not to whoever asks first.
    assert_error(register(client, event["id"], newcomer, ticket_type_id=tt["id"]), 409, "sold_out")
    hold = reserve(client, event["id"], newcomer, tt["id"])
    assert_error(hold, 409, "sold_out")
    assert waitlists.sold(event["id"], tt["id"]) == 1


def test_joining_while_a_freed_seat_awaits_the_queue(
    client: TestClient, waitlists: Waitlists
) -> None:
    """Between a cancellation and the next sweep a seat is free but reserved for the queue:
    a newcomer is refused a seat (sold_out), so must be able to queue up behind."""
    event, tt = waitlists.published_event(capacity=1)
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    waitlists.waiting(event["id"], tt["id"])
    cancelled_registration(client, registration["id"], leaver)

    newcomer = waitlists.api.register("newcomer")
    assert_error(register(client, event["id"], newcomer, ticket_type_id=tt["id"]), 409, "sold_out")
    response = join_waitlist(client, event["id"], newcomer, tt["id"])
    assert response.status_code == 201, response.text
    assert response.json()["position"] == 2


def test_joining_when_the_event_is_full(client: TestClient, waitlists: Waitlists) -> None:
    """The event-wide capacity can sell an event out before any ticket type is: registration
    answers sold_out, so the waitlist must take the caller."""
    event = waitlists.event(capacity=1)
    tt = waitlists.ticket_type(event["id"], capacity=5)
    waitlists.publish(event["id"])
    waitlists.participant(event["id"], tt["id"])
    late = waitlists.api.register("late")
    refused = register(client, event["id"], late, ticket_type_id=tt["id"])
    assert assert_error(refused, 409, "sold_out")["details"] == {"scope": "event"}
    response = join_waitlist(client, event["id"], late, tt["id"])
    assert response.status_code == 201, response.text
    assert response.json()["position"] == 1


# --- offers ---------------------------------------------------------------------------------------


def test_a_freed_seat_is_offered_then_accepted(
    client: TestClient, waitlists: Waitlists, owner_engine: Engine
) -> None:
    event, tt = waitlists.published_event(capacity=1, hold_minutes=20)
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    first_user, first = waitlists.waiting(event["id"], tt["id"], "first")
    _, second = waitlists.waiting(event["id"], tt["id"], "second")

    sweep(client)  # nothing free yet: no offer
    assert waitlists.entry(event["id"], first["id"])["status"] == "waiting"

    cancelled_registration(client, registration["id"], leaver)
    before = now()
    sweep(client)
    offered = waitlists.entry(event["id"], first["id"])
    assert offered["status"] == "offered"
    assert offered["reservation_id"]
    assert waitlists.entry(event["id"], second["id"])["status"] == "waiting"
    assert waitlists.sold(event["id"], tt["id"]) == 1

    hold = waitlists.reservation(offered["reservation_id"], first_user)
    assert hold["status"] == "active"
    assert hold["ticket_type_id"] == tt["id"]
    assert hold["quantity"] == 1
    expires = datetime.fromisoformat(hold["expires_at"])
    assert before + timedelta(minutes=20) <= expires <= now() + timedelta(minutes=20)

    [offer_fact] = [
        f for f in outbox_rows(owner_engine, first["id"]) if f["event_type"] == "waitlist.offered"
    ]
    assert str(offer_fact["tenant_id"]) == waitlists.org["id"]
    assert offer_fact["aggregate_type"] == "waitlist_entry"
    assert offer_fact["payload"]["entry_id"] == first["id"]
    assert offer_fact["payload"]["event_id"] == event["id"]
    assert offer_fact["payload"]["ticket_type_id"] == tt["id"]
    assert offer_fact["payload"]["user_id"] == first_user["user"]["id"]
    assert offer_fact["payload"]["reservation_id"] == hold["id"]
    assert datetime.fromisoformat(offer_fact["payload"]["expires_at"]) == expires
    [created] = outbox_rows(owner_engine, hold["id"])
    assert created["event_type"] == "reservation.created"
    assert str(created["tenant_id"]) == waitlists.org["id"]
    assert created["payload"]["from_waitlist"] is True
    assert created["payload"]["user_id"] == first_user["user"]["id"]

    sweep(client)  # an offer is made once
    assert waitlists.entry(event["id"], second["id"])["status"] == "waiting"

    accepted = register(client, event["id"], first_user, reservation_id=hold["id"])
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["status"] == "confirmed"
    assert accepted.json()["reservation_id"] == hold["id"]
    assert waitlists.entry(event["id"], first["id"])["status"] == "accepted"
    assert waitlists.reservation(hold["id"], first_user)["status"] == "converted"
    assert waitlists.sold(event["id"], tt["id"]) == 1


def test_an_unused_offer_passes_to_the_next(
    client: TestClient, waitlists: Waitlists, owner_engine: Engine
) -> None:
    event, tt = waitlists.published_event(capacity=1)
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    first_user, first = waitlists.waiting(event["id"], tt["id"], "first")
    second_user, second = waitlists.waiting(event["id"], tt["id"], "second")
    cancelled_registration(client, registration["id"], leaver)
    sweep(client)
    first_offer = waitlists.entry(event["id"], first["id"])["reservation_id"]

    backdate_reservation(owner_engine, first_offer)
    sweep(client)
    assert waitlists.reservation(first_offer, first_user)["status"] == "expired"
    assert waitlists.entry(event["id"], first["id"])["status"] == "expired"
    assert outbox_rows(owner_engine, first_offer)[-1]["event_type"] == "reservation.expired"
    passed_on = waitlists.entry(event["id"], second["id"])
    assert passed_on["status"] == "offered"
    assert waitlists.sold(event["id"], tt["id"]) == 1

    late = register(client, event["id"], first_user, reservation_id=first_offer)
    assert_error(late, 409, "reservation_expired")
    accepted = register(
        client, event["id"], second_user, reservation_id=passed_on["reservation_id"]
    )
    assert accepted.status_code == 201, accepted.text
    assert waitlists.entry(event["id"], second["id"])["status"] == "accepted"


def test_a_declined_offer_passes_to_the_next(client: TestClient, waitlists: Waitlists) -> None:
    event, tt = waitlists.published_event(capacity=1)
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    first_user, first = waitlists.waiting(event["id"], tt["id"], "first")
    _, second = waitlists.waiting(event["id"], tt["id"], "second")
    cancelled_registration(client, registration["id"], leaver)
    sweep(client)
    offer = waitlists.entry(event["id"], first["id"])["reservation_id"]

    declined = cancel_reservation(client, offer, first_user)
    assert declined.status_code == 200, declined.text
    assert waitlists.entry(event["id"], first["id"])["status"] != "offered"
    sweep(client)
    assert waitlists.entry(event["id"], second["id"])["status"] == "offered"


def test_an_expired_hold_goes_to_the_queue(
    client: TestClient, waitlists: Waitlists, owner_engine: Engine
) -> None:
    event, tt = waitlists.published_event(capacity=1)
    holder = waitlists.api.register("holder")
    hold = reserve(client, event["id"], holder, tt["id"])
    assert hold.status_code == 201, hold.text
    _, entry = waitlists.waiting(event["id"], tt["id"])
    backdate_reservation(owner_engine, hold.json()["id"])
    sweep(client)  # expires the hold, then offers its seat, in one pass
    assert waitlists.reservation(hold.json()["id"], holder)["status"] == "expired"
    assert waitlists.entry(event["id"], entry["id"])["status"] == "offered"


def test_priority_then_arrival(
    client: TestClient, waitlists: Waitlists, owner_engine: Engine
) -> None:
    event, tt = waitlists.published_event(capacity=2)
    people = [waitlists.participant(event["id"], tt["id"], name=f"r{i}") for i in range(2)]
    entries = [waitlists.waiting(event["id"], tt["id"], f"w{i}")[1] for i in range(3)]
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE waitlist_entries SET priority = 5 WHERE id = :id"),
            {"id": entries[2]["id"]},
        )

    (user, registration) = people[0]
    cancelled_registration(client, registration["id"], user)
    sweep(client)
    statuses = [waitlists.entry(event["id"], e["id"])["status"] for e in entries]
    assert statuses == ["waiting", "waiting", "offered"]

    (user, registration) = people[1]
    cancelled_registration(client, registration["id"], user)
    sweep(client)
    statuses = [waitlists.entry(event["id"], e["id"])["status"] for e in entries]
    assert statuses == ["offered", "waiting", "offered"]


def test_more_capacity_is_offered_to_the_queue(client: TestClient, waitlists: Waitlists) -> None:
    event, tt = waitlists.published_event(capacity=1)
    waitlists.participant(event["id"], tt["id"])
    entries = [waitlists.waiting(event["id"], tt["id"], f"w{i}")[1] for i in range(3)]
    grown = client.put(
        f"{V1}/events/{event['id']}/ticket-types/{tt['id']}",
        json={"capacity": 3},
        headers=waitlists.owner["headers"],
    )
    assert grown.status_code == 200, grown.text
    sweep(client)
    statuses = [waitlists.entry(event["id"], e["id"])["status"] for e in entries]
    assert statuses == ["offered", "offered", "waiting"]
    assert waitlists.sold(event["id"], tt["id"]) == 3


# --- a waitlist that can no longer be served ------------------------------------------------------


@pytest.fixture
def closed_waitlists(owner_engine: Engine) -> Iterator[list[str]]:
    """Ticket types whose waiting entries are retired after the test: should the sweeper ever
    choke on them again, the sweeps of later tests stay unaffected."""
    ticket_types: list[str] = []
    yield ticket_types
    with owner_engine.begin() as conn:
        for tt_id in ticket_types:
            conn.execute(
                text(
                    "UPDATE waitlist_entries SET status = 'cancelled' "
                    "WHERE ticket_type_id = :id AND status = 'waiting'"
                ),
                {"id": tt_id},
            )


@pytest.mark.parametrize("closing", ["cancel_event", "deactivate_ticket_type"])
def test_the_sweeper_survives_a_waitlist_that_can_no_longer_be_served(
    client: TestClient, waitlists: Waitlists, closed_waitlists: list[str], closing: str
) -> None:
    """A seat frees on a ticket type that is no longer on sale while people wait for it: the
    sweeper must make no offer, and must go on serving every other waitlist."""
    event, tt = waitlists.published_event(capacity=1)
    closed_waitlists.append(tt["id"])
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    _, stranded = waitlists.waiting(event["id"], tt["id"])
    if closing == "cancel_event":
        waitlists.moved(event["id"], "cancel")
    else:
        deactivated = client.put(
            f"{V1}/events/{event['id']}/ticket-types/{tt['id']}",
            json={"is_active": False},
            headers=waitlists.owner["headers"],
        )
        assert deactivated.status_code == 200, deactivated.text
    cancelled_registration(client, registration["id"], leaver)

    healthy_event, healthy_tt = waitlists.published_event(capacity=1)
    healthy_leaver, healthy_registration = waitlists.participant(
        healthy_event["id"], healthy_tt["id"], name="leaver"
    )
    _, served = waitlists.waiting(healthy_event["id"], healthy_tt["id"])
    cancelled_registration(client, healthy_registration["id"], healthy_leaver)

    sweep(client)
    assert waitlists.entry(event["id"], stranded["id"])["status"] != "offered"
    assert waitlists.entry(healthy_event["id"], served["id"])["status"] == "offered"


def test_a_registered_participant_cannot_wait_for_a_second_seat(
    client: TestClient, waitlists: Waitlists
) -> None:
    event, tt = waitlists.published_event(capacity=1)
    user, _ = waitlists.participant(event["id"], tt["id"])
    assert_error(join_waitlist(client, event["id"], user, tt["id"]), 409, "already_registered")


def test_closing_the_event_ends_the_queue(client: TestClient, waitlists: Waitlists) -> None:
    event, tt = waitlists.published_event(capacity=1)
    holder, registration = waitlists.participant(event["id"], tt["id"])
    _, entry = waitlists.waiting(event["id"], tt["id"])
    waitlists.moved(event["id"], "cancel")
    assert waitlists.entry(event["id"], entry["id"])["status"] == "cancelled"
    # A seat freed afterwards is offered to nobody.
    cancelled_registration(client, registration["id"], holder)
    sweep(client)
    assert waitlists.entry(event["id"], entry["id"])["reservation_id"] is None


def test_organizers_see_places_and_offer_deadlines(
    client: TestClient, waitlists: Waitlists
) -> None:
    event, tt = waitlists.published_event(capacity=1, hold_minutes=20)
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    first_user, first = waitlists.waiting(event["id"], tt["id"], "first")
    _, second = waitlists.waiting(event["id"], tt["id"], "second")
    _, third = waitlists.waiting(event["id"], tt["id"], "third")
    assert [waitlists.entry(event["id"], e["id"])["position"] for e in (first, second, third)] == [
        1,
        2,
        3,
    ]
    assert waitlists.entry(event["id"], first["id"])["offer_expires_at"] is None

    cancelled_registration(client, registration["id"], leaver)
    sweep(client)
    offered = waitlists.entry(event["id"], first["id"])
    assert offered["status"] == "offered"
    assert offered["position"] is None
    hold = waitlists.reservation(offered["reservation_id"], first_user)
    assert offered["offer_expires_at"] == hold["expires_at"]
    assert waitlists.entry(event["id"], second["id"])["position"] == 1
    assert waitlists.entry(event["id"], third["id"])["position"] == 2

    analyst = waitlists.member("analyst")
    response = waitlists.entries(event["id"], analyst)
    assert response.status_code == 200, response.text
    assert {e["id"]: e["position"] for e in response.json()["items"]}[third["id"]] == 2


def test_organizers_remove_a_waiting_entry(
    client: TestClient, waitlists: Waitlists, owner_engine: Engine
) -> None:
    event, tt = waitlists.published_event(capacity=1)
    leaver, registration = waitlists.participant(event["id"], tt["id"], name="leaver")
    _, first = waitlists.waiting(event["id"], tt["id"], "first")
    _, second = waitlists.waiting(event["id"], tt["id"], "second")
    _, third = waitlists.waiting(event["id"], tt["id"], "third")

    def remove(entry: dict, user: dict):
        return client.delete(f"{V1}/waitlist/{entry['id']}", headers=user["headers"])

    assert_error(remove(second, waitlists.member("analyst")), 403, "insufficient_role")
    assert_error(remove(second, waitlists.another().owner), 404, "not_found")
    assert waitlists.entry(event["id"], second["id"])["status"] == "waiting"

    for entry, organizer in ((second, waitlists.owner), (third, waitlists.member("moderator"))):
        response = remove(entry, organizer)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        assert waitlists.entry(event["id"], entry["id"])["status"] == "cancelled"
        events = [r["event_type"] for r in outbox_rows(owner_engine, entry["id"])]
        assert events == ["waitlist.joined", "waitlist.left"]

    cancelled_registration(client, registration["id"], leaver)
    sweep(client)
    assert waitlists.entry(event["id"], first["id"])["status"] == "offered"
    refused = remove(first, waitlists.owner)
    assert assert_error(refused, 409, "invalid_state")["details"] == {"status": "offered"}
