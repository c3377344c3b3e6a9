"""Registrations: direct and from a hold, free and paid (full or deposit), the sale rules, the
organizer's and the participant's views, cancellation, private events, outbox events."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    V1,
    Organizer,
    assert_error,
    at,
    cancel_registration,
    get_reservation,
    items_of,
    outbox_rows,
    register,
    registered,
    reserve,
    reserved,
)


class Platform(Organizer):
    """An organization with its owner, and the organizer's registration calls made below."""

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
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], capacity=5, currency="EUR")
    response = register(client, event["id"], participant, ticket_type_id=tt["id"], quantity=2)
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
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 2

    created, confirmed = outbox_rows(owner_engine, registration["id"])
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
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], price_amount=2500, currency="USD")
    registration = registered(client, event["id"], participant, ticket_type_id=tt["id"], quantity=3)
    assert registration["status"] == "pending_payment"
    assert registration["payment_mode"] == "full"
    assert registration["currency"] == "USD"
    assert registration["amount_total"] == 7500
    assert registration["amount_due_now"] == 7500
    assert registration["amount_paid"] == 0
    assert registration["confirmed_at"] is None
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 3

    [created] = outbox_rows(owner_engine, registration["id"])
    assert created["event_type"] == "registration.created"
    assert str(created["tenant_id"]) == platform.org["id"]
    assert created["payload"]["status"] == "pending_payment"
    assert created["payload"]["payment_mode"] == "full"
    assert created["payload"]["amount_total"] == 7500
    assert created["payload"]["amount_due_now"] == 7500
    assert created["payload"]["currency"] == "USD"


def test_explicit_full_payment_mode(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], price_amount=1000, deposit_percent=10)
    registration = registered(
        client, event["id"], participant, ticket_type_id=tt["id"], payment_mode="full"
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
    client: TestClient,
    platform: Platform,
    participant: dict,
    owner_engine: Engine,
    deposit,
    quantity,
    due_now,
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], price_amount=1000, **deposit)
    registration = registered(
        client,
        event["id"],
        participant,
        ticket_type_id=tt["id"],
        quantity=quantity,
        payment_mode="deposit",
    )
    assert registration["status"] == "pending_payment"
    assert registration["payment_mode"] == "deposit"
    assert registration["amount_total"] == 1000 * quantity
    assert registration["amount_due_now"] == due_now
    [created] = outbox_rows(owner_engine, registration["id"])
    assert created["payload"]["payment_mode"] == "deposit"
    assert created["payload"]["amount_due_now"] == due_now


def test_payment_modes_that_do_not_apply(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    event = platform.event(publish=True)
    no_deposit = platform.ticket_type(event["id"], price_amount=1000)
    response = register(
        client, event["id"], participant, ticket_type_id=no_deposit["id"], payment_mode="deposit"
    )
    assert_error(response, 422, "deposit_unavailable")
    response = register(
        client, event["id"], participant, ticket_type_id=no_deposit["id"], payment_mode="free"
    )
    assert_error(response, 422, "invalid_payment_mode")
    assert_error(
        register(
            client, event["id"], participant, ticket_type_id=no_deposit["id"], payment_mode="x"
        ),
        422,
        "validation_error",
    )
    assert platform.ticket_type_now(event["id"], no_deposit["id"])["sold"] == 0


def test_from_a_hold(
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], price_amount=1000, deposit_amount=100, capacity=5)
    hold = reserved(client, event["id"], participant, tt["id"], quantity=2)
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 2

    registration = registered(
        client, event["id"], participant, reservation_id=hold["id"], payment_mode="deposit"
    )
    assert registration["reservation_id"] == hold["id"]
    assert registration["ticket_type_id"] == tt["id"]
    assert registration["quantity"] == 2
    assert registration["status"] == "pending_payment"
    assert registration["amount_total"] == 2000
    assert registration["amount_due_now"] == 200
    # The held seats became the registration's: nothing is counted twice.
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 2
    converted = get_reservation(client, hold["id"], participant)
    assert converted.json()["status"] == "converted"
    [created] = outbox_rows(owner_engine, registration["id"])
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
def test_registration_body_validation(
    client: TestClient, platform: Platform, participant: dict, body: dict
) -> None:
    event = platform.event(publish=True)
    assert_error(register(client, event["id"], participant, **body), 422, "validation_error")


