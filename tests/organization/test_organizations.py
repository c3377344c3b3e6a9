"""Organization requests and their review, organizations, members, roles and invitations."""

from __future__ import annotations

import secrets
import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from domain.errors import Conflict
from domain.identity import telegram
from domain.organization import service as org_service
from domain.organization.models import Role
from domain.uow import UnitOfWork
from tests.factories import V1, error_body, invite_member, outbox_rows, walk


def _slug() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


class Orgs:
    """Requests, invites and memberships through the API, for the tests below."""

    def __init__(self, client: TestClient, api) -> None:
        self.client = client
        self.api = api

    def request(self, user: dict, slug: str | None = None, **extra):
        slug = slug or _slug()
        return self.client.post(
            f"{V1}/organization-requests",
            json={"name": f"Org {slug}", "slug": slug, **extra},
            headers=user["headers"],
        )

    def review(self, request_id: str, user: dict, verdict: str = "approve", **body):
        return self.client.post(
            f"{V1}/organization-requests/{request_id}/{verdict}",
            json=body or None,
            headers=user["headers"],
        )

    def create(self, request_id: str, user: dict):
        return self.client.post(
            f"{V1}/organizations", json={"request_id": request_id}, headers=user["headers"]
        )

    def invite(self, org_id: str, inviter: dict, **body):
        return self.client.post(
            f"{V1}/organizations/{org_id}/invite", json=body, headers=inviter["headers"]
        )

    def accept(self, token: str, user: dict):
        return self.client.post(
            f"{V1}/organization-invites/accept", json={"token": token}, headers=user["headers"]
        )

    def members(self, org_id: str, user: dict):
        return self.client.get(f"{V1}/organizations/{org_id}/members", headers=user["headers"])

    def set_role(self, org_id: str, user_id: str, role: str, actor: dict):
        return self.client.patch(
            f"{V1}/organizations/{org_id}/members/{user_id}",
            json={"role": role},
            headers=actor["headers"],
        )

    def remove(self, org_id: str, user_id: str, actor: dict):
        return self.client.delete(
            f"{V1}/organizations/{org_id}/members/{user_id}", headers=actor["headers"]
        )

    def join(self, org_id: str, owner: dict, role: str, name: str | None = None) -> dict:
        """A new user who joined ``org_id`` with ``role`` through an e-mail invitation."""
        return invite_member(self.client, self.api, org_id, owner, role, name)


@pytest.fixture
def orgs(client: TestClient, api) -> Orgs:
    return Orgs(client, api)


@pytest.fixture
def owner(api) -> dict:
    return api.register("owner")


@pytest.fixture
def org(api, owner: dict, admin: dict) -> dict:
    return api.found_organization(owner, admin)


def _role_of(client: TestClient, user: dict, org_id: str) -> str | None:
    response = client.get(f"{V1}/organizations", headers=user["headers"])
    assert response.status_code == 200, response.text
    roles = {o["id"]: o["role"] for o in response.json()["items"]}
    return roles.get(org_id)


# --- requests and founding ------------------------------------------------------------------------


def test_request_review_and_found(client: TestClient, orgs: Orgs, api, admin: dict) -> None:
    requester = api.register("founder")
    slug = _slug()
    created = orgs.request(requester, slug, description="We run meetups")
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "pending"
    assert request["slug"] == slug
    assert request["name"] == f"Org {slug}"
    assert request["description"] == "We run meetups"
    assert request["user_id"] == requester["user"]["id"]
    assert request["reviewed_at"] is None

    stranger = api.register("stranger")
    for user in (requester, stranger):
        denied = orgs.review(request["id"], user)
        assert denied.status_code == 403, denied.text
        assert error_body(denied)["code"] == "forbidden"

    approved = orgs.review(request["id"], admin, comment="Welcome")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["review_comment"] == "Welcome"
    assert approved.json()["reviewed_at"] is not None

    founded = orgs.create(request["id"], requester)
    assert founded.status_code == 201, founded.text
    org = founded.json()
    assert org["slug"] == slug
    assert org["name"] == f"Org {slug}"
    assert org["description"] == "We run meetups"

    mine = client.get(f"{V1}/organizations", headers=requester["headers"])
    assert mine.status_code == 200
    assert [o for o in mine.json()["items"] if o["id"] == org["id"]] == [{**org, "role": "owner"}]
    one = client.get(f"{V1}/organizations/{org['id']}", headers=requester["headers"])
    assert one.status_code == 200
    assert one.json() == {**org, "role": "owner"}

    members = orgs.members(org["id"], requester)
    assert members.status_code == 200, members.text
    assert [(m["user_id"], m["role"]) for m in members.json()["items"]] == [
        (requester["user"]["id"], "owner")
    ]


