"""Reservations: timed seat holds, their expiry by the sweeper, giving them back, converting them."""

from __future__ import annotations

import uuid
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


class Holds:
    """One organization with a published event, and the calls the tests below make."""

    def __init__(self, client: TestClient, api, admin: dict, owner_engine: Engine) -> None:
        self.client = client
        self.api = api
        self.owner_engine = owner_engine
        self.owner = api.register("owner")
        self.org = api.found_organization(self.owner, admin)

    def event(self, *, publish: bool = True, **fields) -> dict:
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
        event = response.json()
        if publish:
            self.ticket_type(event["id"], name="Publishing", capacity=1)
            self.move(event["id"], "publish")
        return event

    def ticket_type(self, event_id: str, **fields) -> dict:
        response = self.client.post(
            f"{V1}/events/{event_id}/ticket-types",
            json={"name": "Standard", "capacity": 10, **fields},
            headers=self.owner["headers"],
        )
        assert response.status_code == 201, response.text
        return response.json()

    def move(self, event_id: str, action: str) -> None:
        response = self.client.post(
            f"{V1}/events/{event_id}/{action}", headers=self.owner["headers"]
        )
        assert response.status_code == 200, response.text

    def sold(self, event_id: str, tt_id: str) -> int:
        response = self.client.get(
            f"{V1}/events/{event_id}/ticket-types", headers=self.owner["headers"]
        )
        assert response.status_code == 200, response.text
        return next(t["sold"] for t in response.json() if t["id"] == tt_id)

    def reserve(self, event_id: str, user: dict | None, tt_id: str, quantity: int = 1):
        return self.client.post(
            f"{V1}/events/{event_id}/reservations",
            json={"ticket_type_id": tt_id, "quantity": quantity},
            headers=user["headers"] if user else None,
        )

    def hold(self, event_id: str, user: dict, tt_id: str, quantity: int = 1) -> dict:
        response = self.reserve(event_id, user, tt_id, quantity)
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, reservation_id: str, user: dict):
        return self.client.get(f"{V1}/reservations/{reservation_id}", headers=user["headers"])

    def cancel(self, reservation_id: str, user: dict):
        return self.client.post(
            f"{V1}/reservations/{reservation_id}/cancel", headers=user["headers"]
        )

    def register(self, event_id: str, user: dict, **body):
        return self.client.post(
            f"{V1}/events/{event_id}/registrations", json=body, headers=user["headers"]
        )

    def backdate(self, reservation_id: str) -> None:
        """Make a hold due, as if its time had run out."""
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
def holds(client: TestClient, api, admin: dict, owner_engine: Engine) -> Holds:
    return Holds(client, api, admin, owner_engine)


@pytest.fixture
def participant(api) -> dict:
    return api.register("participant")


# --- holding seats --------------------------------------------------------------------------------


def test_reserve_holds_seats_for_the_default_hold_time(
    holds: Holds, participant: dict, owner_engine: Engine
) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"], capacity=5)
    before = _now()
    response = holds.reserve(event["id"], participant, tt["id"], quantity=3)
    after = _now()
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
    assert holds.sold(event["id"], tt["id"]) == 3

    [created] = _outbox(owner_engine, hold["id"])
    assert created["event_type"] == "reservation.created"
    assert created["aggregate_type"] == "reservation"
    assert str(created["tenant_id"]) == holds.org["id"]
    payload = created["payload"]
    assert payload["reservation_id"] == hold["id"]
    assert payload["event_id"] == event["id"]
    assert payload["ticket_type_id"] == tt["id"]
    assert payload["user_id"] == participant["user"]["id"]
    assert payload["quantity"] == 3
    assert datetime.fromisoformat(payload["expires_at"]) == expires
    assert payload["from_waitlist"] is False


def test_hold_time_is_the_events(holds: Holds, participant: dict) -> None:
    event = holds.event(hold_minutes=45)
    tt = holds.ticket_type(event["id"])
    before = _now()
    hold = holds.hold(event["id"], participant, tt["id"])
    expires = datetime.fromisoformat(hold["expires_at"])
    assert before + timedelta(minutes=45) <= expires <= _now() + timedelta(minutes=45)


def test_holds_cannot_oversell(holds: Holds) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"], capacity=3)
    holds.hold(event["id"], holds.api.register("a"), tt["id"], quantity=2)
    too_many = holds.reserve(event["id"], holds.api.register("b"), tt["id"], quantity=2)
    assert _error(too_many, 409, "sold_out")["details"] == {"ticket_type_id": tt["id"]}
    holds.hold(event["id"], holds.api.register("c"), tt["id"], quantity=1)
    _error(holds.reserve(event["id"], holds.api.register("d"), tt["id"]), 409, "sold_out")
    # A direct registration is refused too while every seat is held.
    _error(
        holds.register(event["id"], holds.api.register("e"), ticket_type_id=tt["id"]),
        409,
        "sold_out",
    )
    assert holds.sold(event["id"], tt["id"]) == 3