def test_registration_needs_a_signed_in_user(client: TestClient, platform: Platform) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    assert_error(register(client, event["id"], None, ticket_type_id=tt["id"]), 401, "unauthorized")


# --- one live registration per participant ---------------------------------------------------------


def test_one_live_registration_per_event(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    event = platform.event(publish=True)
    first = platform.ticket_type(event["id"], name="First")
    second = platform.ticket_type(event["id"], name="Second")
    registration = registered(client, event["id"], participant, ticket_type_id=first["id"])
    for tt in (first, second):
        assert_error(
            register(client, event["id"], participant, ticket_type_id=tt["id"]),
            409,
            "already_registered",
        )
    # The refused attempts took no seats.
    assert platform.ticket_type_now(event["id"], first["id"])["sold"] == 1
    assert platform.ticket_type_now(event["id"], second["id"])["sold"] == 0

    assert cancel_registration(client, registration["id"], participant).status_code == 200
    again = registered(client, event["id"], participant, ticket_type_id=second["id"])
    assert again["status"] == "confirmed"


def test_a_hold_cannot_make_a_second_registration(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    hold = reserved(client, event["id"], participant, tt["id"])
    registered(client, event["id"], participant, ticket_type_id=tt["id"])
    assert_error(
        register(client, event["id"], participant, reservation_id=hold["id"]),
        409,
        "already_registered",
    )


# --- the sale rules -------------------------------------------------------------------------------


def test_sold_out(client: TestClient, platform: Platform) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], capacity=2)
    registered(client, event["id"], platform.api.register("a"), ticket_type_id=tt["id"], quantity=2)
    late = register(client, event["id"], platform.api.register("late"), ticket_type_id=tt["id"])
    assert assert_error(late, 409, "sold_out")["details"] == {"ticket_type_id": tt["id"]}
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 2


def test_event_wide_capacity(client: TestClient, platform: Platform) -> None:
    event = platform.event(capacity=3)
    one = platform.ticket_type(event["id"], name="One", capacity=2)
    two = platform.ticket_type(event["id"], name="Two", capacity=2)
    platform.publish(event["id"])
    registered(
        client, event["id"], platform.api.register("a"), ticket_type_id=one["id"], quantity=2
    )
    registered(client, event["id"], platform.api.register("b"), ticket_type_id=two["id"])
    late = register(client, event["id"], platform.api.register("late"), ticket_type_id=two["id"])
    assert assert_error(late, 409, "sold_out")["details"] == {"scope": "event"}
    # The refused claim gave the ticket type's seat back.
    assert platform.ticket_type_now(event["id"], two["id"])["sold"] == 1


def test_per_order_maximum(client: TestClient, platform: Platform, participant: dict) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], max_per_order=2)
    response = register(client, event["id"], participant, ticket_type_id=tt["id"], quantity=3)
    assert assert_error(response, 422, "max_per_order")["details"] == {"max_per_order": 2}
    registered(client, event["id"], participant, ticket_type_id=tt["id"], quantity=2)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"is_active": False}, "not_on_sale"),
        ({"sales_starts_at": at(days=1).isoformat()}, "not_on_sale"),
        ({"sales_ends_at": at(minutes=-1).isoformat()}, "not_on_sale"),
    ],
)
def test_ticket_type_not_on_sale(
    client: TestClient, platform: Platform, participant: dict, fields: dict, code: str
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], **fields)
    assert_error(register(client, event["id"], participant, ticket_type_id=tt["id"]), 409, code)
    assert_error(
        reserve(client, event["id"], participant, tt["id"]),
        409,
        code,
    )
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 0


def test_open_sales_window(client: TestClient, platform: Platform, participant: dict) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(
        event["id"],
        sales_starts_at=at(hours=-1).isoformat(),
        sales_ends_at=at(hours=1).isoformat(),
    )
    registered(client, event["id"], participant, ticket_type_id=tt["id"])