def test_reviewing_twice_or_an_unknown_request(orgs: Orgs, api, admin: dict) -> None:
    request = orgs.request(api.register()).json()
    assert orgs.review(request["id"], admin).status_code == 200
    for verdict in ("approve", "reject"):
        again = orgs.review(request["id"], admin, verdict)
        assert again.status_code == 409, again.text
        assert error_body(again)["code"] == "invalid_state"
        assert error_body(again)["details"] == {"status": "approved"}
    missing = orgs.review(str(uuid.uuid4()), admin)
    assert missing.status_code == 404
    assert error_body(missing)["code"] == "not_found"


def test_founding_needs_an_approved_request(orgs: Orgs, api, admin: dict) -> None:
    pending_user = api.register("pending")
    pending = orgs.request(pending_user).json()
    response = orgs.create(pending["id"], pending_user)
    assert response.status_code == 409, response.text
    assert error_body(response)["code"] == "invalid_state"
    assert error_body(response)["details"] == {"status": "pending"}

    rejected_user = api.register("rejected")
    rejected = orgs.request(rejected_user).json()
    review = orgs.review(rejected["id"], admin, "reject", comment="No")
    assert review.status_code == 200
    assert review.json()["status"] == "rejected"
    response = orgs.create(rejected["id"], rejected_user)
    assert response.status_code == 409, response.text
    assert error_body(response)["code"] == "invalid_state"
    assert error_body(response)["details"] == {"status": "rejected"}
    assert _role_of(orgs.client, rejected_user, rejected["id"]) is None


def test_a_request_founds_one_organization_once(orgs: Orgs, api, admin: dict) -> None:
    user = api.register()
    request = orgs.request(user).json()
    orgs.review(request["id"], admin)
    assert orgs.create(request["id"], user).status_code == 201
    again = orgs.create(request["id"], user)
    assert again.status_code == 409, again.text
    assert error_body(again)["code"] == "organization_exists"
    mine = orgs.client.get(f"{V1}/organizations", headers=user["headers"]).json()["items"]
    assert [o["slug"] for o in mine] == [request["slug"]]


def test_someone_elses_approved_request_is_404(orgs: Orgs, api, admin: dict) -> None:
    requester, thief = api.register("requester"), api.register("thief")
    request = orgs.request(requester).json()
    orgs.review(request["id"], admin)
    stolen = orgs.create(request["id"], thief)
    assert stolen.status_code == 404, stolen.text
    assert error_body(stolen)["code"] == "not_found"
    # The request is still usable by its owner.
    assert orgs.create(request["id"], requester).status_code == 201
    unknown = orgs.create(str(uuid.uuid4()), requester)
    assert unknown.status_code == 404


def test_one_pending_request_at_a_time(orgs: Orgs, api, admin: dict) -> None:
    user = api.register()
    first = orgs.request(user)
    assert first.status_code == 201
    second = orgs.request(user)
    assert second.status_code == 409, second.text
    assert error_body(second)["code"] == "request_pending"
    orgs.review(first.json()["id"], admin, "reject")
    assert orgs.request(user).status_code == 201


