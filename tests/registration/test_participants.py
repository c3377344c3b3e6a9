"""The participant list: who else comes, by display name only, for confirmed participants of an
event whose list is open; opting out; what the list never shows (cancelled or unpaid
registrations, e-mails, ids) and who cannot read it (outsiders, another tenant, the unregistered).
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    V1,
    Organizer,
    assert_error,
    cancelled_registration,
    registered,
    walk,
)


@pytest.fixture
def org(client: TestClient, api, admin: dict) -> Organizer:
    return Organizer(client, api, admin)


def _names(client: TestClient, event_id: str, user: dict, **params):
    return client.get(
        f"{V1}/events/{event_id}/participants", params=params, headers=user["headers"]
    )


def _listed(client: TestClient, event_id: str, user: dict) -> list[str]:
    response = _names(client, event_id, user, limit=100)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert all(set(item) == {"display_name"} for item in body["items"])
    return [item["display_name"] for item in body["items"]]


def _patch(client: TestClient, registration_id: str, user: dict, **body):
    return client.patch(f"{V1}/registrations/{registration_id}", json=body, headers=user["headers"])


def _someone(org: Organizer, event_id: str, tt_id: str, name: str) -> tuple[dict, dict]:
    return org.participant(event_id, tt_id, name=f"{name}-{uuid.uuid4().hex[:6]}")


def test_an_open_list_shows_confirmed_listed_participants_by_name_only(
    client: TestClient, org: Organizer
) -> None:
    event, tt = org.published_event(capacity=10, participants_visibility="open")
    ann, ann_reg = _someone(org, event["id"], tt["id"], "ann")
    bob, bob_reg = _someone(org, event["id"], tt["id"], "bob")
    cyd, cyd_reg = _someone(org, event["id"], tt["id"], "cyd")
    # A paid registration awaiting its payment is not shown (nor may its holder read the list).
    paid_tt = org.ticket_type(event["id"], name="Paid", capacity=5, price_amount=1000)
    dan = org.api.register(f"dan-{uuid.uuid4().hex[:6]}")
    pending = registered(client, event["id"], dan, ticket_type_id=paid_tt["id"])
    assert pending["status"] == "pending_payment"

    names = [u["user"]["display_name"] for u in (ann, bob, cyd)]
    assert _listed(client, event["id"], ann) == names  # oldest registration first
    body = _names(client, event["id"], bob).text
    for user in (ann, bob, cyd, dan):  # no e-mail, no user id anywhere in the answer
        assert user["email"] not in body and user["user"]["id"] not in body
    for reg in (ann_reg, bob_reg, cyd_reg):
        assert reg["id"] not in body
    error = assert_error(_names(client, event["id"], dan), 403, "not_registered")
    assert error["details"] == {"status": "pending_payment"}

    # Keyset pages, walked to the end.
    seen: list[int] = []
    walked = walk(client, f"/events/{event['id']}/participants", cyd, limit=2, between=seen.append)
    assert [i["display_name"] for i in walked] == names
    assert seen == [1]  # two pages
    for cursor in ("garbage!", "WzFd"):  # not base64url; [1], a position of another shape
        assert_error(_names(client, event["id"], cyd, cursor=cursor), 422, "invalid_cursor")

    # A participant opts out, and back in; only they decide.
    opted = _patch(client, bob_reg["id"], bob, listed=False)
    assert opted.status_code == 200, opted.text
    assert opted.json()["listed"] is False
    assert _listed(client, event["id"], ann) == [names[0], names[2]]
    assert _listed(client, event["id"], bob) == [names[0], names[2]]  # still reads it
    assert_error(_patch(client, bob_reg["id"], org.owner, listed=True), 403, "not_participant")
    assert_error(_patch(client, bob_reg["id"], ann, listed=True), 404, "not_found")
    assert _patch(client, bob_reg["id"], bob, listed=True).json()["listed"] is True
    assert _listed(client, event["id"], ann) == names

    # A cancelled registration leaves the list, and its holder can no longer read it.
    cancelled_registration(client, cyd_reg["id"], cyd)
    assert _listed(client, event["id"], ann) == names[:2]
    assert_error(_names(client, event["id"], cyd), 403, "not_registered")
    assert_error(_patch(client, cyd_reg["id"], cyd, listed=False), 409, "invalid_state")


def test_a_closed_list_is_refused_to_participants_not_to_organizers(
    client: TestClient, org: Organizer
) -> None:
    event, tt = org.published_event(capacity=5)  # participants_visibility defaults to closed
    assert event["participants_visibility"] == "closed"
    ann, ann_reg = _someone(org, event["id"], tt["id"], "ann")
    bob, _ = _someone(org, event["id"], tt["id"], "bob")
    assert_error(_names(client, event["id"], ann), 403, "participants_closed")
    _patch(client, ann_reg["id"], ann, listed=False)
    # Owners and moderators read it whatever the setting (what participants would see).
    moderator = org.member("moderator")
    for organizer in (org.owner, moderator):
        assert _listed(client, event["id"], organizer) == [bob["user"]["display_name"]]
    # Analysts are not shown names elsewhere either.
    assert_error(_names(client, event["id"], org.member("analyst")), 403, "participants_closed")
    # Opened while published (a safe field): now the participants see it.
    opened = client.put(
        f"{V1}/events/{event['id']}",
        json={"participants_visibility": "open"},
        headers=org.owner["headers"],
    )
    assert opened.status_code == 200, opened.text
    assert _listed(client, event["id"], ann) == [bob["user"]["display_name"]]


def test_outsiders_and_another_tenant(client: TestClient, org: Organizer, api) -> None:
    event, tt = org.published_event(capacity=5, participants_visibility="open")
    _someone(org, event["id"], tt["id"], "ann")
    stranger = api.register("stranger")
    assert_error(_names(client, event["id"], stranger), 403, "not_registered")
    assert_error(client.get(f"{V1}/events/{event['id']}/participants"), 401, "unauthorized")
    # A private event: whoever may not see it gets the same 404 as for no event at all.
    group, member = org.group_with_member()
    private, ptt = org.published_event(
        capacity=5, participants_visibility="open", visibility="private", group_id=group["id"]
    )
    other = org.another()
    for caller in (stranger, other.owner):
        assert_error(_names(client, private["id"], caller), 404, "not_found")
        assert_error(_names(client, str(uuid.uuid4()), caller), 404, "not_found")
    # The group's member sees the event but is not registered yet; then is.
    assert_error(_names(client, private["id"], member), 403, "not_registered")
    registered(client, private["id"], member, ticket_type_id=ptt["id"])
    assert _listed(client, private["id"], member) == [member["user"]["display_name"]]
    # Another tenant's owner, registered for nothing here, reads no public list either.
    assert_error(_names(client, event["id"], other.owner), 403, "not_registered")


def test_the_database_function_answers_nothing_beyond_its_rule(
    client: TestClient, org: Organizer, app_engine
) -> None:
    """event_participants() itself, as the application role with a user's context: the checks
    are the database's, not only the API's."""
    from sqlalchemy import text

    from domain.uow import UnitOfWork

    event, tt = org.published_event(capacity=5, participants_visibility="open")
    ann, _ = _someone(org, event["id"], tt["id"], "ann")
    stranger = org.api.register("stranger")
    sessions = client.app.state.aq.sessionmaker

    def names_as(user: dict) -> list[str]:
        with UnitOfWork(sessions, user_id=uuid.UUID(user["user"]["id"])) as uow:
            rows = uow.session.execute(
                text("SELECT display_name FROM event_participants(:e, NULL, 100)"),
                {"e": event["id"]},
            )
            return [r.display_name for r in rows]

    assert names_as(ann) == [ann["user"]["display_name"]]
    assert names_as(stranger) == []
