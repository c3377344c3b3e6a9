"""Groups of an organization: creation, invite codes, joining, members, events."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.factories import V1, error_body, invite_member, outbox_rows


class Groups:
    def __init__(self, client: TestClient, api) -> None:
        self.client = client
        self.api = api

    def create(self, org_id: str, user: dict, name: str | None = None, **extra):
        return self.client.post(
            f"{V1}/organizations/{org_id}/groups",
            json={"name": name or f"Group {uuid.uuid4().hex[:8]}", **extra},
            headers=user["headers"],
        )

    def list(self, org_id: str, user: dict):
        return self.client.get(f"{V1}/organizations/{org_id}/groups", headers=user["headers"])

    def invite(self, group_id: str, user: dict, **body):
        return self.client.post(
            f"{V1}/groups/{group_id}/invite", json=body or None, headers=user["headers"]
        )

    def join(self, code: str, user: dict):
        return self.client.post(
            f"{V1}/group-invites/accept", json={"code": code}, headers=user["headers"]
        )

    def members(self, group_id: str, user: dict):
        return self.client.get(f"{V1}/groups/{group_id}/members", headers=user["headers"])

    def member(self, org_id: str, owner: dict, role: str) -> dict:
        """A new user with ``role`` in the organization, through an e-mail invitation."""
        return invite_member(self.client, self.api, org_id, owner, role)


@pytest.fixture
def groups(client: TestClient, api) -> Groups:
    return Groups(client, api)


@pytest.fixture
def owner(api) -> dict:
    return api.register("owner")


@pytest.fixture
def org(api, owner: dict, admin: dict) -> dict:
    return api.found_organization(owner, admin)


@pytest.fixture
def group(groups: Groups, owner: dict, org: dict) -> dict:
    response = groups.create(org["id"], owner)
    assert response.status_code == 201, response.text
    return response.json()


# --- creation and listing -------------------------------------------------------------------------


def test_owner_and_moderator_create_groups(
    client: TestClient, groups: Groups, owner: dict, org: dict
) -> None:
    created = groups.create(org["id"], owner, "Speakers", description="Only speakers")
    assert created.status_code == 201, created.text
    body = created.json()
    assert uuid.UUID(body["id"])
    assert body["organization_id"] == org["id"]
    assert body["name"] == "Speakers"
    assert body["description"] == "Only speakers"
    assert body["created_at"]

    moderator = groups.member(org["id"], owner, "moderator")
    by_moderator = groups.create(org["id"], moderator, "Volunteers")
    assert by_moderator.status_code == 201, by_moderator.text
    assert by_moderator.json()["organization_id"] == org["id"]

    one = client.get(f"{V1}/groups/{body['id']}", headers=moderator["headers"])
    assert one.status_code == 200, one.text
    assert one.json() == body


def test_analyst_cannot_create_a_group(groups: Groups, owner: dict, org: dict) -> None:
    analyst = groups.member(org["id"], owner, "analyst")
    response = groups.create(org["id"], analyst, "Nope")
    assert response.status_code == 403, response.text
    assert error_body(response)["code"] == "insufficient_role"
    assert "Nope" not in [g["name"] for g in groups.list(org["id"], owner).json()["items"]]


def test_group_names_are_unique_per_organization(
    groups: Groups, api, admin: dict, owner: dict, org: dict
) -> None:
    assert groups.create(org["id"], owner, "Core team").status_code == 201
    for name in ("Core team", "  Core team  "):
        duplicate = groups.create(org["id"], owner, name)
        assert duplicate.status_code == 409, duplicate.text
        assert error_body(duplicate)["code"] == "group_exists"
    # The same name in another organization is fine.
    other_owner = api.register("other-owner")
    other_org = api.found_organization(other_owner, admin)
    assert groups.create(other_org["id"], other_owner, "Core team").status_code == 201


def test_list_groups(groups: Groups, api, admin: dict, owner: dict, org: dict) -> None:
    for name in ("Bravo", "Alpha", "Charlie"):
        assert groups.create(org["id"], owner, name).status_code == 201
    other_owner = api.register("other-owner")
    other_org = api.found_organization(other_owner, admin)
    assert groups.create(other_org["id"], other_owner, "Delta").status_code == 201

    listed = groups.list(org["id"], owner)
    assert listed.status_code == 200, listed.text
    assert [g["name"] for g in listed.json()["items"]] == ["Alpha", "Bravo", "Charlie"]
    assert {g["organization_id"] for g in listed.json()["items"]} == {org["id"]}

    analyst = groups.member(org["id"], owner, "analyst")
    assert [g["name"] for g in groups.list(org["id"], analyst).json()["items"]] == [
        "Alpha",
        "Bravo",
        "Charlie",
    ]
    outsider = groups.list(org["id"], api.register("outsider"))
    assert outsider.status_code == 404
    assert error_body(outsider)["code"] == "not_found"


def test_groups_of_other_organizations_are_404(
    client: TestClient, groups: Groups, api, admin: dict, group: dict
) -> None:
    stranger = api.register("stranger")
    api.found_organization(stranger, admin)  # an owner, but of another tenant
    for response in (
        client.get(f"{V1}/groups/{group['id']}", headers=stranger["headers"]),
        groups.invite(group["id"], stranger),
        groups.members(group["id"], stranger),
        client.get(f"{V1}/groups/{uuid.uuid4()}", headers=stranger["headers"]),
    ):
        assert response.status_code == 404, response.text
        assert error_body(response)["code"] == "not_found"


# --- invite codes and joining ---------------------------------------------------------------------


def test_invite_code_then_join(groups: Groups, api, owner: dict, org: dict, group: dict) -> None:
    response = groups.invite(group["id"], owner, ttl_hours=2)
    assert response.status_code == 201, response.text
    invite = response.json()
    assert invite["group_id"] == group["id"]
    assert len(invite["code"]) >= 12
    assert invite["expires_at"]

    joiner = api.register("joiner")
    joined = groups.join(invite["code"], joiner)
    assert joined.status_code == 200, joined.text
    assert joined.json() == group

    members = groups.members(group["id"], owner)
    assert members.status_code == 200, members.text
    listed = [(m["user_id"], m["display_name"]) for m in members.json()["items"]]
    assert listed == [(joiner["user"]["id"], joiner["user"]["display_name"])]
    assert members.json()["items"][0]["joined_at"]

    twice = groups.join(invite["code"], joiner)
    assert twice.status_code == 409, twice.text
    assert error_body(twice)["code"] == "already_member"
    assert len(groups.members(group["id"], owner).json()["items"]) == 1

    # The code stays valid for other people until it is replaced.
    second = api.register("second")
    assert groups.join(invite["code"], second).status_code == 200
    ids = [m["user_id"] for m in groups.members(group["id"], owner).json()["items"]]
    assert ids == [joiner["user"]["id"], second["user"]["id"]]

    # Joining a group does not make anyone a member of the organization.
    orgs = groups.client.get(f"{V1}/organizations", headers=joiner["headers"]).json()["items"]
    assert org["id"] not in {o["id"] for o in orgs}


def test_group_members_are_for_managers(groups: Groups, owner: dict, org: dict, group: dict):
    moderator = groups.member(org["id"], owner, "moderator")
    analyst = groups.member(org["id"], owner, "analyst")
    assert groups.members(group["id"], moderator).status_code == 200
    assert groups.invite(group["id"], moderator).status_code == 201
    for response in (groups.members(group["id"], analyst), groups.invite(group["id"], analyst)):
        assert response.status_code == 403, response.text
        assert error_body(response)["code"] == "insufficient_role"


def test_a_new_code_invalidates_the_old_one(groups: Groups, api, owner: dict, group: dict):
    old = groups.invite(group["id"], owner).json()["code"]
    new = groups.invite(group["id"], owner).json()["code"]
    assert new != old

    stale = groups.join(old, api.register("stale"))
    assert stale.status_code == 404, stale.text
    assert error_body(stale)["code"] == "not_found"
    fresh = groups.join(new, api.register("fresh"))
    assert fresh.status_code == 200, fresh.text


def test_unknown_code_is_404(groups: Groups, api) -> None:
    response = groups.join(uuid.uuid4().hex, api.register())
    assert response.status_code == 404
    assert error_body(response)["code"] == "not_found"


def test_expired_code_is_409(
    groups: Groups, api, owner: dict, group: dict, owner_engine: Engine
) -> None:
    code = groups.invite(group["id"], owner).json()["code"]
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE groups SET invite_expires_at = now() - interval '1 minute' WHERE id = :id"
            ),
            {"id": group["id"]},
        )
    late = api.register("late")
    response = groups.join(code, late)
    assert response.status_code == 409, response.text
    assert error_body(response)["code"] == "invalid_state"
    assert error_body(response)["details"] == {"status": "expired"}
    assert groups.members(group["id"], owner).json()["items"] == []


def test_invite_ttl_is_bounded(groups: Groups, owner: dict, group: dict) -> None:
    for ttl in (0, 24 * 90 + 1):
        response = groups.invite(group["id"], owner, ttl_hours=ttl)
        assert response.status_code == 422, response.text
        assert error_body(response)["code"] == "validation_error"


# --- events ---------------------------------------------------------------------------------------


def test_outbox_has_group_events_with_the_tenant(
    groups: Groups, api, owner: dict, org: dict, owner_engine: Engine
) -> None:
    group = groups.create(org["id"], owner, "Evented").json()
    code = groups.invite(group["id"], owner).json()["code"]
    joiner = api.register("joiner")
    assert groups.join(code, joiner).status_code == 200

    events = outbox_rows(owner_engine, group["id"])
    assert [e["event_type"] for e in events] == ["group.created", "group.member.added"]
    assert all(str(e["tenant_id"]) == org["id"] for e in events)
    assert {e["aggregate_type"] for e in events} == {"group"}
    created, added = (e["payload"] for e in events)
    assert created["group_id"] == group["id"]
    assert created["organization_id"] == org["id"]
    assert created["tenant_id"] == org["id"]
    assert created["name"] == "Evented"
    assert added["group_id"] == group["id"]
    assert added["organization_id"] == org["id"]
    assert added["user_id"] == joiner["user"]["id"]


def test_a_groups_private_events(groups: Groups, owner: dict, org: dict, group: dict) -> None:
    from tests.factories import create_event

    other = groups.create(org["id"], owner).json()
    mine = [
        create_event(groups.client, org["id"], owner, visibility="private", group_id=group["id"])
        for _ in range(2)
    ]
    create_event(groups.client, org["id"], owner, visibility="private", group_id=other["id"])
    create_event(groups.client, org["id"], owner)
    url = f"{V1}/organizations/{org['id']}/events"
    analyst = groups.member(org["id"], owner, "analyst")
    response = groups.client.get(url, params={"group_id": group["id"]}, headers=analyst["headers"])
    assert response.status_code == 200, response.text
    assert sorted(e["id"] for e in response.json()["items"]) == sorted(m.json()["id"] for m in mine)
    assert {e["visibility"] for e in response.json()["items"]} == {"private"}
    everything = groups.client.get(url, headers=owner["headers"]).json()["items"]
    assert len(everything) == 4
    unknown = groups.client.get(url, params={"group_id": "nope"}, headers=owner["headers"])
    assert unknown.status_code == 422, unknown.text