@pytest.mark.parametrize("slug", ["Bad Slug!", "-leading", "trailing-", "under_score", "dots.x"])
def test_invalid_slug_is_422(orgs: Orgs, api, slug: str) -> None:
    response = orgs.request(api.register(), slug)
    assert response.status_code == 422, response.text
    assert error_body(response)["code"] == "invalid_slug"


def test_request_lists_are_scoped(client: TestClient, orgs: Orgs, api, admin: dict) -> None:
    alice, bob = api.register("alice"), api.register("bob")
    mine = orgs.request(alice).json()
    theirs = orgs.request(bob).json()

    listed = client.get(f"{V1}/organization-requests", headers=alice["headers"])
    assert listed.status_code == 200
    assert {r["user_id"] for r in listed.json()["items"]} == {alice["user"]["id"]}
    assert [r["id"] for r in listed.json()["items"]] == [mine["id"]]

    everything = walk(client, "/organization-requests", admin)
    ids = {r["id"] for r in everything}
    assert {mine["id"], theirs["id"]} <= ids

    orgs.review(theirs["id"], admin)
    pending = walk(client, "/organization-requests", admin, status="pending")
    assert mine["id"] in {r["id"] for r in pending}
    assert theirs["id"] not in {r["id"] for r in pending}
    assert all(r["status"] == "pending" for r in pending)

    anonymous = client.get(f"{V1}/organization-requests")
    assert anonymous.status_code == 401


# --- invitations ----------------------------------------------------------------------------------


def test_invite_by_email_then_accept(
    client: TestClient, orgs: Orgs, api, owner: dict, org: dict
) -> None:
    invitee = api.register("invitee")
    response = orgs.invite(org["id"], owner, email=invitee["email"].upper(), role="moderator")
    assert response.status_code == 201, response.text
    invite = response.json()
    assert invite["organization_id"] == org["id"]
    assert invite["role"] == "moderator"
    assert invite["email"] == invitee["email"]
    assert invite["telegram_username"] is None
    assert len(invite["token"]) >= 32
    assert _role_of(client, invitee, org["id"]) is None

    accepted = orgs.accept(invite["token"], invitee)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {**org, "role": "moderator"}
    assert _role_of(client, invitee, org["id"]) == "moderator"
    members = {m["user_id"]: m for m in orgs.members(org["id"], owner).json()["items"]}
    assert members[invitee["user"]["id"]]["role"] == "moderator"
    assert members[invitee["user"]["id"]]["email"] == invitee["email"]

    again = orgs.accept(invite["token"], invitee)
    assert again.status_code == 409, again.text
    assert error_body(again)["code"] == "invalid_state"
    assert error_body(again)["details"] == {"status": "accepted"}


def test_an_invite_is_for_its_addressee_only(orgs: Orgs, api, owner: dict, org: dict) -> None:
    invitee, other = api.register("invitee"), api.register("other")
    token = orgs.invite(org["id"], owner, email=invitee["email"], role="analyst").json()["token"]
    wrong = orgs.accept(token, other)
    assert wrong.status_code == 403, wrong.text
    assert error_body(wrong)["code"] == "invite_mismatch"
    assert _role_of(orgs.client, other, org["id"]) is None
    # The mismatch did not spend the invitation.
    assert orgs.accept(token, invitee).status_code == 200
    assert _role_of(orgs.client, invitee, org["id"]) == "analyst"


def test_unknown_invite_token_is_404(orgs: Orgs, api) -> None:
    response = orgs.accept(secrets.token_urlsafe(32), api.register())
    assert response.status_code == 404
    assert error_body(response)["code"] == "not_found"


def test_expired_invite_is_409(
    orgs: Orgs, api, owner: dict, org: dict, owner_engine: Engine
) -> None:
    invitee = api.register("late")
    invite = orgs.invite(org["id"], owner, email=invitee["email"], role="analyst").json()
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE organization_invites SET expires_at = now() - interval '1 minute' "
                "WHERE id = :id"
            ),
            {"id": invite["id"]},
        )
    response = orgs.accept(invite["token"], invitee)
    assert response.status_code == 409, response.text
    assert error_body(response)["code"] == "invalid_state"
    assert error_body(response)["details"] == {"status": "expired"}
    assert _role_of(orgs.client, invitee, org["id"]) is None