@pytest.mark.parametrize(
    "fields",
    [
        {"registration_opens_at": at(days=1).isoformat()},
        {"registration_closes_at": at(minutes=-1).isoformat()},
        {"start": at(days=-2)},  # the event is over
    ],
)
def test_registration_window(
    client: TestClient, platform: Platform, participant: dict, fields: dict
) -> None:
    event = platform.event(publish=True, **fields)
    tt = platform.ticket_type(event["id"])
    assert_error(
        register(client, event["id"], participant, ticket_type_id=tt["id"]),
        409,
        "registration_closed",
    )


def test_registration_within_its_window(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    event = platform.event(
        publish=True,
        registration_opens_at=at(hours=-1).isoformat(),
        registration_closes_at=at(hours=1).isoformat(),
    )
    tt = platform.ticket_type(event["id"])
    registered(client, event["id"], participant, ticket_type_id=tt["id"])


@pytest.mark.parametrize(("action", "status"), [("cancel", "cancelled"), ("complete", "completed")])
def test_closed_events_take_no_registrations(
    client: TestClient, platform: Platform, participant: dict, action: str, status: str
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    platform.moved(event["id"], action)
    response = register(client, event["id"], participant, ticket_type_id=tt["id"])
    assert assert_error(response, 409, "registration_closed")["details"] == {"status": status}


def test_drafts_and_unknown_ids_are_404(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    draft = platform.event()
    tt = platform.ticket_type(draft["id"])
    assert_error(
        register(client, draft["id"], participant, ticket_type_id=tt["id"]), 404, "not_found"
    )
    # Organizers register as participants: their drafts are closed to them too.
    assert_error(
        register(client, draft["id"], platform.owner, ticket_type_id=tt["id"]), 404, "not_found"
    )

    event = platform.event(publish=True)
    for body in (
        {"ticket_type_id": str(uuid.uuid4())},
        {"ticket_type_id": tt["id"]},  # another event's ticket type
        {"reservation_id": str(uuid.uuid4())},
    ):
        assert_error(register(client, event["id"], participant, **body), 404, "not_found")
    assert_error(
        register(client, str(uuid.uuid4()), participant, ticket_type_id=tt["id"]), 404, "not_found"
    )


# --- private events -------------------------------------------------------------------------------


def _private_event(platform: Platform) -> tuple[dict, dict, dict]:
    group, member = platform.group_with_member()
    event = platform.event(publish=True, visibility="private", group_id=group["id"])
    return event, platform.ticket_type(event["id"]), member


def test_private_event_is_for_its_group(
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event, tt, member = _private_event(platform)
    assert_error(
        register(client, event["id"], participant, ticket_type_id=tt["id"]), 404, "not_found"
    )
    assert_error(
        reserve(client, event["id"], participant, tt["id"]),
        404,
        "not_found",
    )
    registration = registered(client, event["id"], member, ticket_type_id=tt["id"])
    assert registration["status"] == "confirmed"
    assert {str(f["tenant_id"]) for f in outbox_rows(owner_engine, registration["id"])} == {
        platform.org["id"]
    }
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 1


# --- reading --------------------------------------------------------------------------------------


def test_organizer_list_with_participants(client: TestClient, platform: Platform) -> None:
    event = platform.event(publish=True)
    free = platform.ticket_type(event["id"], name="Free")
    paid = platform.ticket_type(event["id"], name="Paid", price_amount=500)
    alice = platform.api.register("Alice")
    bob = platform.api.register("Bob")
    carol = platform.api.register("Carol")
    r_alice = registered(client, event["id"], alice, ticket_type_id=free["id"])
    r_bob = registered(client, event["id"], bob, ticket_type_id=paid["id"])
    r_carol = registered(client, event["id"], carol, ticket_type_id=free["id"])
    assert cancel_registration(client, r_carol["id"], carol).status_code == 200
    other = platform.event(publish=True)
    other_tt = platform.ticket_type(other["id"])
    registered(client, other["id"], alice, ticket_type_id=other_tt["id"])

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


def test_organizer_list_filters_and_pages(client: TestClient, platform: Platform) -> None:
    event = platform.event(publish=True)
    free = platform.ticket_type(event["id"], name="Free")
    paid = platform.ticket_type(event["id"], name="Paid", price_amount=500)
    regs = [
        registered(
            client,
            event["id"],
            platform.api.register(f"p{i}"),
            ticket_type_id=(free, paid)[i % 2]["id"],
        )
        for i in range(5)
    ]
    cancelled = regs[0]
    assert cancel_registration(client, cancelled["id"], platform.owner).status_code == 200

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

    assert_error(
        platform.listing(event["id"], platform.owner, status="paid"), 422, "validation_error"
    )
    assert_error(platform.listing(event["id"], platform.owner, limit=0), 422, "validation_error")
    assert_error(platform.listing(event["id"], platform.owner, limit=101), 422, "validation_error")
    assert_error(platform.listing(event["id"], platform.owner, cursor="x"), 422, "invalid_cursor")


def test_organizer_list_searches_people_and_ticket_codes(
    client: TestClient, platform: Platform
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])

    def person(name: str) -> dict:
        user = platform.api.register("p")
        renamed = client.patch(
            f"{V1}/users/me", json={"display_name": name}, headers=user["headers"]
        )
        assert renamed.status_code == 200, renamed.text
        return user

    ada = person("Ada Lovelace")
    adam = person("Adam 100%_sure")
    grace = platform.api.register("Grace")
    r_ada = registered(client, event["id"], ada, ticket_type_id=tt["id"])
    r_adam = registered(client, event["id"], adam, ticket_type_id=tt["id"])
    r_grace = registered(client, event["id"], grace, ticket_type_id=tt["id"])
    other = platform.event(publish=True)
    registered(
        client, other["id"], person("Ada elsewhere"),
        ticket_type_id=platform.ticket_type(other["id"])["id"],
    )  # fmt: skip

    def found(q: str, reader: dict | None = None) -> list[str]:
        response = platform.listing(event["id"], reader or platform.owner, q=q)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert found("ada") == [r_ada["id"], r_adam["id"]]
    assert found("  LOVELACE ") == [r_ada["id"]]
    assert found(grace["user"]["email"].upper()) == [r_grace["id"]]
    assert found("%") == [r_adam["id"]]  # a LIKE wildcard is a plain character
    assert found("0%_") == [r_adam["id"]]
    assert found("nobody") == []

    listed = {r["id"]: r for r in platform.listing(event["id"], platform.owner).json()["items"]}
    code = listed[r_grace["id"]]["ticket_code"]
    ticket = client.get(f"{V1}/registrations/{r_grace['id']}/ticket", headers=grace["headers"])
    assert code == ticket.json()["ticket_code"]
    assert found(code) == [r_grace["id"]]
    moderator = platform.member("moderator")
    assert found(code, moderator) == [r_grace["id"]]
    forged = code[:-4] + ("AAAA" if not code.endswith("AAAA") else "BBBB")
    assert found(forged) == []

    analyst = platform.member("analyst")
    refused = platform.listing(event["id"], analyst, q="ada")
    assert_error(refused, 403, "insufficient_role")
    assert_error(platform.listing(event["id"], analyst, q=code), 403, "insufficient_role")
    for item in platform.listing(event["id"], analyst).json()["items"]:
        assert item["ticket_code"] is None
    assert_error(platform.listing(event["id"], platform.owner, q=""), 422, "validation_error")
    assert_error(
        platform.listing(event["id"], platform.owner, q="x" * 101), 422, "validation_error"
    )


def test_organizer_list_filters_by_payment_and_check_in(
    client: TestClient, platform: Platform
) -> None:
    from tests.factories import paying, sandbox, settle_sandbox

    sandbox(client).deliver_all(lambda body, headers: 200)  # nothing of another test
    event = platform.event(publish=True)
    free = platform.ticket_type(event["id"], name="Free")
    full = platform.ticket_type(event["id"], name="Full", price_amount=5000)
    deposit = platform.ticket_type(
        event["id"], name="Deposit", price_amount=10000, deposit_amount=2500
    )

    def buyer(name: str, tt: dict, **body) -> tuple[dict, dict]:
        user = platform.api.register(name)
        return user, registered(client, event["id"], user, ticket_type_id=tt["id"], **body)

    _, r_free = buyer("free", free)
    u_paid, r_paid = buyer("paid", full)
    _, r_owing = buyer("owing", full)
    u_dep, r_dep = buyer("deposit", deposit, payment_mode="deposit")
    _, r_dep_owing = buyer("deposit-owing", deposit, payment_mode="deposit")
    paying(client, r_paid["id"], u_paid)
    paying(client, r_dep["id"], u_dep)
    settle_sandbox(client)
    checked = client.post(
        f"{V1}/registrations/{r_free['id']}/check-in", headers=platform.owner["headers"]
    )
    assert checked.status_code == 200, checked.text

    def ids(**params) -> list[str]:
        response = platform.listing(event["id"], platform.owner, **params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert ids(payment="paid") == [r_paid["id"]]
    assert ids(payment="deposit") == [r_dep["id"]]
    assert ids(payment="owing") == [r_owing["id"], r_dep_owing["id"]]
    assert ids(payment="owing", ticket_type_id=full["id"]) == [r_owing["id"]]
    assert ids(checked_in="true") == [r_free["id"]]
    assert ids(checked_in="false") == [r_paid["id"], r_owing["id"], r_dep["id"], r_dep_owing["id"]]
    assert ids(checked_in="false", payment="paid", status="confirmed") == [r_paid["id"]]
    item = platform.listing(event["id"], platform.owner, checked_in="true").json()["items"][0]
    assert item["checked_in_at"]
    assert_error(
        platform.listing(event["id"], platform.owner, payment="some"), 422, "validation_error"
    )
    assert_error(
        platform.listing(event["id"], platform.owner, checked_in="maybe"), 422, "validation_error"
    )


def test_organizer_list_is_for_members(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    registered(client, event["id"], participant, ticket_type_id=tt["id"])
    assert_error(platform.listing(event["id"], participant), 404, "not_found")
    other = platform.another()
    assert_error(platform.listing(event["id"], other.owner), 404, "not_found")
    assert_error(client.get(f"{V1}/events/{event['id']}/registrations"), 401, "unauthorized")


def test_get_one_registration(client: TestClient, platform: Platform, participant: dict) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    registration = registered(client, event["id"], participant, ticket_type_id=tt["id"])
    for reader in (participant, platform.owner, platform.member("analyst")):
        response = platform.get(registration["id"], reader)
        assert response.status_code == 200, response.text
        assert response.json() == registration
    stranger = platform.api.register("stranger")
    assert_error(platform.get(registration["id"], stranger), 404, "not_found")
    other = platform.another()
    assert_error(platform.get(registration["id"], other.owner), 404, "not_found")
    assert_error(platform.get(str(uuid.uuid4()), participant), 404, "not_found")
    assert_error(client.get(f"{V1}/registrations/{registration['id']}"), 401, "unauthorized")


def test_my_registrations_across_organizations(
    client: TestClient, platform: Platform, participant: dict
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    first = registered(client, event["id"], participant, ticket_type_id=tt["id"])
    other = platform.another()
    other_event = other.event(publish=True)
    other_tt = other.ticket_type(other_event["id"], price_amount=100)
    second = registered(client, other_event["id"], participant, ticket_type_id=other_tt["id"])
    someone_else = platform.api.register("someone")
    registered(client, event["id"], someone_else, ticket_type_id=tt["id"])

    response = client.get(f"{V1}/users/me/registrations", headers=participant["headers"])
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [second, first], "next_cursor": None}  # newest first
    fresh = platform.api.register("fresh")
    assert items_of(client.get(f"{V1}/users/me/registrations", headers=fresh["headers"])) == []
    assert_error(client.get(f"{V1}/users/me/registrations"), 401, "unauthorized")


# --- cancellation ---------------------------------------------------------------------------------


def test_participant_cancels(
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], capacity=2, price_amount=700)
    registration = registered(client, event["id"], participant, ticket_type_id=tt["id"], quantity=2)
    assert platform.ticket_type_now(event["id"], tt["id"])["available"] == 0

    response = cancel_registration(client, registration["id"], participant, reason="Cannot make it")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"]
    assert platform.ticket_type_now(event["id"], tt["id"])["available"] == 2

    facts = outbox_rows(owner_engine, registration["id"])
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

    again = cancel_registration(client, registration["id"], participant)
    assert assert_error(again, 409, "invalid_state")["details"] == {"status": "cancelled"}
    assert platform.ticket_type_now(event["id"], tt["id"])["available"] == 2


@pytest.mark.parametrize("role", ["owner", "moderator"])
def test_organizer_cancels(
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine, role: str
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"], capacity=1)
    registration = registered(client, event["id"], participant, ticket_type_id=tt["id"])
    organizer = platform.owner if role == "owner" else platform.member(role)
    response = cancel_registration(client, registration["id"], organizer)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 0
    fact = outbox_rows(owner_engine, registration["id"])[-1]
    assert fact["event_type"] == "registration.cancelled"
    assert fact["payload"]["reason"] == "organizer"
    assert str(fact["tenant_id"]) == platform.org["id"]
    # The freed seat is someone else's now.
    registered(client, event["id"], platform.api.register("next"), ticket_type_id=tt["id"])


def test_who_may_not_cancel(client: TestClient, platform: Platform, participant: dict) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    registration = registered(client, event["id"], participant, ticket_type_id=tt["id"])
    analyst = platform.member("analyst")
    assert_error(cancel_registration(client, registration["id"], analyst), 403, "insufficient_role")
    assert_error(
        cancel_registration(client, registration["id"], platform.api.register("x")),
        404,
        "not_found",
    )
    other = platform.another()
    assert_error(cancel_registration(client, registration["id"], other.owner), 404, "not_found")
    assert_error(cancel_registration(client, str(uuid.uuid4()), participant), 404, "not_found")
    assert platform.get(registration["id"], participant).json()["status"] == "confirmed"
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 1


def test_participant_cancels_after_the_event_was_unpublished(
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    """Unpublishing hides the event from participants; their seats must still be theirs to
    give back (and the organizer's counter must follow)."""
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    registration = registered(client, event["id"], participant, ticket_type_id=tt["id"])
    platform.moved(event["id"], "unpublish")

    response = cancel_registration(client, registration["id"], participant)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert platform.ticket_type_now(event["id"], tt["id"])["sold"] == 0
    assert (
        outbox_rows(owner_engine, registration["id"])[-1]["event_type"] == "registration.cancelled"
    )


# --- resending a ticket ---------------------------------------------------------------------------


def test_organizer_resends_a_ticket(
    client: TestClient, platform: Platform, participant: dict, owner_engine: Engine
) -> None:
    event = platform.event(publish=True)
    tt = platform.ticket_type(event["id"])
    registration = registered(client, event["id"], participant, ticket_type_id=tt["id"])
    path = f"{V1}/registrations/{registration['id']}/resend-ticket"
    moderator = platform.member("moderator")
    for organizer in (platform.owner, moderator):
        response = client.post(path, headers=organizer["headers"])
        assert response.status_code == 202, response.text
        assert response.json()["id"] == registration["id"]
    facts = outbox_rows(owner_engine, registration["id"], "registration.ticket_resent")
    assert [f["payload"]["requested_by"] for f in facts] == [
        platform.owner["user"]["id"],
        moderator["user"]["id"],
    ]
    assert facts[0]["payload"]["user_id"] == participant["user"]["id"]
    assert str(facts[0]["tenant_id"]) == platform.org["id"]

    assert_error(client.post(path, headers=platform.member("analyst")["headers"]), 403,
                 "insufficient_role")  # fmt: skip
    assert_error(client.post(path, headers=participant["headers"]), 404, "not_found")
    assert_error(client.post(path, headers=platform.another().owner["headers"]), 404, "not_found")
    assert_error(client.post(path), 401, "unauthorized")

    pending = registered(
        client, event["id"], platform.api.register("pending"),
        ticket_type_id=platform.ticket_type(event["id"], price_amount=900)["id"],
    )  # fmt: skip
    refused = client.post(
        f"{V1}/registrations/{pending['id']}/resend-ticket", headers=platform.owner["headers"]
    )
    assert assert_error(refused, 409, "not_confirmed")["details"] == {"status": "pending_payment"}
    cancel_registration(client, registration["id"], participant)
    refused = client.post(path, headers=platform.owner["headers"])
    assert assert_error(refused, 409, "not_confirmed")["details"] == {"status": "cancelled"}
    assert outbox_rows(owner_engine, pending["id"], "registration.ticket_resent") == []
