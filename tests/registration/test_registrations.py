"""Registrations: direct and from a hold, free and paid (full or deposit), the sale rules, the
organizer's and the participant's views, cancellation, private events, outbox events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

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


def _at(**delta: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(**delta)


class Platform:
    """One organization with its owner, and the calls the tests below make."""

    def __init__(self, client: TestClient, api, admin: dict) -> None:
        self.client = client
        self.api = api
        self.admin = admin
        self.owner = api.register("owner")
        self.org = api.found_organization(self.owner, admin)

    def member(self, role: str) -> dict:
        user = self.api.register(role)
        invite = self.client.post(
            f"{V1}/organizations/{self.org['id']}/invite",
            json={"email": user["email"], "role": role},
            headers=self.owner["headers"],
        )
        assert invite.status_code == 201, invite.text
        accepted = self.client.post(
            f"{V1}/organization-invites/accept",
            json={"token": invite.json()["token"]},
            headers=user["headers"],
        )
        assert accepted.status_code == 200, accepted.text
        return user

    def event(self, *, publish: bool = True, **fields) -> dict:
        start = fields.pop("start", _at(days=30))
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
            # Publishing needs an active ticket type; tests add their own afterwards.
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

    def ticket(self, event_id: str, tt_id: str) -> dict:
        response = self.client.get(
            f"{V1}/events/{event_id}/ticket-types", headers=self.owner["headers"]
        )
        assert response.status_code == 200, response.text
        return next(t for t in response.json() if t["id"] == tt_id)

    def register(self, event_id: str, user: dict | None, **body):
        return self.client.post(
            f"{V1}/events/{event_id}/registrations",
            json=body,
            headers=user["headers"] if user else None,
        )

    def registered(self, event_id: str, user: dict, **body) -> dict:
        response = self.register(event_id, user, **body)
        assert response.status_code == 201, response.text
        return response.json()

    def reserve(self, event_id: str, user: dict, tt_id: str, quantity: int = 1) -> dict:
        response = self.client.post(
            f"{V1}/events/{event_id}/reservations",
            json={"ticket_type_id": tt_id, "quantity": quantity},
            headers=user["headers"],
        )
        assert response.status_code == 201, response.text
        return response.json()

    def cancel(self, registration_id: str, user: dict, **body):
        return self.client.post(
            f"{V1}/registrations/{registration_id}/cancel",
            json=body or None,
            headers=user["headers"],
        )

    def get(self, registration_id: str, user: dict):
        return self.client.get(f"{V1}/registrations/{registration_id}", headers=user["headers"])

    def listing(self, event_id: str, user: dict, **params):
        return self.client.get(
            f"{V1}/events/{event_id}/registrations", params=params, headers=user["headers"]
        )


@pytest.fixture
def platform(client: TestClient, api, admin: dict) -> Platform:
    return Platform(client, api, admin)


@pytest.fixture
def participant(api) -> dict:
    return api.register("participant")


# --- free and paid registrations ------------------------------------------------------------------


def test_free_ticket_confirms_at_once(
    platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], capacity=5, currency="EUR")
    response = platform.register(event["id"], participant, ticket_type_id=tt["id"], quantity=2)
    assert response.status_code == 201, response.text
    registration = response.json()
    assert registration["event_id"] == event["id"]
    assert registration["ticket_type_id"] == tt["id"]
    assert registration["reservation_id"] is None
    assert registration["quantity"] == 2
    assert registration["status"] == "confirmed"
    assert registration["payment_mode"] == "free"
    assert registration["amount_total"] == 0
    assert registration["amount_due_now"] == 0
    assert registration["amount_paid"] == 0
    assert registration["confirmed_at"]
    assert registration["cancelled_at"] is None
    assert "ticket_secret" not in registration
    assert platform.ticket(event["id"], tt["id"])["sold"] == 2

    created, confirmed = _outbox(owner_engine, registration["id"])
    assert created["event_type"] == "registration.created"
    assert confirmed["event_type"] == "registration.confirmed"
    for fact in (created, confirmed):
        assert fact["aggregate_type"] == "registration"
        assert str(fact["tenant_id"]) == platform.org["id"]
        assert fact["payload"]["registration_id"] == registration["id"]
        assert fact["payload"]["event_id"] == event["id"]
        assert fact["payload"]["user_id"] == participant["user"]["id"]
        assert fact["payload"]["quantity"] == 2
    assert created["payload"]["ticket_type_id"] == tt["id"]
    assert created["payload"]["status"] == "confirmed"
    assert created["payload"]["payment_mode"] == "free"
    assert created["payload"]["amount_total"] == 0
    assert created["payload"]["amount_due_now"] == 0
    assert created["payload"]["currency"] == "EUR"
    assert created["payload"]["reservation_id"] is None


def test_paid_ticket_awaits_payment_of_the_full_price(
    platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], price_amount=2500, currency="USD")
    registration = platform.registered(
        event["id"], participant, ticket_type_id=tt["id"], quantity=3
    )
    assert registration["status"] == "pending_payment"
    assert registration["payment_mode"] == "full"
    assert registration["currency"] == "USD"
    assert registration["amount_total"] == 7500
    assert registration["amount_due_now"] == 7500
    assert registration["amount_paid"] == 0
    assert registration["confirmed_at"] is None
    assert platform.ticket(event["id"], tt["id"])["sold"] == 3

    [created] = _outbox(owner_engine, registration["id"])
    assert created["event_type"] == "registration.created"
    assert str(created["tenant_id"]) == platform.org["id"]
    assert created["payload"]["status"] == "pending_payment"
    assert created["payload"]["payment_mode"] == "full"
    assert created["payload"]["amount_total"] == 7500
    assert created["payload"]["amount_due_now"] == 7500
    assert created["payload"]["currency"] == "USD"


def test_explicit_full_payment_mode(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], price_amount=1000, deposit_percent=10)
    registration = platform.registered(
        event["id"], participant, ticket_type_id=tt["id"], payment_mode="full"
    )
    assert registration["payment_mode"] == "full"
    assert registration["amount_due_now"] == 1000


@pytest.mark.parametrize(
    ("deposit", "quantity", "due_now"),
    [
        ({"deposit_amount": 300}, 1, 300),
        ({"deposit_amount": 300}, 2, 600),
        ({"deposit_percent": 25}, 1, 250),
        ({"deposit_percent": 25}, 3, 750),
        ({"deposit_percent": 33}, 1, 330),
    ],
)
def test_deposit_is_due_now(
    platform: Platform, participant: dict, owner_engine: Engine, deposit, quantity, due_now
) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], price_amount=1000, **deposit)
    registration = platform.registered(
        event["id"], participant, ticket_type_id=tt["id"], quantity=quantity, payment_mode="deposit"
    )
    assert registration["status"] == "pending_payment"
    assert registration["payment_mode"] == "deposit"
    assert registration["amount_total"] == 1000 * quantity
    assert registration["amount_due_now"] == due_now
    [created] = _outbox(owner_engine, registration["id"])
    assert created["payload"]["payment_mode"] == "deposit"
    assert created["payload"]["amount_due_now"] == due_now


def test_payment_modes_that_do_not_apply(platform: Platform, participant: dict) -> None:
    event = platform.event()
    no_deposit = platform.ticket_type(event["id"], price_amount=1000)
    response = platform.register(
        event["id"], participant, ticket_type_id=no_deposit["id"], payment_mode="deposit"
    )
    _error(response, 422, "deposit_unavailable")
    response = platform.register(
        event["id"], participant, ticket_type_id=no_deposit["id"], payment_mode="free"
    )
    _error(response, 422, "invalid_payment_mode")
    _error(
        platform.register(
            event["id"], participant, ticket_type_id=no_deposit["id"], payment_mode="x"
        ),
        422,
        "validation_error",
    )
    assert platform.ticket(event["id"], no_deposit["id"])["sold"] == 0


def test_from_a_hold(platform: Platform, participant: dict, owner_engine: Engine) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], price_amount=1000, deposit_amount=100, capacity=5)
    hold = platform.reserve(event["id"], participant, tt["id"], quantity=2)
    assert platform.ticket(event["id"], tt["id"])["sold"] == 2

    registration = platform.registered(
        event["id"], participant, reservation_id=hold["id"], payment_mode="deposit"
    )
    assert registration["reservation_id"] == hold["id"]
    assert registration["ticket_type_id"] == tt["id"]
    assert registration["quantity"] == 2
    assert registration["status"] == "pending_payment"
    assert registration["amount_total"] == 2000
    assert registration["amount_due_now"] == 200
    # The held seats became the registration's: nothing is counted twice.
    assert platform.ticket(event["id"], tt["id"])["sold"] == 2
    converted = platform.client.get(
        f"{V1}/reservations/{hold['id']}", headers=participant["headers"]
    )
    assert converted.json()["status"] == "converted"
    [created] = _outbox(owner_engine, registration["id"])
    assert created["payload"]["reservation_id"] == hold["id"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"quantity": 1},
        {"ticket_type_id": "not-a-uuid"},
        {"ticket_type_id": str(uuid.uuid4()), "reservation_id": str(uuid.uuid4())},
        {"ticket_type_id": str(uuid.uuid4()), "quantity": 0},
        {"ticket_type_id": str(uuid.uuid4()), "quantity": 101},
        {"ticket_type_id": str(uuid.uuid4()), "seats": 1},
    ],
)
def test_registration_body_validation(platform: Platform, participant: dict, body: dict) -> None:
    event = platform.event()
    _error(platform.register(event["id"], participant, **body), 422, "validation_error")


def test_registration_needs_a_signed_in_user(platform: Platform) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    _error(platform.register(event["id"], None, ticket_type_id=tt["id"]), 401, "unauthorized")


# --- one live registration per participant ---------------------------------------------------------


def test_one_live_registration_per_event(platform: Platform, participant: dict) -> None:
    event = platform.event()
    first = platform.ticket_type(event["id"], name="First")
    second = platform.ticket_type(event["id"], name="Second")
    registration = platform.registered(event["id"], participant, ticket_type_id=first["id"])
    for tt in (first, second):
        _error(
            platform.register(event["id"], participant, ticket_type_id=tt["id"]),
            409,
            "already_registered",
        )
    # The refused attempts took no seats.
    assert platform.ticket(event["id"], first["id"])["sold"] == 1
    assert platform.ticket(event["id"], second["id"])["sold"] == 0

    assert platform.cancel(registration["id"], participant).status_code == 200
    again = platform.registered(event["id"], participant, ticket_type_id=second["id"])
    assert again["status"] == "confirmed"


def test_a_hold_cannot_make_a_second_registration(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    hold = platform.reserve(event["id"], participant, tt["id"])
    platform.registered(event["id"], participant, ticket_type_id=tt["id"])
    _error(
        platform.register(event["id"], participant, reservation_id=hold["id"]),
        409,
        "already_registered",
    )


# --- the sale rules -------------------------------------------------------------------------------


def test_sold_out(platform: Platform) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], capacity=2)
    platform.registered(
        event["id"], platform.api.register("a"), ticket_type_id=tt["id"], quantity=2
    )
    late = platform.register(event["id"], platform.api.register("late"), ticket_type_id=tt["id"])
    assert _error(late, 409, "sold_out")["details"] == {"ticket_type_id": tt["id"]}
    assert platform.ticket(event["id"], tt["id"])["sold"] == 2


def test_event_wide_capacity(platform: Platform) -> None:
    event = platform.event(publish=False, capacity=3)
    one = platform.ticket_type(event["id"], name="One", capacity=2)
    two = platform.ticket_type(event["id"], name="Two", capacity=2)
    platform.move(event["id"], "publish")
    platform.registered(
        event["id"], platform.api.register("a"), ticket_type_id=one["id"], quantity=2
    )
    platform.registered(event["id"], platform.api.register("b"), ticket_type_id=two["id"])
    late = platform.register(event["id"], platform.api.register("late"), ticket_type_id=two["id"])
    assert _error(late, 409, "sold_out")["details"] == {"scope": "event"}
    # The refused claim gave the ticket type's seat back.
    assert platform.ticket(event["id"], two["id"])["sold"] == 1


def test_per_order_maximum(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], max_per_order=2)
    response = platform.register(event["id"], participant, ticket_type_id=tt["id"], quantity=3)
    assert _error(response, 422, "max_per_order")["details"] == {"max_per_order": 2}
    platform.registered(event["id"], participant, ticket_type_id=tt["id"], quantity=2)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"is_active": False}, "not_on_sale"),
        ({"sales_starts_at": _at(days=1).isoformat()}, "not_on_sale"),
        ({"sales_ends_at": _at(minutes=-1).isoformat()}, "not_on_sale"),
    ],
)
def test_ticket_type_not_on_sale(
    platform: Platform, participant: dict, fields: dict, code: str
) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], **fields)
    _error(platform.register(event["id"], participant, ticket_type_id=tt["id"]), 409, code)
    _error(
        platform.client.post(
            f"{V1}/events/{event['id']}/reservations",
            json={"ticket_type_id": tt["id"]},
            headers=participant["headers"],
        ),
        409,
        code,
    )
    assert platform.ticket(event["id"], tt["id"])["sold"] == 0


def test_open_sales_window(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(
        event["id"],
        sales_starts_at=_at(hours=-1).isoformat(),
        sales_ends_at=_at(hours=1).isoformat(),
    )
    platform.registered(event["id"], participant, ticket_type_id=tt["id"])


@pytest.mark.parametrize(
    "fields",
    [
        {"registration_opens_at": _at(days=1).isoformat()},
        {"registration_closes_at": _at(minutes=-1).isoformat()},
        {"start": _at(days=-2)},  # the event is over
    ],
)
def test_registration_window(platform: Platform, participant: dict, fields: dict) -> None:
    event = platform.event(**fields)
    tt = platform.ticket_type(event["id"])
    _error(
        platform.register(event["id"], participant, ticket_type_id=tt["id"]),
        409,
        "registration_closed",
    )


def test_registration_within_its_window(platform: Platform, participant: dict) -> None:
    event = platform.event(
        registration_opens_at=_at(hours=-1).isoformat(),
        registration_closes_at=_at(hours=1).isoformat(),
    )
    tt = platform.ticket_type(event["id"])
    platform.registered(event["id"], participant, ticket_type_id=tt["id"])


@pytest.mark.parametrize(("action", "status"), [("cancel", "cancelled"), ("complete", "completed")])
def test_closed_events_take_no_registrations(
    platform: Platform, participant: dict, action: str, status: str
) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    platform.move(event["id"], action)
    response = platform.register(event["id"], participant, ticket_type_id=tt["id"])
    assert _error(response, 409, "registration_closed")["details"] == {"status": status}


def test_drafts_and_unknown_ids_are_404(platform: Platform, participant: dict) -> None:
    draft = platform.event(publish=False)
    tt = platform.ticket_type(draft["id"])
    _error(platform.register(draft["id"], participant, ticket_type_id=tt["id"]), 404, "not_found")
    # Organizers register as participants: their drafts are closed to them too.
    _error(
        platform.register(draft["id"], platform.owner, ticket_type_id=tt["id"]), 404, "not_found"
    )

    event = platform.event()
    for body in (
        {"ticket_type_id": str(uuid.uuid4())},
        {"ticket_type_id": tt["id"]},  # another event's ticket type
        {"reservation_id": str(uuid.uuid4())},
    ):
        _error(platform.register(event["id"], participant, **body), 404, "not_found")
    _error(
        platform.register(str(uuid.uuid4()), participant, ticket_type_id=tt["id"]), 404, "not_found"
    )


# --- private events -------------------------------------------------------------------------------


def _private_event(platform: Platform) -> tuple[dict, dict, dict]:
    group = platform.client.post(
        f"{V1}/organizations/{platform.org['id']}/groups",
        json={"name": f"Group {uuid.uuid4().hex[:8]}"},
        headers=platform.owner["headers"],
    )
    assert group.status_code == 201, group.text
    invite = platform.client.post(
        f"{V1}/groups/{group.json()['id']}/invite", headers=platform.owner["headers"]
    )
    assert invite.status_code == 201, invite.text
    member = platform.api.register("group-member")
    joined = platform.client.post(
        f"{V1}/group-invites/accept",
        json={"code": invite.json()["code"]},
        headers=member["headers"],
    )
    assert joined.status_code == 200, joined.text
    event = platform.event(visibility="private", group_id=group.json()["id"])
    return event, platform.ticket_type(event["id"]), member


def test_private_event_is_for_its_group(
    platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event, tt, member = _private_event(platform)
    _error(platform.register(event["id"], participant, ticket_type_id=tt["id"]), 404, "not_found")
    _error(
        platform.client.post(
            f"{V1}/events/{event['id']}/reservations",
            json={"ticket_type_id": tt["id"]},
            headers=participant["headers"],
        ),
        404,
        "not_found",
    )
    registration = platform.registered(event["id"], member, ticket_type_id=tt["id"])
    assert registration["status"] == "confirmed"
    assert {str(f["tenant_id"]) for f in _outbox(owner_engine, registration["id"])} == {
        platform.org["id"]
    }
    assert platform.ticket(event["id"], tt["id"])["sold"] == 1


# --- reading --------------------------------------------------------------------------------------


def test_organizer_list_with_participants(platform: Platform) -> None:
    event = platform.event()
    free = platform.ticket_type(event["id"], name="Free")
    paid = platform.ticket_type(event["id"], name="Paid", price_amount=500)
    alice = platform.api.register("Alice")
    bob = platform.api.register("Bob")
    carol = platform.api.register("Carol")
    r_alice = platform.registered(event["id"], alice, ticket_type_id=free["id"])
    r_bob = platform.registered(event["id"], bob, ticket_type_id=paid["id"])
    r_carol = platform.registered(event["id"], carol, ticket_type_id=free["id"])
    assert platform.cancel(r_carol["id"], carol).status_code == 200
    other = platform.event()
    other_tt = platform.ticket_type(other["id"])
    platform.registered(other["id"], alice, ticket_type_id=other_tt["id"])

    moderator = platform.member("moderator")
    for reader in (platform.owner, moderator):
        response = platform.listing(event["id"], reader)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["next_cursor"] is None
        assert [r["id"] for r in page["items"]] == [r_alice["id"], r_bob["id"], r_carol["id"]]
        people = {r["id"]: r["participant"] for r in page["items"]}
        assert people[r_alice["id"]] == {
            "user_id": alice["user"]["id"],
            "display_name": "Alice",
            "email": alice["user"]["email"],
        }
        assert people[r_bob["id"]]["email"] == bob["user"]["email"]

    analyst = platform.member("analyst")
    response = platform.listing(event["id"], analyst)
    assert response.status_code == 200, response.text
    for item in response.json()["items"]:
        assert item["participant"]["display_name"] is None
        assert item["participant"]["email"] is None
    assert response.json()["items"][0]["participant"]["user_id"] == alice["user"]["id"]


def test_organizer_list_filters_and_pages(platform: Platform) -> None:
    event = platform.event()
    free = platform.ticket_type(event["id"], name="Free")
    paid = platform.ticket_type(event["id"], name="Paid", price_amount=500)
    regs = [
        platform.registered(
            event["id"], platform.api.register(f"p{i}"), ticket_type_id=(free, paid)[i % 2]["id"]
        )
        for i in range(5)
    ]
    cancelled = regs[0]
    assert platform.cancel(cancelled["id"], platform.owner).status_code == 200

    def ids(**params) -> list[str]:
        response = platform.listing(event["id"], platform.owner, **params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert ids(status="cancelled") == [cancelled["id"]]
    assert ids(status="confirmed") == [regs[2]["id"], regs[4]["id"]]
    assert ids(status="pending_payment") == [regs[1]["id"], regs[3]["id"]]
    assert ids(ticket_type_id=paid["id"]) == [regs[1]["id"], regs[3]["id"]]
    assert ids(ticket_type_id=free["id"], status="confirmed") == [regs[2]["id"], regs[4]["id"]]

    first = platform.listing(event["id"], platform.owner, limit=2).json()
    assert [r["id"] for r in first["items"]] == [regs[0]["id"], regs[1]["id"]]
    second = platform.listing(
        event["id"], platform.owner, limit=2, cursor=first["next_cursor"]
    ).json()
    assert [r["id"] for r in second["items"]] == [regs[2]["id"], regs[3]["id"]]
    third = platform.listing(
        event["id"], platform.owner, limit=2, cursor=second["next_cursor"]
    ).json()
    assert [r["id"] for r in third["items"]] == [regs[4]["id"]]
    assert third["next_cursor"] is None

    _error(platform.listing(event["id"], platform.owner, status="paid"), 422, "validation_error")
    _error(platform.listing(event["id"], platform.owner, limit=0), 422, "validation_error")
    _error(platform.listing(event["id"], platform.owner, cursor="x"), 422, "validation_error")


def test_organizer_list_is_for_members(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    platform.registered(event["id"], participant, ticket_type_id=tt["id"])
    _error(platform.listing(event["id"], participant), 404, "not_found")
    other = Platform(platform.client, platform.api, platform.admin)
    _error(platform.listing(event["id"], other.owner), 404, "not_found")
    _error(platform.client.get(f"{V1}/events/{event['id']}/registrations"), 401, "unauthorized")


def test_get_one_registration(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    registration = platform.registered(event["id"], participant, ticket_type_id=tt["id"])
    for reader in (participant, platform.owner, platform.member("analyst")):
        response = platform.get(registration["id"], reader)
        assert response.status_code == 200, response.text
        assert response.json() == registration
    stranger = platform.api.register("stranger")
    _error(platform.get(registration["id"], stranger), 404, "not_found")
    other = Platform(platform.client, platform.api, platform.admin)
    _error(platform.get(registration["id"], other.owner), 404, "not_found")
    _error(platform.get(str(uuid.uuid4()), participant), 404, "not_found")
    _error(platform.client.get(f"{V1}/registrations/{registration['id']}"), 401, "unauthorized")


def test_my_registrations_across_organizations(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    first = platform.registered(event["id"], participant, ticket_type_id=tt["id"])
    other = Platform(platform.client, platform.api, platform.admin)
    other_event = other.event()
    other_tt = other.ticket_type(other_event["id"], price_amount=100)
    second = other.registered(other_event["id"], participant, ticket_type_id=other_tt["id"])
    someone_else = platform.api.register("someone")
    platform.registered(event["id"], someone_else, ticket_type_id=tt["id"])

    response = platform.client.get(f"{V1}/users/me/registrations", headers=participant["headers"])
    assert response.status_code == 200, response.text
    assert response.json() == [second, first]  # newest first
    fresh = platform.api.register("fresh")
    assert (
        platform.client.get(f"{V1}/users/me/registrations", headers=fresh["headers"]).json() == []
    )
    _error(platform.client.get(f"{V1}/users/me/registrations"), 401, "unauthorized")


# --- cancellation ---------------------------------------------------------------------------------


def test_participant_cancels(platform: Platform, participant: dict, owner_engine: Engine) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], capacity=2, price_amount=700)
    registration = platform.registered(
        event["id"], participant, ticket_type_id=tt["id"], quantity=2
    )
    assert platform.ticket(event["id"], tt["id"])["available"] == 0

    response = platform.cancel(registration["id"], participant, reason="Cannot make it")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"]
    assert platform.ticket(event["id"], tt["id"])["available"] == 2

    facts = _outbox(owner_engine, registration["id"])
    assert [f["event_type"] for f in facts] == ["registration.created", "registration.cancelled"]
    fact = facts[-1]
    assert str(fact["tenant_id"]) == platform.org["id"]
    assert fact["payload"]["registration_id"] == registration["id"]
    assert fact["payload"]["event_id"] == event["id"]
    assert fact["payload"]["ticket_type_id"] == tt["id"]
    assert fact["payload"]["user_id"] == participant["user"]["id"]
    assert fact["payload"]["quantity"] == 2
    assert fact["payload"]["reason"] == "participant: Cannot make it"
    assert fact["payload"]["amount_paid"] == 0
    assert fact["payload"]["currency"] == "EUR"

    again = platform.cancel(registration["id"], participant)
    assert _error(again, 409, "invalid_state")["details"] == {"status": "cancelled"}
    assert platform.ticket(event["id"], tt["id"])["available"] == 2


@pytest.mark.parametrize("role", ["owner", "moderator"])
def test_organizer_cancels(
    platform: Platform, participant: dict, owner_engine: Engine, role: str
) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"], capacity=1)
    registration = platform.registered(event["id"], participant, ticket_type_id=tt["id"])
    organizer = platform.owner if role == "owner" else platform.member(role)
    response = platform.cancel(registration["id"], organizer)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert platform.ticket(event["id"], tt["id"])["sold"] == 0
    fact = _outbox(owner_engine, registration["id"])[-1]
    assert fact["event_type"] == "registration.cancelled"
    assert fact["payload"]["reason"] == "organizer"
    assert str(fact["tenant_id"]) == platform.org["id"]
    # The freed seat is someone else's now.
    platform.registered(event["id"], platform.api.register("next"), ticket_type_id=tt["id"])


def test_who_may_not_cancel(platform: Platform, participant: dict) -> None:
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    registration = platform.registered(event["id"], participant, ticket_type_id=tt["id"])
    analyst = platform.member("analyst")
    _error(platform.cancel(registration["id"], analyst), 403, "insufficient_role")
    _error(platform.cancel(registration["id"], platform.api.register("x")), 404, "not_found")
    other = Platform(platform.client, platform.api, platform.admin)
    _error(platform.cancel(registration["id"], other.owner), 404, "not_found")
    _error(platform.cancel(str(uuid.uuid4()), participant), 404, "not_found")
    assert platform.get(registration["id"], participant).json()["status"] == "confirmed"
    assert platform.ticket(event["id"], tt["id"])["sold"] == 1


def test_participant_cancels_after_the_event_was_unpublished(
    platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    """Unpublishing hides the event from participants; their seats must still be theirs to
    give back (and the organizer's counter must follow)."""
    event = platform.event()
    tt = platform.ticket_type(event["id"])
    registration = platform.registered(event["id"], participant, ticket_type_id=tt["id"])
    platform.move(event["id"], "unpublish")

    response = platform.cancel(registration["id"], participant)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert platform.ticket(event["id"], tt["id"])["sold"] == 0
    assert _outbox(owner_engine, registration["id"])[-1]["event_type"] == "registration.cancelled"