def test_invite_by_telegram_username(client: TestClient, orgs: Orgs, owner: dict, org: dict):
    username = f"Tg_{uuid.uuid4().hex[:12]}"
    fields = {"id": 10**9 + secrets.randbelow(10**12), "auth_date": int(time.time())}
    fields["username"] = username
    fields["hash"] = telegram.sign(fields, "123456:TEST-bot-token-for-the-suite")
    signed_in = client.post(f"{V1}/auth/telegram", json=fields)
    assert signed_in.status_code == 200, signed_in.text
    tg_user = {"headers": {"Authorization": f"Bearer {signed_in.json()['access_token']}"}}

    invite = orgs.invite(org["id"], owner, telegram_username=f"@{username}", role="analyst")
    assert invite.status_code == 201, invite.text
    assert invite.json()["telegram_username"] == username.lower()
    assert invite.json()["email"] is None
    accepted = orgs.accept(invite.json()["token"], tg_user)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "analyst"


def test_invite_names_exactly_one_addressee(orgs: Orgs, owner: dict, org: dict) -> None:
    both = orgs.invite(org["id"], owner, email="a@example.org", telegram_username="someone")
    neither = orgs.invite(org["id"], owner, role="analyst")
    for response in (both, neither):
        assert response.status_code == 422, response.text
        assert error_body(response)["code"] == "invalid_invite"


# --- roles ----------------------------------------------------------------------------------------


def test_analyst_reads_the_organization_but_not_its_members(
    client: TestClient, orgs: Orgs, owner: dict, org: dict
) -> None:
    analyst = orgs.join(org["id"], owner, "analyst")
    response = client.get(f"{V1}/organizations/{org['id']}", headers=analyst["headers"])
    assert response.status_code == 200, response.text
    assert response.json() == {**org, "role": "analyst"}

    members = orgs.members(org["id"], analyst)
    assert members.status_code == 403, members.text
    error = error_body(members)
    assert error["code"] == "insufficient_role"
    assert error["details"] == {"role": "analyst"}

    invite = orgs.invite(org["id"], analyst, email="x@example.org", role="analyst")
    assert invite.status_code == 403
    assert error_body(invite)["code"] == "insufficient_role"


def test_outsiders_do_not_see_an_organization(
    client: TestClient, orgs: Orgs, api, org: dict
) -> None:
    outsider = api.register("outsider")
    for response in (
        client.get(f"{V1}/organizations/{org['id']}", headers=outsider["headers"]),
        orgs.members(org["id"], outsider),
        orgs.invite(org["id"], outsider, email=outsider["email"], role="owner"),
        client.get(f"{V1}/organizations/{uuid.uuid4()}", headers=outsider["headers"]),
    ):
        assert response.status_code == 404, response.text
        assert error_body(response)["code"] == "not_found"
    assert client.get(f"{V1}/organizations/{org['id']}").status_code == 401


def test_moderator_invites_but_not_owners(orgs: Orgs, api, owner: dict, org: dict) -> None:
    moderator = orgs.join(org["id"], owner, "moderator")
    target = api.register("target")
    denied = orgs.invite(org["id"], moderator, email=target["email"], role="owner")
    assert denied.status_code == 403, denied.text
    assert error_body(denied)["code"] == "forbidden"
    allowed = orgs.invite(org["id"], moderator, email=target["email"], role="analyst")
    assert allowed.status_code == 201, allowed.text
    members = orgs.members(org["id"], moderator)
    assert members.status_code == 200


