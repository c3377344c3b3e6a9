"""One list shape: every list answers ``{"items": [...], "next_cursor": ...}``; lists that grow with
use are paged by position (``limit``, ``cursor``), the bounded ones answered whole
(docs/api-rules.md "Pagination")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.pagination import decode_cursor, encode_cursor
from domain.pagination import InvalidCursor, Keyset, desc
from domain.registration.models import Registration
from domain.waitlist.models import WaitlistEntry
from tests.factories import (
    V1,
    Organizer,
    assert_error,
    at,
    auth,
    invite_member,
    join_waitlist,
    registered,
    walk,
)

# Every list of the API and how it is answered: paged ("limit" and "cursor") or whole.
PAGED = {
    "/api/v1/analytics/exports",
    "/api/v1/events",
    "/api/v1/events/{event_id}/participants",
    "/api/v1/events/{event_id}/registrations",
    "/api/v1/events/{event_id}/waitlist",
    "/api/v1/groups/{group_id}/members",
    "/api/v1/organization-requests",
    "/api/v1/organizations",
    "/api/v1/organizations/{org_id}/events",
    "/api/v1/organizations/{org_id}/groups",
    "/api/v1/organizations/{org_id}/members",
    "/api/v1/users/me/registrations",
    "/api/v1/notifications/messages",
    "/api/v1/notifications/messages/{message_id}/deliveries",
    "/api/v1/organizations/{org_id}/invitations",
    "/api/v1/groups/{group_id}/invitations",
    "/api/v1/users/me/groups",
}
WHOLE = {
    "/api/v1/events/{event_id}/attachments",
    "/api/v1/events/{event_id}/ticket-types",
    "/api/v1/notifications/templates",
    "/api/v1/registrations/{registration_id}/payments",
}


# --- the contract, from the OpenAPI document ------------------------------------------------------


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _answers(document: dict):
    """Every JSON schema of a 2xx answer: (method, path, resolved schema)."""
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        yield method, path, _resolve(document, media["schema"])


def _is_envelope(schema: dict) -> bool:
    return schema.get("type") == "object" and {"items", "next_cursor"} & set(
        schema.get("properties", {})
    )


def test_no_answer_is_a_bare_array(api_app) -> None:
    """A list is an object clients can extend (a cursor, a count): never a top-level array."""
    document = api_app.openapi()
    arrays = [f"{m.upper()} {p}" for m, p, s in _answers(document) if s.get("type") == "array"]
    assert arrays == []


def test_every_envelope_has_items_and_next_cursor(api_app) -> None:
    document = api_app.openapi()
    envelopes = [(m, p, s) for m, p, s in _answers(document) if _is_envelope(s)]
    assert {p for m, p, _ in envelopes if m == "get"} == PAGED | WHOLE
    for _, path, schema in envelopes:
        props = schema["properties"]
        assert set(props) == {"items", "next_cursor"}, path
        assert set(schema["required"]) == {"items", "next_cursor"}, path
        assert props["items"]["type"] == "array", path
        assert props["next_cursor"]["anyOf"] == [{"type": "string"}, {"type": "null"}], path


def test_paged_lists_take_limit_and_cursor(api_app) -> None:
    """Decided per list: the ones that grow with use are paged, the bounded ones are not."""
    document = api_app.openapi()
    for path in PAGED | WHOLE:
        query = {
            p["name"]: p["schema"]
            for p in document["paths"][path]["get"].get("parameters", [])
            if p["in"] == "query"
        }
        if path in WHOLE:
            assert not {"limit", "cursor"} & set(query), path
            continue
        assert query["limit"]["minimum"] == 1 and query["limit"]["maximum"] == 100, path
        assert query["limit"]["default"] == 20, path
        assert {"type": "string", "maxLength": 1000} in query["cursor"]["anyOf"], path


# --- cursors, without I/O ---------------------------------------------------------------------------


def test_a_cursor_is_an_opaque_position() -> None:
    position = ["2026-01-02T03:04:05.123456+00:00", uuid.UUID(int=7).hex]
    cursor = encode_cursor(position)
    assert cursor is not None and "=" not in cursor and "2026" not in cursor
    assert decode_cursor(cursor) == tuple(position)
    assert encode_cursor(None) is None and decode_cursor(None) is None


@pytest.mark.parametrize(
    "garbage",
    ["x", "not a cursor", "é", "%%%%", "W10", "eyJhIjoxfQ", "WzEuNV0", "W3RydWVd", "bnVsbA"],
    # one char, spaces, not ASCII, not base64, [], {"a":1}, [1.5], [true], null
)
def test_garbage_is_an_invalid_cursor(garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(garbage)


def test_a_position_must_fit_the_list() -> None:
    keyset = Keyset(desc(Registration.id))
    ok = uuid.UUID(int=1).hex
    assert keyset._load((ok,)) == (uuid.UUID(int=1),)
    for wrong in [(ok, ok), ("not-a-uuid",), (7,)]:
        with pytest.raises(InvalidCursor):
            keyset._load(wrong)
    queue = Keyset(WaitlistEntry.ticket_type_id, desc(WaitlistEntry.priority), WaitlistEntry.seq)
    assert queue._load((ok, 0, 3)) == (uuid.UUID(int=1), 0, 3)
    for wrong in [(ok, "0", 3), (ok, 0, 2**63), (ok, 0)]:
        with pytest.raises(InvalidCursor):
            queue._load(wrong)
    starts = Keyset(Registration.created_at, Registration.id)
    assert starts._load(("2026-01-01T00:00:00+00:00", ok))[0] == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidCursor):  # a naive time is no position
        starts._load(("2026-01-01T00:00:00", ok))


# --- every paged list, walked -------------------------------------------------------------------------


def check_paging(
    client: TestClient,
    path: str,
    user: dict,
    *,
    key: str = "id",
    insert_before: Callable[[], str] | None = None,
    insert_after: Callable[[], str] | None = None,
    **params,
) -> list[str]:
    """Walked two at a time, the list is the same list, every row exactly once and in order; a
    row inserted between pages before the position is not shown again, one after it is shown
    once at the end; bad limits and cursors are refused. Answers the list's keys."""
    whole = [item[key] for item in walk(client, path, user, **params)]
    assert len(whole) >= 5, whole
    assert len(set(whole)) == len(whole)
    assert [item[key] for item in walk(client, path, user, limit=2, **params)] == whole

    inserted: dict[str, str] = {}

    def insert(page: int) -> None:
        if page == 1:
            if insert_before:
                inserted["before"] = insert_before()
            if insert_after:
                inserted["after"] = insert_after()

    during = [item[key] for item in walk(client, path, user, limit=2, between=insert, **params)]
    assert len(set(during)) == len(during), "a row repeated"
    assert [k for k in during if k in whole] == whole, "a row vanished or moved"
    if "before" in inserted:
        assert inserted["before"] not in during
        assert inserted["before"] in [i[key] for i in walk(client, path, user, **params)]
    if "after" in inserted:
        assert during[-1] == inserted["after"]
    assert len(during) == len(whole) + ("after" in inserted)

    def get(**query):
        return client.get(V1 + path, params={**params, **query}, headers=auth(user))

    assert_error(get(limit=0), 422, "validation_error")
    assert_error(get(limit=101), 422, "validation_error")
    for garbage in ["garbage!", "W10", encode_cursor(["x", "y", "z", "w"])]:
        error = assert_error(get(cursor=garbage), 422, "invalid_cursor")
        assert error["details"] == {"in": "query", "name": "cursor"}
    assert_error(get(cursor="x" * 1001), 422, "validation_error")
    return whole


