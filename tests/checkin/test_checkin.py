"""Tickets and check-in through the API, against the real database."""

from __future__ import annotations

import base64
import threading
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from domain.checkin import service, tickets
from tests.checkin.test_tickets import _decode_qr, _modules, _png_pixels, _svg_modules
from tests.factories import (
    V1,
    Organizer,
    cancel_registration,
    cancelled_registration,
    error_body,
    outbox_rows,
)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _nonce() -> str:
    return f"scan-{uuid.uuid4().hex}"


class Door(Organizer):
    """An organization with a published event (a free and a paid ticket type), and helpers."""

    def __init__(self, client: TestClient, api, admin: dict) -> None:
        super().__init__(client, api, admin)
        self.event_id, self.free, self.paid = self.new_event()

    def new_event(self, organizer: Organizer | None = None) -> tuple[str, str, str]:
        """A published event of this organization (or ``organizer``'s): the ids of the event and
        of its free and its paid ticket type."""
        organizer = organizer or self
        event = organizer.event(title=f"Meetup {uuid.uuid4().hex[:6]}", timezone="UTC")
        free, paid = (
            organizer.ticket_type(event["id"], name=name, capacity=50, price_amount=price)["id"]
            for name, price in (("Free", 0), ("Paid", 1500))
        )
        organizer.publish(event["id"])
        return event["id"], free, paid

    def participant(
        self, event_id: str | None = None, ticket_type_id: str | None = None, quantity: int = 1
    ) -> tuple[dict, dict]:
        """A new user registered for the event (free ticket, confirmed, by default)."""
        return super().participant(event_id or self.event_id, ticket_type_id or self.free, quantity)

    def ticket(self, user: dict | None, registration_id: str, suffix: str = ""):
        headers = user["headers"] if user else {}
        return self.client.get(
            f"{V1}/registrations/{registration_id}/ticket{suffix}", headers=headers
        )

    def code(self, user: dict, registration_id: str) -> str:
        response = self.ticket(user, registration_id)
        assert response.status_code == 200, response.text
        return response.json()["ticket_code"]

    def scan(
        self,
        user: dict,
        code: str,
        nonce: str | None = None,
        event_id: str | None = None,
        client: TestClient | None = None,
    ):
        return (client or self.client).post(
            f"{V1}/events/{event_id or self.event_id}/check-in",
            json={"ticket_code": code, "nonce": nonce or _nonce()},
            headers=user["headers"],
        )

    def check_in(self, user: dict, registration_id: str, nonce: str | None = None):
        return self.client.post(
            f"{V1}/registrations/{registration_id}/check-in",
            json={"nonce": nonce} if nonce else None,
            headers=user["headers"],
        )

    def stats(self, user: dict, event_id: str | None = None):
        return self.client.get(
            f"{V1}/events/{event_id or self.event_id}/check-ins/stats", headers=user["headers"]
        )


@pytest.fixture
def door(client: TestClient, api, admin: dict) -> Door:
    return Door(client, api, admin)


@pytest.fixture
def key(settings) -> bytes:
    return settings.ticket_signing_key.get_secret_value().encode()


def _check_ins(engine: Engine, registration_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM check_ins WHERE registration_id = :id"), {"id": registration_id}
        ).mappings()
        return [dict(r) for r in rows]


def _checkin_events(engine: Engine, registration_id: str) -> list[dict]:
    return outbox_rows(engine, registration_id, "checkin.completed")


# --- tickets ------------------------------------------------------------------------------------


def test_participant_gets_ticket_code_and_qr_images(door: Door, key: bytes) -> None:
    user, registration = door.participant()
    response = door.ticket(user, registration["id"])
    assert response.status_code == 200, response.text
    ticket = response.json()
    assert ticket == {
        "registration_id": registration["id"],
        "event_id": door.event_id,
        "ticket_code": ticket["ticket_code"],
        "status": "confirmed",
    }
    code = ticket["ticket_code"]
    tickets.verify(key, code, uuid.UUID(registration["id"]), _ticket_secret(door, registration))
    assert door.code(user, registration["id"]) == code, "the same code every time"

    png = door.ticket(user, registration["id"], ".png")
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "no-store"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    content, level = _decode_qr(_modules(_png_pixels(png.content))[0])
    assert (content, level) == (code.encode(), "M")

    svg = door.ticket(user, registration["id"], ".svg")
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["cache-control"] == "no-store"
    root = ET.fromstring(svg.text)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert _decode_qr(_svg_modules(root))[0] == code.encode()