def test_owner_changes_roles_moderator_cannot(orgs: Orgs, owner: dict, org: dict) -> None:
    member = orgs.join(org["id"], owner, "analyst")
    member_id = member["user"]["id"]
    promoted = orgs.set_role(org["id"], member_id, "moderator", owner)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["user_id"] == member_id
    assert promoted.json()["role"] == "moderator"
    assert _role_of(orgs.client, member, org["id"]) == "moderator"

    by_moderator = orgs.set_role(org["id"], owner["user"]["id"], "analyst", member)
    assert by_moderator.status_code == 403, by_moderator.text
    assert error_body(by_moderator)["code"] == "insufficient_role"

    missing = orgs.set_role(org["id"], str(uuid.uuid4()), "analyst", owner)
    assert missing.status_code == 404
    bad_role = orgs.set_role(org["id"], member_id, "emperor", owner)
    assert bad_role.status_code == 422
    assert error_body(bad_role)["code"] == "validation_error"


def test_the_last_owner_stays(orgs: Orgs, owner: dict, org: dict) -> None:
    owner_id = owner["user"]["id"]
    demote = orgs.set_role(org["id"], owner_id, "moderator", owner)
    assert demote.status_code == 409, demote.text
    assert error_body(demote)["code"] == "last_owner"
    remove = orgs.remove(org["id"], owner_id, owner)
    assert remove.status_code == 409, remove.text
    assert error_body(remove)["code"] == "last_owner"
    assert _role_of(orgs.client, owner, org["id"]) == "owner"
    # Setting the same role is a no-op, not a demotion.
    same = orgs.set_role(org["id"], owner_id, "owner", owner)
    assert same.status_code == 200
    assert same.json()["role"] == "owner"


def test_with_two_owners_one_can_step_down(orgs: Orgs, owner: dict, org: dict) -> None:
    second = orgs.join(org["id"], owner, "owner")
    demoted = orgs.set_role(org["id"], owner["user"]["id"], "moderator", second)
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "moderator"
    assert _role_of(orgs.client, owner, org["id"]) == "moderator"
    # Now the second is the last owner.
    last = orgs.set_role(org["id"], second["user"]["id"], "analyst", second)
    assert last.status_code == 409
    assert error_body(last)["code"] == "last_owner"


def test_an_owner_can_leave_when_another_owner_remains(orgs: Orgs, owner: dict, org: dict):
    second = orgs.join(org["id"], owner, "owner")
    left = orgs.remove(org["id"], owner["user"]["id"], owner)
    assert left.status_code == 204, left.text
    assert _role_of(orgs.client, owner, org["id"]) is None
    assert _role_of(orgs.client, second, org["id"]) == "owner"


def test_a_member_leaves_but_cannot_remove_others(
    client: TestClient, orgs: Orgs, owner: dict, org: dict
) -> None:
    moderator = orgs.join(org["id"], owner, "moderator")
    analyst = orgs.join(org["id"], owner, "analyst")

    for actor in (moderator, analyst):
        denied = orgs.remove(org["id"], owner["user"]["id"], actor)
        assert denied.status_code == 403, denied.text
        assert error_body(denied)["code"] == "insufficient_role"
    denied = orgs.remove(org["id"], analyst["user"]["id"], moderator)
    assert denied.status_code == 403
    assert error_body(denied)["code"] == "insufficient_role"

    left = orgs.remove(org["id"], analyst["user"]["id"], analyst)
    assert left.status_code == 204, left.text
    assert left.content == b""
    assert _role_of(client, analyst, org["id"]) is None
    gone = client.get(f"{V1}/organizations/{org['id']}", headers=analyst["headers"])
    assert gone.status_code == 404
    member_ids = {m["user_id"] for m in orgs.members(org["id"], owner).json()["items"]}
    assert analyst["user"]["id"] not in member_ids

    removed = orgs.remove(org["id"], moderator["user"]["id"], owner)
    assert removed.status_code == 204
    assert _role_of(client, moderator, org["id"]) is None
    assert orgs.remove(org["id"], moderator["user"]["id"], owner).status_code == 404


