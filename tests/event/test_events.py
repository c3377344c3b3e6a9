"""Events: creation, reading, editing, lifecycle, the public listing and the organizer's list."""

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
    at,
    auth,
    items_of,
    move_event,
    outbox_rows,
    register,
)


def _same_instant(returned: str, expected: datetime) -> bool:
    return datetime.fromisoformat(returned) == expected


class Events(Organizer):
    """An organization with its owner, and the event calls the tests below make."""

    def published(self, **fields) -> dict:
        return self.published_event(**fields)[0]

    def get(self, event_id: str, user: dict | None):
        return self.client.get(f"{V1}/events/{event_id}", headers=auth(user))

    def update(self, event_id: str, user: dict, **changes):
        return self.client.put(f"{V1}/events/{event_id}", json=changes, headers=user["headers"])

    def listing(self, user: dict | None = None, **params):
        return self.client.get(f"{V1}/events", params=params, headers=auth(user))


@pytest.fixture
def events(client: TestClient, api, admin: dict) -> Events:
    return Events(client, api, admin)


@pytest.fixture
def owner(events: Events) -> dict:
    return events.owner


@pytest.fixture
def org(events: Events) -> dict:
    return events.org


# --- creation -------------------------------------------------------------------------------------


def test_create_event_is_a_draft_with_every_field(
    events: Events, org: dict, owner_engine: Engine
) -> None:
    start = at(days=40)
    opens, closes = at(days=1), at(days=39)
    response = events.create_event(
        start=start,
        title="  PyCon Berlin  ",
        description="Talks and sprints",
        timezone="Europe/Berlin",
        venue="Hall A",
        online_url="https://stream.example.org/pycon",
        capacity=250,
        visibility="public",
        participants_visibility="open",
        registration_opens_at=opens.isoformat(),
        registration_closes_at=closes.isoformat(),
        hold_minutes=30,
    )
    assert response.status_code == 201, response.text
    event = response.json()
    assert uuid.UUID(event["id"])
    assert event["organization_id"] == org["id"]
    assert event["title"] == "PyCon Berlin"
    assert event["description"] == "Talks and sprints"
    assert _same_instant(event["starts_at"], start)
    assert _same_instant(event["ends_at"], start + timedelta(hours=3))
    assert event["timezone"] == "Europe/Berlin"
    assert event["venue"] == "Hall A"
    assert event["online_url"] == "https://stream.example.org/pycon"
    assert event["capacity"] == 250
    assert event["sold"] == 0
    assert event["visibility"] == "public"
    assert event["group_id"] is None
    assert event["participants_visibility"] == "open"
    assert _same_instant(event["registration_opens_at"], opens)
    assert _same_instant(event["registration_closes_at"], closes)
    assert event["hold_minutes"] == 30
    assert event["status"] == "draft"
    assert event["published_at"] is None
    assert event["created_at"]

    [created] = outbox_rows(owner_engine, event["id"])
    assert created["event_type"] == "event.created"
    assert created["aggregate_type"] == "event"
    assert str(created["tenant_id"]) == org["id"]
    payload = created["payload"]
    assert payload["event_id"] == event["id"]
    assert payload["organization_id"] == org["id"]
    assert payload["title"] == "PyCon Berlin"
    assert datetime.fromisoformat(payload["starts_at"]) == start
    assert datetime.fromisoformat(payload["ends_at"]) == start + timedelta(hours=3)
    assert payload["timezone"] == "Europe/Berlin"
    assert payload["capacity"] == 250
    assert payload["visibility"] == "public"


def test_create_event_defaults(events: Events) -> None:
    event = events.event()
    assert event["timezone"] == "UTC"
    assert event["capacity"] is None
    assert event["visibility"] == "public"
    assert event["participants_visibility"] == "closed"
    assert event["hold_minutes"] == 15
    assert event["venue"] is None and event["online_url"] is None
    assert event["registration_opens_at"] is None and event["registration_closes_at"] is None