def _ticket_secret(door: Door, registration: dict) -> str:
    with door.api.owner_engine.connect() as conn:
        return conn.execute(
            text("SELECT ticket_secret FROM registrations WHERE id = :id"),
            {"id": registration["id"]},
        ).scalar_one()


def test_codes_differ_between_registrations(door: Door) -> None:
    first_user, first = door.participant()
    second_user, second = door.participant()
    assert door.code(first_user, first["id"]) != door.code(second_user, second["id"])


@pytest.mark.parametrize("suffix", ["", ".png", ".svg"])
def test_ticket_access(door: Door, api, admin: dict, suffix: str) -> None:
    user, registration = door.participant()
    stranger, _ = door.participant()
    outsider = api.register("outsider")
    other_owner = api.register("other-owner")
    api.found_organization(other_owner, admin)

    for caller in (stranger, outsider, other_owner):
        response = door.ticket(caller, registration["id"], suffix)
        assert response.status_code == 404, response.text
        assert error_body(response)["code"] == "not_found"
    assert door.ticket(None, registration["id"], suffix).status_code == 401
    assert door.ticket(user, str(uuid.uuid4()), suffix).status_code == 404

    for organizer in (door.owner, door.member("moderator")):
        assert door.ticket(organizer, registration["id"], suffix).status_code == 200
    analyst = door.ticket(door.member("analyst"), registration["id"], suffix)
    assert analyst.status_code == 403, analyst.text
    assert error_body(analyst)["code"] == "insufficient_role"


def test_pending_registration_has_a_ticket(door: Door) -> None:
    user, registration = door.participant(ticket_type_id=door.paid)
    assert registration["status"] == "pending_payment"
    response = door.ticket(user, registration["id"])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending_payment"


@pytest.mark.parametrize("suffix", ["", ".png", ".svg"])
def test_cancelled_registration_has_no_ticket(client: TestClient, door: Door, suffix: str) -> None:
    user, registration = door.participant()
    cancelled_registration(client, registration["id"], user)
    response = door.ticket(user, registration["id"], suffix)
    assert response.status_code == 409, response.text
    assert error_body(response)["code"] == "cancelled"


