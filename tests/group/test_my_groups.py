"""A participant's groups and the private events they open: "my groups" across organizations and
the published private events of those groups in the events list, nobody else's."""

from __future__ import annotations

import pytest

from tests.factories import V1, Organizer, assert_error, auth, items_of


@pytest.fixture
def two(client, api, admin) -> tuple[Organizer, Organizer]:
    return Organizer(client, api, admin), Organizer(client, api, admin)


def join(client, owner: dict, group_id: str, user: dict) -> None:
    invite = client.post(f"{V1}/groups/{group_id}/invite", headers=auth(owner))
    assert invite.status_code == 201, invite.text
    joined = client.post(
        f"{V1}/group-invites/accept", json={"code": invite.json()["code"]}, headers=auth(user)
    )
    assert joined.status_code == 200, joined.text


def private_event(org: Organizer, group_id: str, title: str, publish: bool = True) -> dict:
    event = org.event(title=title, visibility="private", group_id=group_id)
    org.ticket_type(event["id"])
    return org.publish(event["id"]) if publish else event


def titles(client, user: dict | None, **params) -> list[str]:
    response = client.get(f"{V1}/events", params=params, headers=auth(user))
    return sorted(e["title"] for e in items_of(response))


def test_my_groups_and_their_private_events(client, api, two) -> None:
    first, second = two
    reader = api.register("reader")
    g1, _ = first.group_with_member()
    g2, _ = second.group_with_member()
    g3, _ = first.group_with_member()  # a group the reader is not in
    join(client, first.owner, g1["id"], reader)
    join(client, second.owner, g2["id"], reader)

    groups = client.get(f"{V1}/users/me/groups", headers=auth(reader))
    assert groups.status_code == 200, groups.text
    listed = groups.json()["items"]
    assert [g["id"] for g in listed] == [g2["id"], g1["id"]]  # the latest joined first
    assert listed[1]["organizer"]["slug"] == first.org["slug"]
    assert listed[1]["organization_id"] == first.org["id"]
    assert listed[1]["events_url"] == f"/api/v1/events?group_id={g1['id']}"
    paged = client.get(f"{V1}/users/me/groups", params={"limit": 1}, headers=auth(reader))
    assert [g["id"] for g in paged.json()["items"]] == [g2["id"]]
    assert paged.json()["next_cursor"]
    assert_error(client.get(f"{V1}/users/me/groups"), 401, "unauthorized")

    first.published_event(title="Open to all")
    private_event(first, g1["id"], "Book club")
    private_event(first, g1["id"], "Book club draft", publish=False)
    private_event(second, g2["id"], "Chess night")
    private_event(first, g3["id"], "Not for the reader")

    assert "Book club" not in titles(client, reader)  # the default: public events only
    assert titles(client, reader, visibility="private") == ["Book club", "Chess night"]
    # Both kinds (of one organization: the list holds every organization's public events).
    everything = titles(client, reader, visibility="all", organization_id=first.org["id"])
    assert everything == ["Book club", "Open to all"]
    assert titles(client, reader, visibility="all", organization_id=second.org["id"]) == [
        "Chess night"
    ]
    assert titles(client, reader, group_id=g1["id"]) == ["Book club"]
    assert titles(client, reader, group_id=g3["id"]) == []  # not the reader's group
    first_group = client.get(listed[1]["events_url"].replace("/api/v1", V1), headers=auth(reader))
    assert [e["title"] for e in items_of(first_group)] == ["Book club"]

    stranger = api.register("stranger")
    assert titles(client, stranger, visibility="private") == []
    assert client.get(f"{V1}/users/me/groups", headers=auth(stranger)).json()["items"] == []
    for params in ({"visibility": "private"}, {"visibility": "all"}, {"group_id": g1["id"]}):
        assert_error(client.get(f"{V1}/events", params=params), 401, "unauthorized")
    assert_error(
        client.get(f"{V1}/events", params={"visibility": "secret"}), 422, "validation_error"
    )