def test_who_may_create_events(events: Events) -> None:
    moderator = events.member("moderator")
    assert events.create_event(moderator).status_code == 201

    analyst = events.member("analyst")
    details = assert_error(events.create_event(analyst), 403, "insufficient_role")["details"]
    assert details == {"role": "analyst"}

    outsider = events.api.register("outsider")
    assert_error(events.create_event(outsider), 404, "not_found")
    assert_error(events.create_event(organization_id=str(uuid.uuid4())), 404, "not_found")
    assert_error(events.client.post(f"{V1}/events", json={}), 401, "unauthorized")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "invalid_timezone"),
        ({"visibility": "private"}, "group_required"),
        ({"visibility": "private", "group_id": str(uuid.uuid4())}, "unknown_group"),
    ],
)
def test_create_event_domain_validation(events: Events, fields: dict, code: str) -> None:
    assert_error(events.create_event(**fields), 422, code)


def test_schedule_must_make_sense(events: Events) -> None:
    start = at(days=10)
    ends_first = events.create_event(start=start, ends_at=(start - timedelta(hours=1)).isoformat())
    assert_error(ends_first, 422, "invalid_schedule")
    same_time = events.create_event(start=start, ends_at=start.isoformat())
    assert_error(same_time, 422, "invalid_schedule")
    closes_before_opening = events.create_event(
        registration_opens_at=at(days=5).isoformat(),
        registration_closes_at=at(days=4).isoformat(),
    )
    assert_error(closes_before_opening, 422, "invalid_schedule")


def test_private_event_needs_a_group_of_its_own_organization(events: Events) -> None:
    foreign_group, _ = events.another().group_with_member()
    response = events.create_event(visibility="private", group_id=foreign_group["id"])
    assert_error(response, 422, "unknown_group")

    group, _ = events.group_with_member()
    event = events.event(visibility="private", group_id=group["id"])
    assert event["visibility"] == "private"
    assert event["group_id"] == group["id"]


def test_public_event_drops_a_group(events: Events) -> None:
    group, _ = events.group_with_member()
    event = events.event(visibility="public", group_id=group["id"])
    assert event["group_id"] is None


@pytest.mark.parametrize(
    "fields",
    [
        {"starts_at": "2030-01-01T10:00:00"},  # no time zone
        {"title": ""},
        {"title": "x" * 201},
        {"online_url": "ftp://example.org"},
        {"capacity": -1},
        {"hold_minutes": 0},
        {"hold_minutes": 1441},
        {"visibility": "secret"},
        {"participants_visibility": "half"},
        {"colour": "red"},  # unknown fields are refused
    ],
)
def test_create_event_request_validation(events: Events, fields: dict) -> None:
    assert_error(events.create_event(**fields), 422, "validation_error")


# --- reading --------------------------------------------------------------------------------------


def test_drafts_are_visible_to_members_only(events: Events, owner: dict) -> None:
    event = events.event()
    analyst = events.member("analyst")
    for reader in (owner, analyst):
        response = events.get(event["id"], reader)
        assert response.status_code == 200, response.text
        assert response.json() == event
    for stranger in (None, events.api.register("stranger")):
        assert_error(events.get(event["id"], stranger), 404, "not_found")
    assert_error(events.get(str(uuid.uuid4()), owner), 404, "not_found")
    assert_error(events.client.get(f"{V1}/events/not-a-uuid"), 422, "validation_error")


def test_published_event_is_visible_to_anyone(events: Events) -> None:
    event = events.published()
    for reader in (None, events.api.register("reader")):
        response = events.get(event["id"], reader)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "published"


