"""Who organizes this: an organization's public profile on public event reads and on its own page,
for anyone, and nothing more than the profile."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import V1, Organizer, assert_error, auth, image_bytes, uploaded_media

PROFILE_KEYS = {"id", "name", "slug", "description", "logo_url", "page_url", "events_url"}


@pytest.fixture
def org(client, api, admin) -> Organizer:
    return Organizer(client, api, admin)


def test_public_event_reads_name_their_organizer(client, api, org) -> None:
    event, _ = org.published_event()
    slug = org.org["slug"]
    expected = {
        "id": org.org["id"],
        "name": org.org["name"],
        "slug": slug,
        "description": org.org["description"],
        "logo_url": None,
        "page_url": f"/api/v1/organizers/{slug}",
        "events_url": f"/api/v1/events?organization_id={org.org['id']}",
    }
    for reader in (None, api.register("reader")):
        shown = client.get(f"{V1}/events/{event['id']}", headers=auth(reader))
        assert shown.status_code == 200, shown.text
        assert shown.json()["organizer"] == expected
        listed = client.get(
            f"{V1}/events", params={"organization_id": org.org["id"]}, headers=auth(reader)
        ).json()["items"]
        assert [(e["id"], e["organizer"]) for e in listed] == [(event["id"], expected)]
    # The organizers' own reads carry it too.
    mine = client.get(f"{V1}/organizations/{org.org['id']}/events", headers=auth(org.owner))
    assert {e["organizer"]["slug"] for e in mine.json()["items"]} == {slug}


def test_the_organizers_page_is_public_and_only_the_profile(client, api, org) -> None:
    slug = org.org["slug"]
    page = client.get(f"{V1}/organizers/{slug}")
    assert page.status_code == 200, page.text
    assert set(page.json()) == PROFILE_KEYS
    assert (page.json()["id"], page.json()["name"]) == (org.org["id"], org.org["name"])
    assert_error(client.get(f"{V1}/organizers/no-such-organizer"), 404, "not_found")

    # Its events link lists what anyone may see: published public events, not drafts or a
    # group's private ones.
    org.published_event(title="Open day")
    org.event(title="Still a draft")
    group, _member = org.group_with_member()
    private = org.event(title="Members only", visibility="private", group_id=group["id"])
    org.ticket_type(private["id"])
    org.publish(private["id"])
    events = client.get(V1 + page.json()["events_url"].removeprefix("/api/v1"))
    assert [e["title"] for e in events.json()["items"]] == ["Open day"]


def test_a_logo_is_public_through_the_organizers_page(client, org) -> None:
    slug = org.org["slug"]
    assert_error(client.get(f"{V1}/organizers/{slug}/logo"), 404, "not_found")
    logo = uploaded_media(
        client, org.org["id"], org.owner, image_bytes("PNG"), purpose="organization_logo"
    )
    path = f"{V1}/organizations/{org.org['id']}/logo"
    assert client.put(path, json={"media_id": logo["id"]}, headers=auth(org.owner)).is_success
    profile = client.get(f"{V1}/organizers/{slug}").json()
    assert profile["logo_url"] == f"/api/v1/organizers/{slug}/logo"

    answer = client.get(f"{V1}/organizers/{slug}/logo", params={"variant": "card"},
                        follow_redirects=False)  # fmt: skip
    assert answer.status_code == 307, answer.text
    image = httpx.get(answer.headers["location"], timeout=10)
    assert image.status_code == 200 and image.headers["content-type"] == "image/webp"

    # The members' own logo address stays theirs (organizations are members-only).
    assert client.get(path, follow_redirects=False).status_code in (401, 404)

    assert client.put(path, json={"media_id": None}, headers=auth(org.owner)).is_success
    assert client.get(f"{V1}/organizers/{slug}").json()["logo_url"] is None
    assert_error(client.get(f"{V1}/organizers/{slug}/logo"), 404, "not_found")
