"""Waitlists of sold-out ticket types: enrolment, the queue going first, offers made by the sweeper
(priority, then arrival), unused offers passing on, accepted offers, outbox events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from domain.registration.sweeper import sweep_once

V1 = "/api/v1"


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    return body["error"]


def _outbox(engine: Engine, aggregate_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_type, aggregate_type, tenant_id, payload FROM outbox "
                "WHERE aggregate_id = :id ORDER BY id"
            ),
            {"id": aggregate_id},
        ).mappings()
        return [dict(r) for r in rows]


def _now() -> datetime:
    return datetime.now(UTC)


class Waitlists:
    """One organization, a published event with a small ticket type, and the calls below."""

    def __init__(self, client: TestClient, api, admin: dict, owner_engine: Engine) -> None:
        self.client = client
        self.api = api
        self.owner_engine = owner_engine
        self.owner = api.register("owner")
        self.org = api.found_organization(self.owner, admin)

    def event(self, **fields) -> dict:
        start = _now().replace(microsecond=0) + timedelta(days=30)
        response = self.client.post(
            f"{V1}/events",
            json={
                "organization_id": self.org["id"],
                "title": f"Event {uuid.uuid4().hex[:8]}",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=3)).isoformat(),
                **fields,
            },
            headers=self.owner["headers"],
        )
        assert response.status_code == 201, response.text
        return response.json()

    def ticket_type(self, event_id: str, **fields) -> dict:
        response = self.client.post(
            f"{V1}/events/{event_id}/ticket-types",
            json={"name": "Standard", "capacity": 1, **fields},
            headers=self.owner["headers"],
        )
        assert response.status_code == 201, response.text
        return response.json()

    def move(self, event_id: str, action: str) -> None:
        response = self.client.post(
            f"{V1}/events/{event_id}/{action}", headers=self.owner["headers"]
        )
        assert response.status_code == 200, response.text

    def published(self, capacity: int = 1, **fields) -> tuple[dict, dict]:
        event = self.event(**fields)
        tt = self.ticket_type(event["id"], capacity=capacity)
        self.move(event["id"], "publish")
        return event, tt

    def sold(self, event_id: str, tt_id: str) -> int:
        response = self.client.get(
            f"{V1}/events/{event_id}/ticket-types", headers=self.owner["headers"]
        )
        assert response.status_code == 200, response.text
        return next(t["sold"] for t in response.json() if t["id"] == tt_id)

    def register(self, event_id: str, user: dict, **body):
        return self.client.post(
            f"{V1}/events/{event_id}/registrations", json=body, headers=user["headers"]
        )

    def registered(self, event_id: str, tt_id: str, name: str = "attendee") -> tuple[dict, dict]:
        user = self.api.register(name)
        response = self.register(event_id, user, ticket_type_id=tt_id)
        assert response.status_code == 201, response.text
        return user, response.json()

    def cancel(self, registration_id: str, user: dict) -> None:
        response = self.client.post(
            f"{V1}/registrations/{registration_id}/cancel", headers=user["headers"]
        )
        assert response.status_code == 200, response.text

    def join(self, event_id: str, user: dict | None, tt_id: str):
        return self.client.post(
            f"{V1}/events/{event_id}/waitlist",
            json={"ticket_type_id": tt_id},
            headers=user["headers"] if user else None,
        )

    def waiting(self, event_id: str, tt_id: str, name: str = "waiter") -> tuple[dict, dict]:
        user = self.api.register(name)
        response = self.join(event_id, user, tt_id)
        assert response.status_code == 201, response.text
        return user, response.json()

    def entries(self, event_id: str, user: dict | None = None):
        return self.client.get(
            f"{V1}/events/{event_id}/waitlist", headers=(user or self.owner)["headers"]
        )

    def entry(self, event_id: str, entry_id: str) -> dict:
        response = self.entries(event_id)
        assert response.status_code == 200, response.text
        return next(e for e in response.json() if e["id"] == entry_id)

    def reservation(self, reservation_id: str, user: dict) -> dict:
        response = self.client.get(f"{V1}/reservations/{reservation_id}", headers=user["headers"])
        assert response.status_code == 200, response.text
        return response.json()

    def backdate(self, reservation_id: str) -> None:
        with self.owner_engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE reservations SET expires_at = now() - interval '1 minute' "
                    "WHERE id = :id"
                ),
                {"id": reservation_id},
            )

    def sweep(self) -> None:
        sweep_once(self.client.app.state.aq.sessionmaker)


@pytest.fixture
def waitlists(client: TestClient, api, admin: dict, owner_engine: Engine) -> Waitlists:
    return Waitlists(client, api, admin, owner_engine)


# --- enrolment ------------------------------------------------------------------------------------


def test_join_only_when_sold_out(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    user = waitlists.api.register("eager")
    _error(waitlists.join(event["id"], user, tt["id"]), 409, "not_sold_out")
    assert waitlists.entries(event["id"]).json() == []
    # A hold takes the last seat: now the ticket type is sold out.
    hold = waitlists.client.post(
        f"{V1}/events/{event['id']}/reservations",
        json={"ticket_type_id": tt["id"]},
        headers=waitlists.api.register("holder")["headers"],
    )
    assert hold.status_code == 201, hold.text
    assert waitlists.join(event["id"], user, tt["id"]).status_code == 201


def test_join_a_sold_out_ticket_type(waitlists: Waitlists, owner_engine: Engine) -> None:
    event, tt = waitlists.published(capacity=1)
    waitlists.registered(event["id"], tt["id"])
    first = waitlists.api.register("first")
    before = _now()
    response = waitlists.join(event["id"], first, tt["id"])
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

    _error(waitlists.join(event["id"], first, tt["id"]), 409, "already_waitlisted")
    _error(waitlists.join(event["id"], second_user, tt["id"]), 409, "already_waitlisted")

    [joined] = _outbox(owner_engine, entry["id"])
    assert joined["event_type"] == "waitlist.joined"
    assert joined["aggregate_type"] == "waitlist_entry"
    assert str(joined["tenant_id"]) == waitlists.org["id"]
    assert joined["payload"]["entry_id"] == entry["id"]
    assert joined["payload"]["event_id"] == event["id"]
    assert joined["payload"]["ticket_type_id"] == tt["id"]
    assert joined["payload"]["user_id"] == first["user"]["id"]


def test_join_errors(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    waitlists.registered(event["id"], tt["id"])
    user = waitlists.api.register("user")
    _error(waitlists.join(event["id"], user, str(uuid.uuid4())), 404, "not_found")
    _error(waitlists.join(str(uuid.uuid4()), user, tt["id"]), 404, "not_found")
    other, _ = waitlists.published()
    _error(waitlists.join(other["id"], user, tt["id"]), 404, "not_found")
    _error(waitlists.join(event["id"], None, tt["id"]), 401, "unauthorized")
    bad = waitlists.client.post(
        f"{V1}/events/{event['id']}/waitlist",
        json={"ticket_type_id": tt["id"], "priority": 9},
        headers=user["headers"],
    )
    _error(bad, 422, "validation_error")

    draft = waitlists.event()
    draft_tt = waitlists.ticket_type(draft["id"], capacity=0)
    _error(waitlists.join(draft["id"], user, draft_tt["id"]), 404, "not_found")

    waitlists.move(event["id"], "cancel")
    _error(waitlists.join(event["id"], user, tt["id"]), 409, "registration_closed")


def test_organizers_see_the_queue(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    waitlists.registered(event["id"], tt["id"])
    _, first = waitlists.waiting(event["id"], tt["id"])
    waiter, second = waitlists.waiting(event["id"], tt["id"])
    analyst = waitlists.api.register("analyst")
    invite = waitlists.client.post(
        f"{V1}/organizations/{waitlists.org['id']}/invite",
        json={"email": analyst["email"], "role": "analyst"},
        headers=waitlists.owner["headers"],
    )
    accepted = waitlists.client.post(
        f"{V1}/organization-invites/accept",
        json={"token": invite.json()["token"]},
        headers=analyst["headers"],
    )
    assert accepted.status_code == 200, accepted.text
    for reader in (waitlists.owner, analyst):
        response = waitlists.entries(event["id"], reader)
        assert response.status_code == 200, response.text
        assert [e["id"] for e in response.json()] == [first["id"], second["id"]]
        assert {e["status"] for e in response.json()} == {"waiting"}
    _error(waitlists.entries(event["id"], waiter), 404, "not_found")
    _error(waitlists.client.get(f"{V1}/events/{event['id']}/waitlist"), 401, "unauthorized")


# --- the waitlist goes first ----------------------------------------------------------------------


def test_the_queue_goes_before_direct_sales(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=2)
    leaver, registration = waitlists.registered(event["id"], tt["id"], "leaver")
    waitlists.registered(event["id"], tt["id"])
    waitlists.waiting(event["id"], tt["id"])
    waitlists.cancel(registration["id"], leaver)
    assert waitlists.sold(event["id"], tt["id"]) == 1  # a seat is free ...

    newcomer = waitlists.api.register("newcomer")
    # ... but it belongs to the queue, not to whoever asks first.
    _error(waitlists.register(event["id"], newcomer, ticket_type_id=tt["id"]), 409, "sold_out")
    hold = waitlists.client.post(
        f"{V1}/events/{event['id']}/reservations",
        json={"ticket_type_id": tt["id"]},
        headers=newcomer["headers"],
    )
    _error(hold, 409, "sold_out")
    assert waitlists.sold(event["id"], tt["id"]) == 1


def test_joining_while_a_freed_seat_awaits_the_queue(waitlists: Waitlists) -> None:
    """Between a cancellation and the next sweep a seat is free but reserved for the queue:
    a newcomer is refused a seat (sold_out), so must be able to queue up behind."""
    event, tt = waitlists.published(capacity=1)
    leaver, registration = waitlists.registered(event["id"], tt["id"], "leaver")
    waitlists.waiting(event["id"], tt["id"])
    waitlists.cancel(registration["id"], leaver)

    newcomer = waitlists.api.register("newcomer")
    _error(waitlists.register(event["id"], newcomer, ticket_type_id=tt["id"]), 409, "sold_out")
    response = waitlists.join(event["id"], newcomer, tt["id"])
    assert response.status_code == 201, response.text
    assert response.json()["position"] == 2


def test_joining_when_the_event_is_full(waitlists: Waitlists) -> None:
    """The event-wide capacity can sell an event out before any ticket type is: registration
    answers sold_out, so the waitlist must take the caller."""
    event = waitlists.event(capacity=1)
    tt = waitlists.ticket_type(event["id"], capacity=5)
    waitlists.move(event["id"], "publish")
    waitlists.registered(event["id"], tt["id"])
    late = waitlists.api.register("late")
    refused = waitlists.register(event["id"], late, ticket_type_id=tt["id"])
    assert _error(refused, 409, "sold_out")["details"] == {"scope": "event"}
    response = waitlists.join(event["id"], late, tt["id"])
    assert response.status_code == 201, response.text
    assert response.json()["position"] == 1


# --- offers ---------------------------------------------------------------------------------------


def test_a_freed_seat_is_offered_then_accepted(waitlists: Waitlists, owner_engine: Engine) -> None:
    event, tt = waitlists.published(capacity=1, hold_minutes=20)
    leaver, registration = waitlists.registered(event["id"], tt["id"], "leaver")
    first_user, first = waitlists.waiting(event["id"], tt["id"], "first")
    _, second = waitlists.waiting(event["id"], tt["id"], "second")

    waitlists.sweep()  # nothing free yet: no offer
    assert waitlists.entry(event["id"], first["id"])["status"] == "waiting"

    waitlists.cancel(registration["id"], leaver)
    before = _now()
    waitlists.sweep()
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
    assert before + timedelta(minutes=20) <= expires <= _now() + timedelta(minutes=20)

    [offer_fact] = [
        f for f in _outbox(owner_engine, first["id"]) if f["event_type"] == "waitlist.offered"
    ]
    assert str(offer_fact["tenant_id"]) == waitlists.org["id"]
    assert offer_fact["aggregate_type"] == "waitlist_entry"
    assert offer_fact["payload"]["entry_id"] == first["id"]
    assert offer_fact["payload"]["event_id"] == event["id"]
    assert offer_fact["payload"]["ticket_type_id"] == tt["id"]
    assert offer_fact["payload"]["user_id"] == first_user["user"]["id"]
    assert offer_fact["payload"]["reservation_id"] == hold["id"]
    assert datetime.fromisoformat(offer_fact["payload"]["expires_at"]) == expires
    [created] = _outbox(owner_engine, hold["id"])
    assert created["event_type"] == "reservation.created"
    assert str(created["tenant_id"]) == waitlists.org["id"]
    assert created["payload"]["from_waitlist"] is True
    assert created["payload"]["user_id"] == first_user["user"]["id"]

    waitlists.sweep()  # an offer is made once
    assert waitlists.entry(event["id"], second["id"])["status"] == "waiting"

    accepted = waitlists.register(event["id"], first_user, reservation_id=hold["id"])
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["status"] == "confirmed"
    assert accepted.json()["reservation_id"] == hold["id"]
    assert waitlists.entry(event["id"], first["id"])["status"] == "accepted"
    assert waitlists.reservation(hold["id"], first_user)["status"] == "converted"
    assert waitlists.sold(event["id"], tt["id"]) == 1


def test_an_unused_offer_passes_to_the_next(waitlists: Waitlists, owner_engine: Engine) -> None:
    event, tt = waitlists.published(capacity=1)
    leaver, registration = waitlists.registered(event["id"], tt["id"], "leaver")
    first_user, first = waitlists.waiting(event["id"], tt["id"], "first")
    second_user, second = waitlists.waiting(event["id"], tt["id"], "second")
    waitlists.cancel(registration["id"], leaver)
    waitlists.sweep()
    first_offer = waitlists.entry(event["id"], first["id"])["reservation_id"]

    waitlists.backdate(first_offer)
    waitlists.sweep()
    assert waitlists.reservation(first_offer, first_user)["status"] == "expired"
    assert waitlists.entry(event["id"], first["id"])["status"] == "expired"
    assert _outbox(owner_engine, first_offer)[-1]["event_type"] == "reservation.expired"
    passed_on = waitlists.entry(event["id"], second["id"])
    assert passed_on["status"] == "offered"
    assert waitlists.sold(event["id"], tt["id"]) == 1

    late = waitlists.register(event["id"], first_user, reservation_id=first_offer)
    _error(late, 409, "reservation_expired")
    accepted = waitlists.register(
        event["id"], second_user, reservation_id=passed_on["reservation_id"]
    )
    assert accepted.status_code == 201, accepted.text
    assert waitlists.entry(event["id"], second["id"])["status"] == "accepted"


def test_a_declined_offer_passes_to_the_next(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    leaver, registration = waitlists.registered(event["id"], tt["id"], "leaver")
    first_user, first = waitlists.waiting(event["id"], tt["id"], "first")
    _, second = waitlists.waiting(event["id"], tt["id"], "second")
    waitlists.cancel(registration["id"], leaver)
    waitlists.sweep()
    offer = waitlists.entry(event["id"], first["id"])["reservation_id"]

    declined = waitlists.client.post(
        f"{V1}/reservations/{offer}/cancel", headers=first_user["headers"]
    )
    assert declined.status_code == 200, declined.text
    assert waitlists.entry(event["id"], first["id"])["status"] != "offered"
    waitlists.sweep()
    assert waitlists.entry(event["id"], second["id"])["status"] == "offered"


def test_an_expired_hold_goes_to_the_queue(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    holder = waitlists.api.register("holder")
    hold = waitlists.client.post(
        f"{V1}/events/{event['id']}/reservations",
        json={"ticket_type_id": tt["id"]},
        headers=holder["headers"],
    )
    assert hold.status_code == 201, hold.text
    _, entry = waitlists.waiting(event["id"], tt["id"])
    waitlists.backdate(hold.json()["id"])
    waitlists.sweep()  # expires the hold, then offers its seat, in one pass
    assert waitlists.reservation(hold.json()["id"], holder)["status"] == "expired"
    assert waitlists.entry(event["id"], entry["id"])["status"] == "offered"


def test_priority_then_arrival(waitlists: Waitlists, owner_engine: Engine) -> None:
    event, tt = waitlists.published(capacity=2)
    people = [waitlists.registered(event["id"], tt["id"], f"r{i}") for i in range(2)]
    entries = [waitlists.waiting(event["id"], tt["id"], f"w{i}")[1] for i in range(3)]
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE waitlist_entries SET priority = 5 WHERE id = :id"),
            {"id": entries[2]["id"]},
        )

    (user, registration) = people[0]
    waitlists.cancel(registration["id"], user)
    waitlists.sweep()
    statuses = [waitlists.entry(event["id"], e["id"])["status"] for e in entries]
    assert statuses == ["waiting", "waiting", "offered"]

    (user, registration) = people[1]
    waitlists.cancel(registration["id"], user)
    waitlists.sweep()
    statuses = [waitlists.entry(event["id"], e["id"])["status"] for e in entries]
    assert statuses == ["offered", "waiting", "offered"]


def test_more_capacity_is_offered_to_the_queue(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    waitlists.registered(event["id"], tt["id"])
    entries = [waitlists.waiting(event["id"], tt["id"], f"w{i}")[1] for i in range(3)]
    grown = waitlists.client.put(
        f"{V1}/events/{event['id']}/ticket-types/{tt['id']}",
        json={"capacity": 3},
        headers=waitlists.owner["headers"],
    )
    assert grown.status_code == 200, grown.text
    waitlists.sweep()
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
    waitlists: Waitlists, closed_waitlists: list[str], closing: str
) -> None:
    """A seat frees on a ticket type that is no longer on sale while people wait for it: the
    sweeper must make no offer, and must go on serving every other waitlist."""
    event, tt = waitlists.published(capacity=1)
    closed_waitlists.append(tt["id"])
    leaver, registration = waitlists.registered(event["id"], tt["id"], "leaver")
    _, stranded = waitlists.waiting(event["id"], tt["id"])
    if closing == "cancel_event":
        waitlists.move(event["id"], "cancel")
    else:
        deactivated = waitlists.client.put(
            f"{V1}/events/{event['id']}/ticket-types/{tt['id']}",
            json={"is_active": False},
            headers=waitlists.owner["headers"],
        )
        assert deactivated.status_code == 200, deactivated.text
    waitlists.cancel(registration["id"], leaver)

    healthy_event, healthy_tt = waitlists.published(capacity=1)
    healthy_leaver, healthy_registration = waitlists.registered(
        healthy_event["id"], healthy_tt["id"], "leaver"
    )
    _, served = waitlists.waiting(healthy_event["id"], healthy_tt["id"])
    waitlists.cancel(healthy_registration["id"], healthy_leaver)

    waitlists.sweep()
    assert waitlists.entry(event["id"], stranded["id"])["status"] != "offered"
    assert waitlists.entry(healthy_event["id"], served["id"])["status"] == "offered"


def test_a_registered_participant_cannot_wait_for_a_second_seat(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    user, _ = waitlists.registered(event["id"], tt["id"])
    _error(waitlists.join(event["id"], user, tt["id"]), 409, "already_registered")


def test_closing_the_event_ends_the_queue(waitlists: Waitlists) -> None:
    event, tt = waitlists.published(capacity=1)
    holder, registration = waitlists.registered(event["id"], tt["id"])
    _, entry = waitlists.waiting(event["id"], tt["id"])
    waitlists.move(event["id"], "cancel")
    assert waitlists.entry(event["id"], entry["id"])["status"] == "cancelled"
    # A seat freed afterwards is offered to nobody.
    waitlists.cancel(registration["id"], holder)
    waitlists.sweep()
    assert waitlists.entry(event["id"], entry["id"])["reservation_id"] is None