@pytest.fixture
def organizer(client: TestClient, api, admin: dict) -> Organizer:
    return Organizer(client, api, admin)


def test_my_organizations(client: TestClient, api, admin: dict) -> None:
    owner = api.register("many-orgs")
    for _ in range(5):
        api.found_organization(owner, admin, slug=f"m-{uuid.uuid4().hex[:10]}")
    whole = check_paging(
        client,
        "/organizations",
        owner,
        insert_before=lambda: api.found_organization(owner, admin, f"a-{uuid.uuid4().hex[:8]}")[
            "id"
        ],
        insert_after=lambda: api.found_organization(owner, admin, f"z-{uuid.uuid4().hex[:8]}")[
            "id"
        ],
    )
    names = [o["name"] for o in walk(client, "/organizations", owner)]
    assert names == sorted(names) and len(names) == len(whole) + 2


def test_organization_events(organizer: Organizer) -> None:
    base = at(days=400)
    for i in range(5):
        organizer.event(start=base + timedelta(days=i))
    path = f"/organizations/{organizer.org['id']}/events"
    check_paging(
        organizer.client,
        path,
        organizer.owner,
        insert_before=lambda: organizer.event(start=base - timedelta(days=1))["id"],
        insert_after=lambda: organizer.event(start=base + timedelta(days=30))["id"],
    )
    starts = [e["starts_at"] for e in walk(organizer.client, path, organizer.owner)]
    assert starts == sorted(starts)
    drafts = walk(organizer.client, path, organizer.owner, limit=2, status="draft")
    assert len(drafts) == 7