def test_image_responses_are_declared_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    png = paths[f"{V1}/registrations/{{registration_id}}/ticket.png"]["get"]["responses"]["200"]
    svg = paths[f"{V1}/registrations/{{registration_id}}/ticket.svg"]["get"]["responses"]["200"]
    assert "image/png" in png["content"]
    assert "image/svg+xml" in svg["content"]
    scan = paths[f"{V1}/events/{{event_id}}/check-in"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(scan["responses"])


# --- scanning -------------------------------------------------------------------------------------


def test_scan_checks_in_once(door: Door, owner_engine: Engine) -> None:
    user, registration = door.participant()
    code = door.code(user, registration["id"])
    nonce = _nonce()

    first = door.scan(door.owner, code, nonce)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body == {
        "registration_id": registration["id"],
        "event_id": door.event_id,
        "ticket_type_id": door.free,
        "user_id": user["user"]["id"],
        "quantity": 1,
        "checked_in_at": body["checked_in_at"],
        "checked_in_by": door.owner["user"]["id"],
        "nonce": nonce,
    }
    seen = door.client.get(f"{V1}/registrations/{registration['id']}", headers=user["headers"])
    checked_in_at = datetime.fromisoformat(body["checked_in_at"])
    assert datetime.fromisoformat(seen.json()["checked_in_at"]) == checked_in_at

    retry = door.scan(door.owner, code, nonce)
    assert retry.status_code == 200, retry.text
    assert retry.json() == body, "a retried scan gets the first result"

    again = door.scan(door.member("moderator"), code)
    assert again.status_code == 409, again.text
    error = error_body(again)
    assert error["code"] == "already_checked_in"
    assert datetime.fromisoformat(error["details"]["checked_in_at"]) == checked_in_at
    manual = door.check_in(door.owner, registration["id"])
    assert error_body(manual)["code"] == "already_checked_in"

    rows = _check_ins(owner_engine, registration["id"])
    assert len(rows) == 1
    assert rows[0]["nonce"] == nonce
    assert str(rows[0]["checked_in_by"]) == door.owner["user"]["id"]
    assert rows[0]["created_at"] == checked_in_at

    events = _checkin_events(owner_engine, registration["id"])
    assert len(events) == 1, "one event, however many scans"
    event = events[0]
    assert event["aggregate_type"] == "registration"
    assert str(event["tenant_id"]) == door.org["id"]
    payload = event["payload"]
    assert payload == {
        "aggregate_id": registration["id"],
        "tenant_id": door.org["id"],
        "registration_id": registration["id"],
        "event_id": door.event_id,
        "ticket_type_id": door.free,
        "user_id": user["user"]["id"],
        "quantity": 1,
        "checked_in_by": door.owner["user"]["id"],
        "checked_in_at": payload["checked_in_at"],
    }
    assert datetime.fromisoformat(payload["checked_in_at"]) == checked_in_at


def test_checked_in_registration_cannot_be_cancelled(client: TestClient, door: Door) -> None:
    user, registration = door.participant()
    assert door.scan(door.owner, door.code(user, registration["id"])).status_code == 200
    response = cancel_registration(client, registration["id"], user)
    assert response.status_code == 409
    assert error_body(response)["code"] == "already_checked_in"


def _forgeries(door: Door, key: bytes) -> dict[str, str]:
    user, registration = door.participant()
    _, other = door.participant()
    code = door.code(user, registration["id"])
    raw = base64.urlsafe_b64decode(code)
    other_id = uuid.UUID(other["id"]).bytes
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    return {
        "tampered": base64.urlsafe_b64encode(flipped).decode(),
        "another registration's id": base64.urlsafe_b64encode(
            raw[:1] + other_id + raw[17:]
        ).decode(),
        "another key": tickets.issue(
            b"not-the-server-key", uuid.UUID(registration["id"]), _ticket_secret(door, registration)
        ),
        "guessed secret": tickets.issue(key, uuid.UUID(registration["id"]), "guess"),
        "unknown registration": tickets.issue(key, uuid.uuid4(), "whatever"),
        "garbage": "not a ticket",
        "truncated": code[:-1],
    }


def test_forged_and_garbled_codes_are_invalid(door: Door, key: bytes, owner_engine) -> None:
    for name, forged in _forgeries(door, key).items():
        response = door.scan(door.owner, forged)
        assert response.status_code == 422, (name, response.text)
        assert error_body(response)["code"] == "invalid_code", name
    with owner_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM check_ins WHERE event_id = :e"), {"e": door.event_id}
        ).scalar_one()
    assert count == 0


def test_ticket_of_another_organization_is_an_invalid_code(door: Door, api, admin) -> None:
    """The scanner cannot see another organization's registrations, so a genuine code of theirs
    is indistinguishable from a forged one."""
    other_event, other_free, _ = door.new_event(Organizer(door.client, api, admin))
    user, registration = door.participant(other_event, other_free)
    response = door.scan(door.owner, door.code(user, registration["id"]))
    assert response.status_code == 422, response.text
    assert error_body(response)["code"] == "invalid_code"


def test_scan_error_codes(client: TestClient, door: Door) -> None:
    second_event, second_free, _ = door.new_event()
    user, elsewhere = door.participant(second_event, second_free)
    wrong = door.scan(door.owner, door.code(user, elsewhere["id"]))
    assert wrong.status_code == 409, wrong.text
    assert error_body(wrong)["code"] == "wrong_event"
    assert door.scan(door.owner, door.code(user, elsewhere["id"]), event_id=second_event).json()[
        "event_id"
    ] == (second_event)

    payer, pending = door.participant(ticket_type_id=door.paid)
    not_confirmed = door.scan(door.owner, door.code(payer, pending["id"]))
    assert not_confirmed.status_code == 409, not_confirmed.text
    assert error_body(not_confirmed) == {
        "code": "not_confirmed",
        "message": "The registration is not confirmed",
        "details": {"status": "pending_payment"},
    }

    quitter, cancelled = door.participant()
    code = door.code(quitter, cancelled["id"])
    cancelled_registration(client, cancelled["id"], quitter)
    response = door.scan(door.owner, code)
    assert response.status_code == 409, response.text
    assert error_body(response)["code"] == "cancelled"


