"""What the functional tests set up through the API, written once: an organization and its events
and ticket types (``Organizer``), what participants do (register, hold seats, queue, cancel), the
sweeper, and the checks every test makes of the error shape and the outbox.

Conventions: a plain verb answers the raw response (``register``), its participle asserts the
success status and answers the body (``registered``). A ``user`` of ``None`` calls anonymously;
the ``by`` of an ``Organizer`` method defaults to the organization's owner.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Self

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, text

from domain.registration.sweeper import sweep_once

V1 = "/api/v1"


def now() -> datetime:
    return datetime.now(UTC)


def at(**delta: float) -> datetime:
    """Now to the whole second, moved by ``delta`` (the arguments of ``timedelta``)."""
    return now().replace(microsecond=0) + timedelta(**delta)


def auth(user: dict | None) -> dict | None:
    """The request headers of ``user``; none for an anonymous call."""
    return user["headers"] if user else None


# --- the API's answers ----------------------------------------------------------------------------


def error_body(response: Response) -> dict:
    """The ``error`` object of an error answer, once its shape is checked."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def assert_error(response: Response, status: int, code: str) -> dict:
    """An error answer with ``status`` and ``code``; answers the ``error`` object."""
    assert response.status_code == status, response.text
    error = error_body(response)
    assert error["code"] == code, error
    return error


def page_of(response: Response) -> dict:
    """A page of a list (every list answers ``{"items": [...], "next_cursor": ...}``)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}, body
    return body


def items_of(response: Response) -> list[dict]:
    """The items of a list answered in one page (a bounded list, or a first page)."""
    return page_of(response)["items"]


def walk(
    client: TestClient, path: str, user: dict | None, *, limit: int = 100, between=None, **params
) -> list[dict]:
    """Every item of a paged list (``path`` after ``/api/v1``), following ``next_cursor`` page
    by page; ``between(n)`` runs after the n-th page (from 1) before the next is asked for."""
    found: list[dict] = []
    cursor, pages = None, 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = page_of(client.get(V1 + path, params=query, headers=auth(user)))
        assert len(page["items"]) <= limit
        found += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return found
        assert page["items"], "a page with a next_cursor is never empty"
        if between is not None:
            between(pages)


def outbox_rows(engine: Engine, aggregate_id: str, event_type: str | None = None) -> list[dict]:
    """The outbox rows of one aggregate (of one ``event_type``, if given), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_type, aggregate_type, tenant_id, payload FROM outbox "
                "WHERE aggregate_id = :id ORDER BY id"
            ),
            {"id": aggregate_id},
        ).mappings()
        return [dict(r) for r in rows if event_type in (None, r["event_type"])]


# --- organizations --------------------------------------------------------------------------------


def invite_member(
    client: TestClient, api, org_id: str, owner: dict, role: str, name: str | None = None
) -> dict:
    """A new user who joined ``org_id`` with ``role`` through an e-mail invitation."""
    user = api.register(name or role)
    invite = client.post(
        f"{V1}/organizations/{org_id}/invite",
        json={"email": user["email"], "role": role},
        headers=owner["headers"],
    )
    assert invite.status_code == 201, invite.text
    accepted = client.post(
        f"{V1}/organization-invites/accept",
        json={"token": invite.json()["token"]},
        headers=user["headers"],
    )
    assert accepted.status_code == 200, accepted.text
    return user


def group_with_member(client: TestClient, api, org_id: str, owner: dict) -> tuple[dict, dict]:
    """A new group of ``org_id`` and a new user who joined it by invite code."""
    group = client.post(
        f"{V1}/organizations/{org_id}/groups",
        json={"name": f"Group {uuid.uuid4().hex[:8]}"},
        headers=owner["headers"],
    )
    assert group.status_code == 201, group.text
    invite = client.post(f"{V1}/groups/{group.json()['id']}/invite", headers=owner["headers"])
    assert invite.status_code == 201, invite.text
    member = api.register("group-member")
    joined = client.post(
        f"{V1}/group-invites/accept",
        json={"code": invite.json()["code"]},
        headers=member["headers"],
    )
    assert joined.status_code == 200, joined.text
    return group.json(), member


# --- events and ticket types ----------------------------------------------------------------------


def create_event(
    client: TestClient, org_id: str, user: dict | None, *, start: datetime | None = None, **fields
) -> Response:
    """Create a three-hour event starting at ``start`` (in 30 days); ``fields`` override the body."""
    start = at(days=30) if start is None else start
    body = {
        "organization_id": org_id,
        "title": f"Event {uuid.uuid4().hex[:8]}",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=3)).isoformat(),
        **fields,
    }
    return client.post(f"{V1}/events", json=body, headers=auth(user))


def create_ticket_type(client: TestClient, event_id: str, user: dict | None, **fields) -> Response:
    """Create a ticket type ("Standard", 10 seats, free unless ``fields`` say otherwise)."""
    return client.post(
        f"{V1}/events/{event_id}/ticket-types",
        json={"name": "Standard", "capacity": 10, **fields},
        headers=auth(user),
    )