def test_reserve_rules(holds: Holds, participant: dict) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"], max_per_order=2)
    too_many = holds.reserve(event["id"], participant, tt["id"], quantity=3)
    assert _error(too_many, 422, "max_per_order")["details"] == {"max_per_order": 2}
    inactive = holds.ticket_type(event["id"], is_active=False)
    _error(holds.reserve(event["id"], participant, inactive["id"]), 409, "not_on_sale")
    for quantity in (0, 101):
        _error(holds.reserve(event["id"], participant, tt["id"], quantity), 422, "validation_error")
    _error(holds.reserve(event["id"], participant, str(uuid.uuid4())), 404, "not_found")
    other = holds.event()
    _error(holds.reserve(other["id"], participant, tt["id"]), 404, "not_found")
    _error(holds.reserve(str(uuid.uuid4()), participant, tt["id"]), 404, "not_found")
    _error(holds.reserve(event["id"], None, tt["id"]), 401, "unauthorized")
    assert holds.sold(event["id"], tt["id"]) == 0


def test_no_holds_on_drafts_or_closed_events(holds: Holds, participant: dict) -> None:
    draft = holds.event(publish=False)
    tt = holds.ticket_type(draft["id"])
    _error(holds.reserve(draft["id"], participant, tt["id"]), 404, "not_found")

    closed = holds.event(registration_closes_at=(_now() - timedelta(minutes=1)).isoformat())
    closed_tt = holds.ticket_type(closed["id"])
    _error(holds.reserve(closed["id"], participant, closed_tt["id"]), 409, "registration_closed")

    cancelled = holds.event()
    cancelled_tt = holds.ticket_type(cancelled["id"])
    holds.move(cancelled["id"], "cancel")
    response = holds.reserve(cancelled["id"], participant, cancelled_tt["id"])
    assert _error(response, 409, "registration_closed")["details"] == {"status": "cancelled"}


def test_a_hold_is_its_holders(holds: Holds, participant: dict) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"])
    hold = holds.hold(event["id"], participant, tt["id"])
    assert holds.get(hold["id"], participant).json() == hold
    stranger = holds.api.register("stranger")
    for response in (
        holds.get(hold["id"], stranger),
        holds.get(hold["id"], holds.owner),
        holds.cancel(hold["id"], stranger),
        holds.register(event["id"], stranger, reservation_id=hold["id"]),
        holds.get(str(uuid.uuid4()), participant),
    ):
        _error(response, 404, "not_found")
    assert holds.get(hold["id"], participant).json()["status"] == "active"
    _error(holds.client.get(f"{V1}/reservations/{hold['id']}"), 401, "unauthorized")


# --- giving a hold back ---------------------------------------------------------------------------


def test_cancel_a_hold_frees_its_seats(holds: Holds, participant: dict) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"], capacity=2)
    hold = holds.hold(event["id"], participant, tt["id"], quantity=2)
    response = holds.cancel(hold["id"], participant)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert holds.sold(event["id"], tt["id"]) == 0

    again = holds.cancel(hold["id"], participant)
    assert _error(again, 409, "invalid_state")["details"] == {"status": "cancelled"}
    converting = holds.register(event["id"], participant, reservation_id=hold["id"])
    assert _error(converting, 409, "reservation_expired")["details"] == {"status": "cancelled"}
    assert holds.sold(event["id"], tt["id"]) == 0
    holds.hold(event["id"], holds.api.register("next"), tt["id"], quantity=2)


# --- expiry by the sweeper ------------------------------------------------------------------------


def test_the_sweeper_expires_due_holds(
    holds: Holds, participant: dict, owner_engine: Engine
) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"], capacity=2)
    due = holds.hold(event["id"], participant, tt["id"], quantity=2)
    holds.backdate(due["id"])
    # Due but not yet swept: the seats are still held, yet the hold no longer converts.
    _error(holds.reserve(event["id"], holds.api.register("early"), tt["id"]), 409, "sold_out")
    converting = holds.register(event["id"], participant, reservation_id=due["id"])
    assert _error(converting, 409, "reservation_expired")["details"] == {"status": "active"}

    holds.sweep()
    assert holds.get(due["id"], participant).json()["status"] == "expired"
    assert holds.sold(event["id"], tt["id"]) == 0
    facts = _outbox(owner_engine, due["id"])
    assert [f["event_type"] for f in facts] == ["reservation.created", "reservation.expired"]
    expired = facts[-1]
    assert expired["aggregate_type"] == "reservation"
    assert str(expired["tenant_id"]) == holds.org["id"]
    assert expired["payload"]["reservation_id"] == due["id"]
    assert expired["payload"]["event_id"] == event["id"]
    assert expired["payload"]["ticket_type_id"] == tt["id"]
    assert expired["payload"]["user_id"] == participant["user"]["id"]
    assert expired["payload"]["quantity"] == 2

    converting = holds.register(event["id"], participant, reservation_id=due["id"])
    assert _error(converting, 409, "reservation_expired")["details"] == {"status": "expired"}
    _error(holds.cancel(due["id"], participant), 409, "invalid_state")
    # Sweeping again changes nothing.
    holds.sweep()
    assert holds.sold(event["id"], tt["id"]) == 0
    assert len(_outbox(owner_engine, due["id"])) == 2