def test_public_events(organizer: Organizer) -> None:
    base = at(days=500)
    marker = uuid.uuid4().hex

    def published(start: datetime) -> str:
        event = organizer.event(publish=True, start=start, description=marker)
        return event["id"]

    for i in range(5):
        published(base + timedelta(hours=i))
    check_paging(
        organizer.client,
        "/events",
        organizer.owner,
        insert_before=lambda: published(base - timedelta(hours=1)),
        insert_after=lambda: published(base + timedelta(days=2)),
        q=marker,
    )


def test_organization_requests(client: TestClient, api, admin: dict) -> None:
    user = api.register("requester")

    def rejected() -> str:
        request = client.post(
            f"{V1}/organization-requests",
            json={"name": "Declined", "slug": f"r-{uuid.uuid4().hex[:10]}"},
            headers=user["headers"],
        )
        assert request.status_code == 201, request.text
        reject = client.post(
            f"{V1}/organization-requests/{request.json()['id']}/reject", headers=admin["headers"]
        )
        assert reject.status_code == 200, reject.text
        return request.json()["id"]

    created = [rejected() for _ in range(5)]
    assert check_paging(client, "/organization-requests", user, insert_after=rejected) == created
    rejected_only = walk(client, "/organization-requests", user, limit=2, status="rejected")
    assert len(rejected_only) == 6


def test_organization_members(organizer: Organizer) -> None:
    org_id = organizer.org["id"]

    def joined() -> str:
        user = invite_member(organizer.client, organizer.api, org_id, organizer.owner, "analyst")
        return user["user"]["id"]

    members = [organizer.owner["user"]["id"]] + [joined() for _ in range(4)]
    whole = check_paging(
        organizer.client,
        f"/organizations/{org_id}/members",
        organizer.owner,
        key="user_id",
        insert_after=joined,
    )
    assert whole == members