def test_a_nonce_is_one_scan(door: Door) -> None:
    first_user, first = door.participant()
    second_user, second = door.participant()
    nonce = _nonce()
    assert door.scan(door.owner, door.code(first_user, first["id"]), nonce).status_code == 200
    reused = door.scan(door.owner, door.code(second_user, second["id"]), nonce)
    assert reused.status_code == 409, reused.text
    assert error_body(reused)["code"] == "nonce_reused"
    assert door.scan(door.owner, door.code(second_user, second["id"])).status_code == 200


def test_nonce_is_required_and_validated(door: Door) -> None:
    user, registration = door.participant()
    code = door.code(user, registration["id"])
    url = f"{V1}/events/{door.event_id}/check-in"
    for body in (
        {"ticket_code": code},
        {"ticket_code": code, "nonce": ""},
        {"ticket_code": code, "nonce": "x" * 129},
        {"ticket_code": code, "nonce": "with space"},
        {"ticket_code": code, "nonce": _nonce(), "extra": 1},
    ):
        response = door.client.post(url, json=body, headers=door.owner["headers"])
        assert response.status_code == 422, (body, response.text)


def test_who_may_scan(door: Door, api, admin: dict) -> None:
    user, registration = door.participant()
    code = door.code(user, registration["id"])
    analyst = door.scan(door.member("analyst"), code)
    assert analyst.status_code == 403, analyst.text
    assert error_body(analyst)["code"] == "insufficient_role"
    other_owner = api.register("other-owner")
    api.found_organization(other_owner, admin)
    for outsider in (user, other_owner):
        response = door.scan(outsider, code)
        assert response.status_code == 404, response.text
    assert (
        door.client.post(
            f"{V1}/events/{door.event_id}/check-in", json={"ticket_code": code, "nonce": _nonce()}
        ).status_code
        == 401
    )
    moderator = door.scan(door.member("moderator"), code)
    assert moderator.status_code == 200, moderator.text


# --- by registration id ---------------------------------------------------------------------------


def test_check_in_by_registration(door: Door, owner_engine: Engine) -> None:
    user, registration = door.participant()
    analyst = door.check_in(door.member("analyst"), registration["id"])
    assert analyst.status_code == 403, analyst.text
    assert error_body(analyst)["code"] == "insufficient_role"
    assert door.check_in(user, registration["id"]).status_code == 404
    assert door.check_in(door.owner, str(uuid.uuid4())).status_code == 404

    moderator = door.member("moderator")
    nonce = _nonce()
    first = door.check_in(moderator, registration["id"], nonce)
    assert first.status_code == 200, first.text
    assert first.json()["checked_in_by"] == moderator["user"]["id"]
    assert first.json()["nonce"] == nonce
    retry = door.check_in(moderator, registration["id"], nonce)
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    again = door.check_in(door.owner, registration["id"])
    assert again.status_code == 409
    assert error_body(again)["details"]["checked_in_at"]
    assert len(_checkin_events(owner_engine, registration["id"])) == 1

    _, without_nonce = door.participant()
    assert door.check_in(door.owner, without_nonce["id"]).status_code == 200
    assert (
        error_body(door.check_in(door.owner, without_nonce["id"]))["code"] == "already_checked_in"
    )


def test_check_in_by_registration_errors(client: TestClient, door: Door, api, admin: dict) -> None:
    _, pending = door.participant(ticket_type_id=door.paid)
    response = door.check_in(door.owner, pending["id"])
    assert response.status_code == 409
    assert error_body(response)["code"] == "not_confirmed"

    quitter, cancelled = door.participant()
    cancelled_registration(client, cancelled["id"], quitter)
    response = door.check_in(door.owner, cancelled["id"])
    assert response.status_code == 409
    assert error_body(response)["code"] == "cancelled"

    other_owner = api.register("other-owner")
    api.found_organization(other_owner, admin)
    _, registration = door.participant()
    assert door.check_in(other_owner, registration["id"]).status_code == 404


# --- races ----------------------------------------------------------------------------------------


def _together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls on threads released at the same moment."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait(timeout=10)
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture
def second_client(api_app) -> TestClient:
    """Another client of the running app (its own connections), for concurrent requests."""
    return TestClient(api_app)