def test_a_member_who_left_can_be_invited_again(orgs: Orgs, owner: dict, org: dict) -> None:
    member = orgs.join(org["id"], owner, "analyst")
    assert orgs.remove(org["id"], member["user"]["id"], member).status_code == 204
    invite = orgs.invite(org["id"], owner, email=member["email"], role="moderator").json()
    accepted = orgs.accept(invite["token"], member)
    assert accepted.status_code == 200, accepted.text
    assert _role_of(orgs.client, member, org["id"]) == "moderator"


def test_accepting_while_already_a_member_is_409(orgs: Orgs, owner: dict, org: dict) -> None:
    member = orgs.join(org["id"], owner, "analyst")
    invite = orgs.invite(org["id"], owner, email=member["email"], role="owner").json()
    response = orgs.accept(invite["token"], member)
    assert response.status_code == 409, response.text
    assert error_body(response)["code"] == "already_member"
    assert _role_of(orgs.client, member, org["id"]) == "analyst"


# --- events ---------------------------------------------------------------------------------------


def test_outbox_events_carry_the_tenant(orgs: Orgs, api, admin: dict, owner_engine: Engine) -> None:
    owner = api.register("events")
    request = orgs.request(owner).json()
    orgs.review(request["id"], admin)
    org = orgs.create(request["id"], owner).json()
    invitee = orgs.join(org["id"], owner, "analyst")

    request_events = outbox_rows(owner_engine, request["id"])
    assert [e["event_type"] for e in request_events] == [
        "organization.request.created",
        "organization.request.reviewed",
    ]
    created, reviewed = request_events
    # Requests belong to no tenant yet: platform events.
    assert created["tenant_id"] is None
    assert created["aggregate_type"] == "organization_request"
    assert created["payload"]["request_id"] == request["id"]
    assert created["payload"]["user_id"] == owner["user"]["id"]
    assert created["payload"]["slug"] == request["slug"]
    assert reviewed["payload"]["status"] == "approved"
    assert reviewed["payload"]["reviewed_by"] == admin["user"]["id"]

    org_events = outbox_rows(owner_engine, org["id"])
    assert sorted(e["event_type"] for e in org_events) == [
        "organization.created",
        "organization.member.added",
        "organization.member.added",
        "organization.member.invited",
    ]
    assert {str(e["tenant_id"]) for e in org_events} == {org["id"]}
    assert {e["aggregate_type"] for e in org_events} == {"organization"}
    by_type = {}
    for event in org_events:
        by_type.setdefault(event["event_type"], []).append(event["payload"])
    assert by_type["organization.created"] == [
        {
            "aggregate_id": org["id"],
            "tenant_id": org["id"],
            "organization_id": org["id"],
            "name": org["name"],
            "slug": org["slug"],
            "owner_id": owner["user"]["id"],
        }
    ]
    added = [(p["user_id"], p["role"]) for p in by_type["organization.member.added"]]
    assert added == [(owner["user"]["id"], "owner"), (invitee["user"]["id"], "analyst")]
    (invited,) = by_type["organization.member.invited"]
    assert invited["email"] == invitee["email"]
    assert invited["role"] == "analyst"


def test_organization_created_precedes_its_first_member(
    api, admin: dict, owner_engine: Engine
) -> None:
    # The relay publishes in outbox order: a consumer must learn of the organization before
    # it learns of a member of it.
    owner = api.register("order")
    org = api.found_organization(owner, admin)
    types = [e["event_type"] for e in outbox_rows(owner_engine, org["id"])]
    assert types == ["organization.created", "organization.member.added"]