def test_organization_groups(organizer: Organizer) -> None:
    org_id = organizer.org["id"]

    def group(prefix: str) -> str:
        response = organizer.client.post(
            f"{V1}/organizations/{org_id}/groups",
            json={"name": f"{prefix} {uuid.uuid4().hex[:8]}"},
            headers=organizer.owner["headers"],
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    for _ in range(5):
        group("m")
    check_paging(
        organizer.client,
        f"/organizations/{org_id}/groups",
        organizer.owner,
        insert_before=lambda: group("a"),
        insert_after=lambda: group("z"),
    )


def test_group_members(organizer: Organizer) -> None:
    group, first = organizer.group_with_member()
    client = organizer.client
    code = client.post(f"{V1}/groups/{group['id']}/invite", headers=organizer.owner["headers"])
    assert code.status_code == 201, code.text

    def joined() -> str:
        user = organizer.api.register("group-member")
        response = client.post(
            f"{V1}/group-invites/accept",
            json={"code": code.json()["code"]},
            headers=user["headers"],
        )
        assert response.status_code == 200, response.text
        return user["user"]["id"]

    members = [first["user"]["id"]] + [joined() for _ in range(4)]
    whole = check_paging(
        client, f"/groups/{group['id']}/members", organizer.owner, key="user_id",
        insert_after=joined,
    )  # fmt: skip
    assert whole == members


def test_waitlist(organizer: Organizer, owner_engine: Engine) -> None:
    event, tt = organizer.published_event(capacity=1)
    organizer.participant(event["id"], tt["id"])

    def waiting(priority: int = 0) -> str:
        user = organizer.api.register("waiter")
        response = join_waitlist(organizer.client, event["id"], user, tt["id"])
        assert response.status_code == 201, response.text
        if priority:
            with owner_engine.begin() as conn:
                conn.execute(
                    text("UPDATE waitlist_entries SET priority = :p WHERE id = :id"),
                    {"p": priority, "id": response.json()["id"]},
                )
        return response.json()["id"]

    queue = [waiting() for _ in range(5)]
    whole = check_paging(
        organizer.client,
        f"/events/{event['id']}/waitlist",
        organizer.owner,
        insert_before=lambda: waiting(priority=5),
        insert_after=waiting,
    )
    assert whole == queue


def test_event_registrations(organizer: Organizer) -> None:
    event, tt = organizer.published_event(capacity=20)

    def participant() -> str:
        return organizer.participant(event["id"], tt["id"])[1]["id"]

    regs = [participant() for _ in range(5)]
    path = f"/events/{event['id']}/registrations"
    whole = check_paging(organizer.client, path, organizer.owner, insert_after=participant)
    assert whole == regs
    confirmed = walk(organizer.client, path, organizer.owner, limit=2, status="confirmed")
    assert len(confirmed) == 6


def test_my_registrations(organizer: Organizer) -> None:
    user = organizer.api.register("regular")

    def registration() -> str:
        event, tt = organizer.published_event()
        reg = registered(organizer.client, event["id"], user, ticket_type_id=tt["id"])
        return reg["id"]

    regs = [registration() for _ in range(5)]
    whole = check_paging(
        organizer.client, "/users/me/registrations", user, insert_before=registration
    )
    assert whole == regs[::-1]  # newest first


def test_exports(organizer: Organizer, owner_engine: Engine) -> None:
    """Newest first; rows written straight to the table, at times of the test's choosing."""
    base = datetime(2030, 1, 1, tzinfo=UTC)

    def export(created_at: datetime) -> str:
        export_id = uuid.uuid4()
        with owner_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO exports (id, tenant_id, requested_by, dataset, format, "
                    "personal_data, status, file_name, error, created_at, finished_at) VALUES "
                    "(:id, :tenant, :user, 'registrations', 'csv', false, 'failed', 'x.csv', "
                    "'test', :at, :at)"
                ),
                {
                    "id": export_id,
                    "tenant": organizer.org["id"],
                    "user": organizer.owner["user"]["id"],
                    "at": created_at,
                },
            )
        return str(export_id)

    made = [export(base + timedelta(minutes=i)) for i in range(5)]
    whole = check_paging(
        organizer.client,
        "/analytics/exports",
        organizer.owner,
        insert_before=lambda: export(base + timedelta(days=1)),
        insert_after=lambda: export(base - timedelta(days=1)),
        organization_id=organizer.org["id"],
    )
    assert whole == made[::-1]


def test_a_cursor_of_another_list_is_refused_or_harmless(organizer: Organizer) -> None:
    """Positions are typed per list: a cursor of another list's shape is a 422, never a 500."""
    base = at(days=600)
    for i in range(3):
        organizer.event(start=base + timedelta(days=i))
    events = organizer.client.get(
        f"{V1}/organizations/{organizer.org['id']}/events",
        params={"limit": 1},
        headers=organizer.owner["headers"],
    )
    cursor = events.json()["next_cursor"]
    mine = organizer.client.get(
        f"{V1}/users/me/registrations",
        params={"cursor": cursor},
        headers=organizer.owner["headers"],
    )
    assert_error(mine, 422, "invalid_cursor")