def test_two_scanners_on_one_ticket(
    door: Door, second_client: TestClient, owner_engine: Engine
) -> None:
    moderator = door.member("moderator")
    for _ in range(3):
        user, registration = door.participant()
        code = door.code(user, registration["id"])
        results = _together(
            lambda code=code: door.scan(door.owner, code),
            lambda code=code: door.scan(moderator, code, client=second_client),
        )
        statuses = Counter(r.status_code for r in results)
        assert statuses == {200: 1, 409: 1}, [r.text for r in results]
        loser = next(r for r in results if r.status_code == 409)
        winner = next(r for r in results if r.status_code == 200)
        assert error_body(loser)["code"] == "already_checked_in"
        assert _at(error_body(loser)["details"]["checked_in_at"]) == _at(
            winner.json()["checked_in_at"]
        )
        assert len(_check_ins(owner_engine, registration["id"])) == 1
        assert len(_checkin_events(owner_engine, registration["id"])) == 1


@pytest.mark.parametrize("same_nonce", [False, True])
def test_unique_index_is_the_backstop(
    door: Door,
    second_client: TestClient,
    owner_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    same_nonce: bool,
) -> None:
    """Without the row lock both requests pass every check; the index still lets one in, and
    the other gets the same answer as if it had waited."""
    from domain.registration.models import Registration

    monkeypatch.setattr(
        service,
        "_lock",
        lambda uow, registration_id: uow.session.get(Registration, registration_id),
    )
    both_checked = threading.Barrier(2)
    waited = threading.local()
    existing = service._existing

    def _existing_then_wait(uow, registration_id):
        found = existing(uow, registration_id)
        if not getattr(waited, "done", False):
            waited.done = True
            both_checked.wait(timeout=10)
        return found

    monkeypatch.setattr(service, "_existing", _existing_then_wait)
    refused: list[bool] = []
    duplicate = service._duplicate

    def _counted_duplicate(*args, **kwargs):
        refused.append(True)
        return duplicate(*args, **kwargs)

    monkeypatch.setattr(service, "_duplicate", _counted_duplicate)
    user, registration = door.participant()
    code = door.code(user, registration["id"])
    nonces = [_nonce()] * 2 if same_nonce else [_nonce(), _nonce()]
    results = _together(
        lambda: door.scan(door.owner, code, nonces[0]),
        lambda: door.scan(door.owner, code, nonces[1], client=second_client),
    )
    if same_nonce:
        assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
        assert results[0].json() == results[1].json()
    else:
        assert Counter(r.status_code for r in results) == {200: 1, 409: 1}
        loser = next(r for r in results if r.status_code == 409)
        winner = next(r for r in results if r.status_code == 200)
        assert error_body(loser)["code"] == "already_checked_in"
        assert _at(error_body(loser)["details"]["checked_in_at"]) == _at(
            winner.json()["checked_in_at"]
        )
    assert refused == [True], "the unique index, not the checks, turned the second one away"
    assert len(_check_ins(owner_engine, registration["id"])) == 1
    assert len(_checkin_events(owner_engine, registration["id"])) == 1


# --- counts ---------------------------------------------------------------------------------------


def test_check_in_stats(client: TestClient, door: Door, api) -> None:
    empty = door.stats(door.owner)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"registered": 0, "checked_in": 0, "attendance_rate": 0.0}

    group_user, group = door.participant(quantity=3)
    solo_user, solo = door.participant()
    door.participant()
    door.participant(ticket_type_id=door.paid)  # pending: not a registered seat yet
    quitter, cancelled = door.participant()
    cancelled_registration(client, cancelled["id"], quitter)

    assert door.stats(door.owner).json() == {
        "registered": 5,
        "checked_in": 0,
        "attendance_rate": 0.0,
    }
    assert door.scan(door.owner, door.code(group_user, group["id"])).status_code == 200
    assert door.check_in(door.owner, solo["id"]).status_code == 200
    for reader in (door.owner, door.member("moderator"), door.member("analyst")):
        response = door.stats(reader)
        assert response.status_code == 200, response.text
        assert response.json() == {"registered": 5, "checked_in": 4, "attendance_rate": 0.8}

    assert door.stats(solo_user).status_code == 404
    assert door.stats(door.owner, str(uuid.uuid4())).status_code == 404
    other_event, _, _ = door.new_event()
    assert door.stats(door.owner, other_event).json()["registered"] == 0