def test_role_change_and_removal_events(orgs: Orgs, owner: dict, org: dict, owner_engine):
    member = orgs.join(org["id"], owner, "analyst")
    orgs.set_role(org["id"], member["user"]["id"], "moderator", owner)
    orgs.remove(org["id"], member["user"]["id"], owner)
    events = [e for e in outbox_rows(owner_engine, org["id"]) if e["payload"].get("user_id")]
    tail = [(e["event_type"], e["payload"]) for e in events][-2:]
    assert tail[0][0] == "organization.member.role_changed"
    assert tail[0][1]["old_role"] == "analyst" and tail[0][1]["new_role"] == "moderator"
    assert tail[1][0] == "organization.member.removed"
    assert tail[1][1]["user_id"] == member["user"]["id"]
    assert all(str(e["tenant_id"]) == org["id"] for e in events)


# --- invariants under concurrency -----------------------------------------------------------------


class _Background:
    """Runs ``fn`` in a thread; ``blocked()`` tells whether it is still waiting (on a lock)."""

    def __init__(self, fn) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self.result = fn()
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def blocked(self, wait_s: float = 0.5) -> bool:
        self._thread.join(wait_s)
        return self._thread.is_alive()

    def finish(self, timeout_s: float = 10.0) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the concurrent transaction never finished"


def test_concurrent_demotions_cannot_remove_every_owner(
    client: TestClient, orgs: Orgs, owner: dict, org: dict
) -> None:
    second = orgs.join(org["id"], owner, "owner")
    sessions = client.app.state.aq.sessionmaker
    tenant = uuid.UUID(org["id"])
    first_id, second_id = uuid.UUID(owner["user"]["id"]), uuid.UUID(second["user"]["id"])

    def demote(actor: uuid.UUID, target: uuid.UUID) -> None:
        with UnitOfWork(sessions, user_id=actor, tenant_id=tenant) as uow:
            org_service.change_role(uow, tenant, target, Role.MODERATOR)
            uow.commit()

    with UnitOfWork(sessions, user_id=first_id, tenant_id=tenant) as uow:
        org_service.change_role(uow, tenant, second_id, Role.MODERATOR)
        other = _Background(lambda: demote(second_id, first_id))
        assert other.blocked(), "the second demotion did not wait for the first"
        uow.commit()
    other.finish()

    assert isinstance(other.error, Conflict), other.error
    assert other.error.code == "last_owner"
    roles = {m["user_id"]: m["role"] for m in orgs.members(org["id"], owner).json()["items"]}
    assert roles[owner["user"]["id"]] == "owner"
    assert roles[second["user"]["id"]] == "moderator"


def test_concurrent_requests_leave_one_pending(
    client: TestClient, api, owner_engine: Engine
) -> None:
    user = api.register("double-click")
    user_id = uuid.UUID(user["user"]["id"])
    sessions = client.app.state.aq.sessionmaker

    def request() -> None:
        with UnitOfWork(sessions, user_id=user_id) as uow:
            org_service.create_request(uow, user_id, name="Twice", slug=_slug(), description=None)
            uow.commit()

    with UnitOfWork(sessions, user_id=user_id) as uow:
        org_service.create_request(uow, user_id, name="Once", slug=_slug(), description=None)
        other = _Background(request)
        other.blocked()
        uow.commit()
    other.finish()

    with owner_engine.connect() as conn:
        pending = conn.execute(
            text(
                "SELECT count(*) FROM organization_requests "
                "WHERE user_id = :id AND status = 'pending'"
            ),
            {"id": user_id},
        ).scalar_one()
    assert pending == 1, "two concurrent requests both passed the one-pending-request check"
    assert isinstance(other.error, Conflict), other.error
    assert other.error.code == "request_pending"


# --- pending invitations --------------------------------------------------------------------------