def test_private_event_is_visible_to_group_members_only(events: Events, owner: dict) -> None:
    group, member = events.group_with_member()
    event = events.published(visibility="private", group_id=group["id"])
    assert events.get(event["id"], member).status_code == 200
    assert events.get(event["id"], owner).status_code == 200
    tickets = events.client.get(
        f"{V1}/events/{event['id']}/ticket-types", headers=member["headers"]
    )
    assert len(items_of(tickets)) == 1
    for stranger in (None, events.api.register("stranger")):
        assert_error(events.get(event["id"], stranger), 404, "not_found")
        assert_error(
            events.client.get(
                f"{V1}/events/{event['id']}/ticket-types",
                headers=stranger["headers"] if stranger else None,
            ),
            404,
            "not_found",
        )
    listed = events.listing(member, q=event["title"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


# --- editing --------------------------------------------------------------------------------------


def test_a_draft_can_change_anything(events: Events, owner: dict) -> None:
    event = events.event()
    group, _ = events.group_with_member()
    start = at(days=60)
    response = events.update(
        event["id"],
        owner,
        title="Renamed",
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(days=1)).isoformat(),
        timezone="America/New_York",
        visibility="private",
        group_id=group["id"],
        capacity=5,
        registration_opens_at=at(days=2).isoformat(),
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "Renamed"
    assert _same_instant(updated["starts_at"], start)
    assert updated["timezone"] == "America/New_York"
    assert updated["visibility"] == "private"
    assert updated["group_id"] == group["id"]
    assert updated["capacity"] == 5
    assert updated["description"] == event["description"]  # untouched fields stay
    assert events.get(event["id"], owner).json() == updated


def test_edit_validation(events: Events, owner: dict, org: dict) -> None:
    event = events.event()
    assert_error(
        events.update(event["id"], owner, timezone="Nowhere/Land"), 422, "invalid_timezone"
    )
    assert_error(
        events.update(event["id"], owner, ends_at=at(days=1).isoformat()),
        422,
        "invalid_schedule",
    )
    assert_error(events.update(event["id"], owner, visibility="private"), 422, "group_required")
    assert_error(events.update(event["id"], owner, title=None), 422, "validation_error")
    assert_error(
        events.update(event["id"], owner, organization_id=org["id"]), 422, "validation_error"
    )
    assert events.get(event["id"], owner).json() == event


def test_who_may_edit(events: Events, owner: dict) -> None:
    event = events.event()
    moderator = events.member("moderator")
    assert events.update(event["id"], moderator, title="By moderator").status_code == 200
    analyst = events.member("analyst")
    assert_error(events.update(event["id"], analyst, title="No"), 403, "insufficient_role")
    assert_error(events.update(event["id"], events.api.register("x"), title="No"), 404, "not_found")
    other_owner = events.another().owner
    assert_error(events.update(event["id"], other_owner, title="No"), 404, "not_found")
    assert events.get(event["id"], owner).json()["title"] == "By moderator"


def test_a_published_event_changes_only_safe_fields(events: Events, owner: dict) -> None:
    event = events.published()
    safe = events.update(
        event["id"],
        owner,
        title="New title",
        description="More details",
        venue="Hall B",
        online_url="https://example.org/live",
        capacity=100,
        registration_closes_at=at(days=20).isoformat(),
        participants_visibility="open",
        hold_minutes=5,
    )
    assert safe.status_code == 200, safe.text
    assert safe.json()["title"] == "New title"
    assert safe.json()["hold_minutes"] == 5

    start = at(days=90)
    locked = events.update(
        event["id"],
        owner,
        title="Sneaky",
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
    )
    details = assert_error(locked, 409, "field_locked")["details"]
    assert details == {"fields": ["ends_at", "starts_at"], "status": "published"}
    for field, value in (
        ("timezone", "Asia/Tokyo"),
        ("visibility", "public"),
        ("registration_opens_at", at(days=1).isoformat()),
    ):
        details = assert_error(
            events.update(event["id"], owner, **{field: value}), 409, "field_locked"
        )
        assert details["details"]["fields"] == [field]
    assert events.get(event["id"], owner).json()["title"] == "New title"


def test_capacity_never_below_what_is_sold(client: TestClient, events: Events, owner: dict) -> None:
    event = events.event()
    tt = events.ticket_type(event["id"], capacity=10)
    assert events.move(event["id"], "publish").status_code == 200
    participant = events.api.register("participant")
    registered = register(client, event["id"], participant, ticket_type_id=tt["id"], quantity=3)
    assert registered.status_code == 201, registered.text

    error = assert_error(events.update(event["id"], owner, capacity=2), 409, "capacity_below_sold")
    assert error["details"] == {"sold": 3}
    assert events.get(event["id"], owner).json()["capacity"] is None

    at_sold = events.update(event["id"], owner, capacity=3)
    assert at_sold.status_code == 200, at_sold.text
    assert at_sold.json()["capacity"] == 3
    assert at_sold.json()["sold"] == 3

    full = register(client, event["id"], events.api.register("late"), ticket_type_id=tt["id"])
    assert assert_error(full, 409, "sold_out")["details"] == {"scope": "event"}

    uncapped = events.update(event["id"], owner, capacity=None)
    assert uncapped.status_code == 200, uncapped.text
    assert uncapped.json()["capacity"] is None


def test_closed_events_cannot_be_edited(events: Events, owner: dict) -> None:
    cancelled = events.event()
    assert events.move(cancelled["id"], "cancel").status_code == 200
    details = assert_error(events.update(cancelled["id"], owner, title="x"), 409, "invalid_state")
    assert details["details"] == {"status": "cancelled"}

    completed = events.published()
    assert events.move(completed["id"], "complete").status_code == 200
    details = assert_error(events.update(completed["id"], owner, title="x"), 409, "invalid_state")
    assert details["details"] == {"status": "completed"}


# --- lifecycle ------------------------------------------------------------------------------------


def test_lifecycle_and_its_events(events: Events, org: dict, owner_engine: Engine) -> None:
    event = events.event()
    events.ticket_type(event["id"])

    published = events.move(event["id"], "publish")
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert published.json()["published_at"]

    unpublished = events.move(event["id"], "unpublish")
    assert unpublished.status_code == 200, unpublished.text
    assert unpublished.json()["status"] == "draft"

    assert events.move(event["id"], "publish").status_code == 200
    completed = events.move(event["id"], "complete")
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "completed"
    assert events.get(event["id"], None).json()["status"] == "completed"

    facts = outbox_rows(owner_engine, event["id"])
    assert [f["event_type"] for f in facts] == [
        "event.created",
        "event.published",
        "event.unpublished",
        "event.published",
        "event.completed",
    ]
    for fact in facts:
        assert str(fact["tenant_id"]) == org["id"]
        assert fact["aggregate_type"] == "event"
        assert fact["payload"]["event_id"] == event["id"]
        assert fact["payload"]["organization_id"] == org["id"]
    assert facts[1]["payload"]["title"] == event["title"]
    assert datetime.fromisoformat(facts[1]["payload"]["starts_at"]) == datetime.fromisoformat(
        event["starts_at"]
    )


@pytest.mark.parametrize("publish_first", [False, True])
def test_cancel_draft_or_published(
    events: Events, org: dict, owner_engine: Engine, publish_first: bool
) -> None:
    event = events.published() if publish_first else events.event()
    cancelled = events.move(event["id"], "cancel", reason="Venue flooded")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    [fact] = [
        f for f in outbox_rows(owner_engine, event["id"]) if f["event_type"] == "event.cancelled"
    ]
    assert str(fact["tenant_id"]) == org["id"]
    assert fact["payload"]["reason"] == "Venue flooded"
    assert fact["payload"]["organization_id"] == org["id"]


def test_cancel_without_a_body(events: Events, owner_engine) -> None:
    event = events.event()
    assert events.move(event["id"], "cancel").status_code == 200
    [fact] = [
        f for f in outbox_rows(owner_engine, event["id"]) if f["event_type"] == "event.cancelled"
    ]
    assert fact["payload"]["reason"] is None


def test_publish_needs_an_active_ticket_type(events: Events, owner: dict) -> None:
    event = events.event()
    details = assert_error(events.move(event["id"], "publish"), 409, "no_ticket_types")
    assert details["details"] == {"status": "draft"}
    events.ticket_type(event["id"], is_active=False)
    assert_error(events.move(event["id"], "publish"), 409, "no_ticket_types")
    assert events.get(event["id"], owner).json()["status"] == "draft"


@pytest.mark.parametrize(
    ("setup", "action", "current", "requested"),
    [
        ([], "unpublish", "draft", "draft"),
        ([], "complete", "draft", "completed"),
        (["publish"], "publish", "published", "published"),
        (["cancel"], "publish", "cancelled", "published"),
        (["cancel"], "unpublish", "cancelled", "draft"),
        (["cancel"], "cancel", "cancelled", "cancelled"),
        (["cancel"], "complete", "cancelled", "completed"),
        (["publish", "complete"], "publish", "completed", "published"),
        (["publish", "complete"], "unpublish", "completed", "draft"),
        (["publish", "complete"], "cancel", "completed", "cancelled"),
        (["publish", "complete"], "complete", "completed", "completed"),
    ],
)
def test_illegal_moves_answer_409_with_the_current_state(
    events: Events, owner: dict, setup: list[str], action: str, current: str, requested: str
) -> None:
    event = events.event()
    events.ticket_type(event["id"])
    for step in setup:
        assert events.move(event["id"], step).status_code == 200
    details = assert_error(events.move(event["id"], action), 409, "invalid_state")["details"]
    assert details == {"status": current, "requested": requested}
    assert events.get(event["id"], owner).json()["status"] == current


def test_who_may_move_an_event(events: Events) -> None:
    event = events.event()
    events.ticket_type(event["id"])
    analyst = events.member("analyst")
    assert_error(events.move(event["id"], "publish", analyst), 403, "insufficient_role")
    assert_error(events.move(event["id"], "publish", events.api.register("x")), 404, "not_found")
    assert_error(move_event(events.client, event["id"], "publish", None), 401, "unauthorized")
    assert_error(events.move(str(uuid.uuid4()), "publish"), 404, "not_found")
    moderator = events.member("moderator")
    assert events.move(event["id"], "publish", moderator).status_code == 200


# --- public listing -------------------------------------------------------------------------------


@pytest.fixture
def listed(events: Events) -> dict:
    """Three published public events sharing a marker, and some that must not be listed."""
    marker = f"mk{uuid.uuid4().hex[:10]}"
    base = at(days=100)
    shown = [
        events.published(
            title=f"Show {i}", description=f"About {marker}", start=base + timedelta(days=i)
        )
        for i in range(3)
    ]
    events.event(title=f"Draft {marker}", start=base)
    group, _ = events.group_with_member()
    events.published(
        title=f"Private {marker}", start=base, visibility="private", group_id=group["id"]
    )
    cancelled = events.published(title=f"Cancelled {marker}", start=base)
    assert events.move(cancelled["id"], "cancel").status_code == 200
    completed = events.published(title=f"Completed {marker}", start=base)
    assert events.move(completed["id"], "complete").status_code == 200
    foreign = events.another().published(
        title=f"Elsewhere {marker}", start=base + timedelta(hours=36)
    )
    return {"marker": marker, "base": base, "shown": shown, "foreign": foreign}


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["items"]]


def test_listing_shows_published_public_events_soonest_first(
    events: Events, org: dict, listed: dict
) -> None:
    shown = [e["id"] for e in listed["shown"]]
    response = events.listing(q=listed["marker"])
    assert _ids(response) == [shown[0], shown[1], listed["foreign"]["id"], shown[2]]
    assert response.json()["next_cursor"] is None
    # Any signed-in caller sees the same page.
    assert _ids(events.listing(events.api.register("reader"), q=listed["marker"])) == _ids(response)
    assert _ids(events.listing(q=listed["marker"], organization_id=org["id"])) == shown


def test_listing_title_search_is_case_insensitive(events: Events, listed: dict) -> None:
    everything = [e["id"] for e in listed["shown"]] + [listed["foreign"]["id"]]
    assert sorted(_ids(events.listing(q=listed["marker"].upper()))) == sorted(everything)
    assert _ids(events.listing(q=f"about {listed['marker']}")) != []  # in the description
    assert _ids(events.listing(q=f"show 1 {listed['marker']}")) == []
    assert _ids(events.listing(q=uuid.uuid4().hex)) == []


def test_listing_search_treats_wildcards_literally(events: Events) -> None:
    marker = f"mk{uuid.uuid4().hex[:10]}"
    percent = events.published(title=f"{marker} 100% off")
    events.published(title=f"{marker} 1000 off")
    underscore = events.published(title=f"{marker} a_b")
    events.published(title=f"{marker} axb")
    assert _ids(events.listing(q=f"{marker} 100%")) == [percent["id"]]
    assert _ids(events.listing(q=f"{marker} a_b")) == [underscore["id"]]


def test_listing_date_range(events: Events, org: dict, listed: dict) -> None:
    shown = [e["id"] for e in listed["shown"]]
    base = listed["base"]
    page = events.listing(
        q=listed["marker"],
        organization_id=org["id"],
        starts_after=(base + timedelta(days=1)).isoformat(),  # inclusive
        starts_before=(base + timedelta(days=2)).isoformat(),  # exclusive
    )
    assert _ids(page) == [shown[1]]
    after = events.listing(
        q=listed["marker"], organization_id=org["id"], starts_after=base.isoformat()
    )
    assert _ids(after) == shown
    before = events.listing(
        q=listed["marker"], organization_id=org["id"], starts_before=base.isoformat()
    )
    assert _ids(before) == []


def test_listing_cursor_pagination(events: Events, org: dict, listed: dict) -> None:
    shown = [e["id"] for e in listed["shown"]]
    first = events.listing(q=listed["marker"], organization_id=org["id"], limit=2)
    assert _ids(first) == shown[:2]
    cursor = first.json()["next_cursor"]
    assert cursor
    second = events.listing(q=listed["marker"], organization_id=org["id"], limit=2, cursor=cursor)
    assert _ids(second) == shown[2:]
    assert second.json()["next_cursor"] is None

    exact = events.listing(q=listed["marker"], organization_id=org["id"], limit=3)
    assert _ids(exact) == shown
    assert exact.json()["next_cursor"] is None


def test_listing_rejects_bad_parameters(events: Events) -> None:
    assert_error(events.listing(cursor="not-a-cursor"), 422, "invalid_cursor")
    assert_error(events.listing(limit=0), 422, "validation_error")
    assert_error(events.listing(limit=101), 422, "validation_error")
    assert_error(events.listing(starts_after="yesterday"), 422, "validation_error")
    assert_error(events.listing(organization_id="nope"), 422, "validation_error")


def test_listing_rejects_a_misspelt_filter(events: Events) -> None:
    """A typo must not silently list everything, whether or not the caller sends a token."""
    for caller in (events.api.register("reader"), None):
        misspelt = events.listing(caller, organisation_id=str(uuid.uuid4()))
        details = assert_error(misspelt, 422, "unknown_query_parameter")["details"]
        assert details["unknown"] == ["organisation_id"]


# --- the organizer's list -------------------------------------------------------------------------


def test_organization_events_include_every_state(events: Events, owner: dict, org: dict) -> None:
    start = at(days=200)
    draft = events.event(start=start + timedelta(days=2))
    published = events.published(start=start)
    cancelled = events.event(start=start + timedelta(days=1))
    assert events.move(cancelled["id"], "cancel").status_code == 200
    other = events.another()
    other.event()
    other_owner = other.owner

    analyst = events.member("analyst")
    for reader in (owner, analyst):
        response = events.client.get(
            f"{V1}/organizations/{org['id']}/events", headers=reader["headers"]
        )
        listed = items_of(response)
        assert [e["id"] for e in listed] == [published["id"], cancelled["id"], draft["id"]]
        assert {e["organization_id"] for e in listed} == {org["id"]}

    drafts = events.client.get(
        f"{V1}/organizations/{org['id']}/events",
        params={"status": "draft"},
        headers=owner["headers"],
    )
    assert [e["id"] for e in items_of(drafts)] == [draft["id"]]

    outsider = events.client.get(
        f"{V1}/organizations/{org['id']}/events", headers=other_owner["headers"]
    )
    assert_error(outsider, 404, "not_found")
    bad_status = events.client.get(
        f"{V1}/organizations/{org['id']}/events",
        params={"status": "archived"},
        headers=owner["headers"],
    )
    assert_error(bad_status, 422, "validation_error")


def test_event_sold_is_reported_only_against_an_event_capacity(client, api, admin) -> None:
    owner = api.register("capacity-owner")
    org = api.found_organization(owner, admin)
    body = {
        "organization_id": org["id"],
        "title": "Uncapped",
        "starts_at": "2031-01-01T10:00:00+00:00",
        "ends_at": "2031-01-01T12:00:00+00:00",
    }
    uncapped = client.post("/api/v1/events", json=body, headers=owner["headers"]).json()
    capped = client.post(
        "/api/v1/events", json={**body, "capacity": 5}, headers=owner["headers"]
    ).json()
    assert (uncapped["capacity"], uncapped["sold"]) == (None, None)
    assert (capped["capacity"], capped["sold"]) == (5, 0)