def move_event(
    client: TestClient, event_id: str, action: str, user: dict | None, **body
) -> Response:
    """A lifecycle step: publish, unpublish, complete or cancel (``body``: e.g. a reason)."""
    return client.post(f"{V1}/events/{event_id}/{action}", json=body or None, headers=auth(user))


class Organizer:
    """A new organization with its owner, its events and ticket types, its members, and new
    participants registered for its events."""

    def __init__(self, client: TestClient, api, admin: dict) -> None:
        self.client = client
        self.api = api
        self.admin = admin
        self.owner = api.register("owner")
        self.org = api.found_organization(self.owner, admin)

    def another(self) -> Self:
        """Another organization, with an owner of its own."""
        return type(self)(self.client, self.api, self.admin)

    def member(self, role: str) -> dict:
        return invite_member(self.client, self.api, self.org["id"], self.owner, role)

    def group_with_member(self) -> tuple[dict, dict]:
        return group_with_member(self.client, self.api, self.org["id"], self.owner)

    def create_event(self, by: dict | None = None, **fields) -> Response:
        return create_event(self.client, self.org["id"], by or self.owner, **fields)

    def event(self, *, publish: bool = False, **fields) -> dict:
        """A draft event; with ``publish``, a published one whose only ticket type, "Publishing"
        (one seat), is there because publishing needs one: the tests add their own."""
        response = self.create_event(**fields)
        assert response.status_code == 201, response.text
        event = response.json()
        if publish:
            self.ticket_type(event["id"], name="Publishing", capacity=1)
            self.publish(event["id"])
        return event

    def create_ticket_type(self, event_id: str, by: dict | None = None, **fields) -> Response:
        return create_ticket_type(self.client, event_id, by or self.owner, **fields)

    def ticket_type(self, event_id: str, **fields) -> dict:
        response = self.create_ticket_type(event_id, **fields)
        assert response.status_code == 201, response.text
        return response.json()

    def move(self, event_id: str, action: str, by: dict | None = None, **body) -> Response:
        return move_event(self.client, event_id, action, by or self.owner, **body)

    def moved(self, event_id: str, action: str, **body) -> dict:
        response = self.move(event_id, action, **body)
        assert response.status_code == 200, response.text
        return response.json()

    def publish(self, event_id: str) -> dict:
        return self.moved(event_id, "publish")

    def published_event(
        self, capacity: int = 10, price_amount: int = 0, **fields
    ) -> tuple[dict, dict]:
        """A published event (``fields``) with one ticket type; answers both."""
        event = self.event(**fields)
        ticket_type = self.ticket_type(event["id"], capacity=capacity, price_amount=price_amount)
        return self.publish(event["id"]), ticket_type

    def ticket_type_now(self, event_id: str, ticket_type_id: str) -> dict:
        """A ticket type as the organizer's listing shows it now (``sold``, ``available``)."""
        response = self.client.get(
            f"{V1}/events/{event_id}/ticket-types", headers=self.owner["headers"]
        )
        return next(t for t in items_of(response) if t["id"] == ticket_type_id)

    def sold(self, event_id: str, ticket_type_id: str) -> int:
        return self.ticket_type_now(event_id, ticket_type_id)["sold"]

    def participant(
        self, event_id: str, ticket_type_id: str, quantity: int = 1, name: str = "participant"
    ) -> tuple[dict, dict]:
        """A new user registered for ``quantity`` seats: the user and the registration."""
        user = self.api.register(name)
        registration = registered(
            self.client, event_id, user, ticket_type_id=ticket_type_id, quantity=quantity
        )
        return user, registration


# --- participants ---------------------------------------------------------------------------------


def register(client: TestClient, event_id: str, user: dict | None, **body) -> Response:
    """Register for an event: ``ticket_type_id`` (and ``quantity``) or ``reservation_id``."""
    return client.post(f"{V1}/events/{event_id}/registrations", json=body, headers=auth(user))


def registered(client: TestClient, event_id: str, user: dict | None, **body) -> dict:
    response = register(client, event_id, user, **body)
    assert response.status_code == 201, response.text
    return response.json()


def cancel_registration(
    client: TestClient, registration_id: str, user: dict | None, **body
) -> Response:
    return client.post(
        f"{V1}/registrations/{registration_id}/cancel", json=body or None, headers=auth(user)
    )


def cancelled_registration(client: TestClient, registration_id: str, user: dict, **body) -> dict:
    response = cancel_registration(client, registration_id, user, **body)
    assert response.status_code == 200, response.text
    return response.json()


def reserve(
    client: TestClient, event_id: str, user: dict | None, ticket_type_id: str, quantity: int = 1
) -> Response:
    """Hold seats for the event's hold time."""
    return client.post(
        f"{V1}/events/{event_id}/reservations",
        json={"ticket_type_id": ticket_type_id, "quantity": quantity},
        headers=auth(user),
    )


def reserved(
    client: TestClient, event_id: str, user: dict, ticket_type_id: str, quantity: int = 1
) -> dict:
    response = reserve(client, event_id, user, ticket_type_id, quantity)
    assert response.status_code == 201, response.text
    return response.json()