def test_the_sweeper_leaves_live_and_converted_holds(holds: Holds, owner_engine: Engine) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"], capacity=5)
    live_user, converted_user = holds.api.register("live"), holds.api.register("converted")
    live = holds.hold(event["id"], live_user, tt["id"])
    converted = holds.hold(event["id"], converted_user, tt["id"])
    registered = holds.register(event["id"], converted_user, reservation_id=converted["id"])
    assert registered.status_code == 201, registered.text
    holds.backdate(converted["id"])

    holds.sweep()
    assert holds.get(live["id"], live_user).json()["status"] == "active"
    assert holds.get(converted["id"], converted_user).json()["status"] == "converted"
    assert holds.sold(event["id"], tt["id"]) == 2
    assert [f["event_type"] for f in _outbox(owner_engine, converted["id"])] == [
        "reservation.created"
    ]


# --- converting -----------------------------------------------------------------------------------


def test_convert_a_hold(holds: Holds, participant: dict, owner_engine: Engine) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"], capacity=3)
    hold = holds.hold(event["id"], participant, tt["id"], quantity=2)
    response = holds.register(event["id"], participant, reservation_id=hold["id"])
    assert response.status_code == 201, response.text
    registration = response.json()
    assert registration["status"] == "confirmed"
    assert registration["reservation_id"] == hold["id"]
    assert registration["quantity"] == 2
    assert holds.get(hold["id"], participant).json()["status"] == "converted"
    assert holds.sold(event["id"], tt["id"]) == 2
    assert [f["event_type"] for f in _outbox(owner_engine, registration["id"])] == [
        "registration.created",
        "registration.confirmed",
    ]
    # A converted hold is gone: it can be neither converted again nor given back.
    again = holds.register(event["id"], participant, reservation_id=hold["id"])
    assert _error(again, 409, "reservation_expired")["details"] == {"status": "converted"}
    _error(holds.cancel(hold["id"], participant), 409, "invalid_state")
    assert holds.sold(event["id"], tt["id"]) == 2


def test_a_hold_converts_only_at_its_own_event(holds: Holds, participant: dict) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"])
    hold = holds.hold(event["id"], participant, tt["id"])
    other = holds.event()
    _error(holds.register(other["id"], participant, reservation_id=hold["id"]), 404, "not_found")
    assert holds.get(hold["id"], participant).json()["status"] == "active"


def test_a_hold_converts_after_registration_closed(holds: Holds, participant: dict) -> None:
    """The hold was taken while registration was open: it is honoured until it expires."""
    event = holds.event()
    tt = holds.ticket_type(event["id"])
    hold = holds.hold(event["id"], participant, tt["id"])
    closed = holds.client.put(
        f"{V1}/events/{event['id']}",
        json={"registration_closes_at": (_now() - timedelta(seconds=1)).isoformat()},
        headers=holds.owner["headers"],
    )
    assert closed.status_code == 200, closed.text
    response = holds.register(event["id"], participant, reservation_id=hold["id"])
    assert response.status_code == 201, response.text


def test_a_hold_does_not_convert_once_the_event_is_cancelled(
    holds: Holds, participant: dict
) -> None:
    event = holds.event()
    tt = holds.ticket_type(event["id"])
    hold = holds.hold(event["id"], participant, tt["id"])
    holds.move(event["id"], "cancel")
    response = holds.register(event["id"], participant, reservation_id=hold["id"])
    _error(response, 409, "registration_closed")


def test_give_a_hold_back_after_the_event_was_unpublished(holds: Holds, participant: dict) -> None:
    """Unpublishing hides the event from participants; a hold must still be theirs to give back
    (else its seats stay taken until the sweeper expires it)."""
    event = holds.event()
    tt = holds.ticket_type(event["id"], capacity=2)
    hold = holds.hold(event["id"], participant, tt["id"], quantity=2)
    holds.move(event["id"], "unpublish")
    response = holds.cancel(hold["id"], participant)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert holds.sold(event["id"], tt["id"]) == 0