def _pending(orgs: Orgs, org_id: str, user: dict, **params) -> list[dict]:
    response = orgs.client.get(
        f"{V1}/organizations/{org_id}/invitations", params=params, headers=user["headers"]
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_pending_invitations_are_listed_until_accepted_expired_or_revoked(
    orgs: Orgs, api, owner: dict, org: dict, owner_engine: Engine
) -> None:
    people = [api.register(f"pending{n}") for n in range(4)]
    invites = [
        orgs.invite(org["id"], owner, email=p["email"], role=role).json()
        for p, role in zip(people, ("moderator", "analyst", "analyst", "owner"), strict=True)
    ]
    listed = _pending(orgs, org["id"], owner)
    assert [i["id"] for i in listed] == [i["id"] for i in invites]
    assert listed[0] | {"created_at": None} == {
        "id": invites[0]["id"],
        "role": "moderator",
        "email": people[0]["email"],
        "telegram_username": None,
        "invited_by": owner["user"]["id"],
        "created_at": None,
        "expires_at": invites[0]["expires_at"],
    }
    assert "token" not in listed[0]
    # Keyset pages of one.
    first = orgs.client.get(
        f"{V1}/organizations/{org['id']}/invitations", params={"limit": 1},
        headers=owner["headers"],
    ).json()  # fmt: skip
    assert [i["id"] for i in first["items"]] == [invites[0]["id"]]
    second = _pending(orgs, org["id"], owner, limit=1, cursor=first["next_cursor"])
    assert [i["id"] for i in second] == [invites[1]["id"]]

    assert orgs.accept(invites[0]["token"], people[0]).status_code == 200
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE organization_invites SET expires_at = now() - interval '1 s' WHERE id = :id"
            ),
            {"id": invites[1]["id"]},
        )
    revoked = orgs.client.delete(
        f"{V1}/organizations/{org['id']}/invitations/{invites[2]['id']}", headers=owner["headers"]
    )
    assert revoked.status_code == 204, revoked.text
    assert [i["id"] for i in _pending(orgs, org["id"], owner)] == [invites[3]["id"]]
    refused = orgs.accept(invites[2]["token"], people[2])
    assert refused.status_code == 409, refused.text
    assert error_body(refused)["details"] == {"status": "expired"}
    assert _role_of(orgs.client, people[2], org["id"]) is None
    # Revoked, accepted or expired: no longer pending, so 404.
    for invite in invites[:3]:
        again = orgs.client.delete(
            f"{V1}/organizations/{org['id']}/invitations/{invite['id']}", headers=owner["headers"]
        )
        assert again.status_code == 404, again.text
        assert error_body(again)["code"] == "not_found"


def test_who_sees_and_revokes_invitations(
    orgs: Orgs, api, owner: dict, org: dict, admin: dict
) -> None:
    moderator = orgs.join(org["id"], owner, "moderator")
    analyst = orgs.join(org["id"], owner, "analyst")
    owner_invite = orgs.invite(org["id"], owner, email=api.register()["email"], role="owner").json()
    plain = orgs.invite(org["id"], owner, email=api.register()["email"], role="analyst").json()
    assert len(_pending(orgs, org["id"], moderator)) == 2
    url = f"{V1}/organizations/{org['id']}/invitations"
    listed = orgs.client.get(url, headers=analyst["headers"])
    assert listed.status_code == 403 and error_body(listed)["code"] == "insufficient_role"
    # Another organization's owner: neither the list nor this organization's invitation.
    other_owner = api.register("other-owner")
    other = api.found_organization(other_owner, admin)
    assert orgs.client.get(url, headers=other_owner["headers"]).status_code == 404
    crossed = orgs.client.delete(
        f"{V1}/organizations/{other['id']}/invitations/{plain['id']}",
        headers=other_owner["headers"],
    )
    assert crossed.status_code == 404, crossed.text
    analyst_revoke = orgs.client.delete(f"{url}/{plain['id']}", headers=analyst["headers"])
    assert analyst_revoke.status_code == 403
    owners_only = orgs.client.delete(f"{url}/{owner_invite['id']}", headers=moderator["headers"])
    assert owners_only.status_code == 403 and error_body(owners_only)["code"] == "forbidden"
    assert (
        orgs.client.delete(f"{url}/{plain['id']}", headers=moderator["headers"]).status_code == 204
    )
    assert [i["id"] for i in _pending(orgs, org["id"], owner)] == [owner_invite["id"]]