def get_reservation(client: TestClient, reservation_id: str, user: dict | None) -> Response:
    return client.get(f"{V1}/reservations/{reservation_id}", headers=auth(user))


def cancel_reservation(client: TestClient, reservation_id: str, user: dict | None) -> Response:
    return client.post(f"{V1}/reservations/{reservation_id}/cancel", headers=auth(user))


def join_waitlist(
    client: TestClient, event_id: str, user: dict | None, ticket_type_id: str
) -> Response:
    return client.post(
        f"{V1}/events/{event_id}/waitlist",
        json={"ticket_type_id": ticket_type_id},
        headers=auth(user),
    )


# --- the sweeper ----------------------------------------------------------------------------------


def backdate_reservation(engine: Engine, reservation_id: str) -> None:
    """Make a hold due, as if its time had run out (the sweeper has yet to expire it)."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE reservations SET expires_at = now() - interval '1 minute' WHERE id = :id"),
            {"id": reservation_id},
        )


def sweep(client: TestClient) -> None:
    """One pass of the sweeper: expire due holds, offer freed seats to waitlists, and the
    payment jobs (unpaid registrations, overdue remainders, refunds of cancelled events)."""
    state = client.app.state.aq
    sweep_once(state.sessionmaker, payment_timeout_s=state.settings.payment_timeout_s)


# --- payments -------------------------------------------------------------------------------------


def pay(
    client: TestClient,
    registration_id: str,
    user: dict | None,
    *,
    key: str | None = "new",
    provider: str | None = None,
) -> Response:
    """POST /payments for a registration; ``key`` "new" sends a fresh X-Idempotency-Key, None
    sends none."""
    headers = dict(auth(user) or {})
    if key is not None:
        headers["X-Idempotency-Key"] = uuid.uuid4().hex if key == "new" else key
    body = {"registration_id": registration_id}
    if provider:
        body["provider"] = provider
    return client.post(f"{V1}/payments", json=body, headers=headers)


def paying(client: TestClient, registration_id: str, user: dict, **kwargs) -> dict:
    """A new payment of the registration (201)."""
    response = pay(client, registration_id, user, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


def refund(
    client: TestClient,
    payment_id: str,
    user: dict | None,
    *,
    key: str | None = "new",
    **body,
) -> Response:
    """POST /payments/{id}/refund (``body``: amount, note); ``key`` as for ``pay``."""
    headers = dict(auth(user) or {})
    if key is not None:
        headers["X-Idempotency-Key"] = uuid.uuid4().hex if key == "new" else key
    return client.post(f"{V1}/payments/{payment_id}/refund", json=body or None, headers=headers)


def get_payment(client: TestClient, payment_id: str, user: dict | None) -> Response:
    return client.get(f"{V1}/payments/{payment_id}", headers=auth(user))


def payment_now(client: TestClient, payment_id: str, user: dict) -> dict:
    response = get_payment(client, payment_id, user)
    assert response.status_code == 200, response.text
    return response.json()


def registration_now(client: TestClient, registration_id: str, user: dict) -> dict:
    response = client.get(f"{V1}/registrations/{registration_id}", headers=auth(user))
    assert response.status_code == 200, response.text
    return response.json()


def sandbox(client: TestClient):
    """The app's sandbox payment provider (tests deliver its webhooks themselves)."""
    return client.app.state.payments.providers.get("sandbox")


def webhook_sender(client: TestClient, provider: str = "sandbox"):
    """A sender for ``SandboxProvider.deliver_*``: posts a delivery to our webhook endpoint and
    answers the status."""

    def send(body: bytes, headers: dict[str, str]) -> int:
        return client.post(f"{V1}/webhooks/{provider}", content=body, headers=headers).status_code

    return send


def settle_sandbox(client: TestClient, **kwargs) -> list[int]:
    """Deliver every pending sandbox webhook now (``reverse``, ``duplicate`` on demand)."""
    return sandbox(client).deliver_all(webhook_sender(client), **kwargs)


def submit_refunds(client: TestClient) -> int:
    """One pass of the payment workers' refund submission."""
    from domain.payment.jobs import submit_requested_refunds

    return submit_requested_refunds(
        client.app.state.aq.sessionmaker, client.app.state.payments.providers
    )


# --- media ----------------------------------------------------------------------------------------


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (640, 480), color=(200, 40, 40), **save):
    """A solid-colour image encoded as ``fmt`` (``save``: e.g. ``exif=``)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt, **save)
    return buffer.getvalue()


def upload_media(
    client: TestClient,
    org_id: str,
    user: dict | None,
    data: bytes,
    *,
    filename: str = "upload.bin",
    content_type: str = "application/octet-stream",
    purpose: str = "event_cover",
) -> Response:
    """POST /media/upload: ``filename`` and ``content_type`` are what the client claims."""
    return client.post(
        f"{V1}/media/upload",
        data={"organization_id": org_id, "purpose": purpose},
        files={"file": (filename, data, content_type)},
        headers=auth(user),
    )


def uploaded_media(client: TestClient, org_id: str, user: dict, data: bytes, **kw) -> dict:
    response = upload_media(client, org_id, user, data, **kw)
    assert response.status_code == 201, response.text
    return response.json()
