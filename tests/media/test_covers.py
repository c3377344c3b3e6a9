"""Event covers and organization logos point at uploaded images of their own tenant."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.factories import V1, Organizer, assert_error, image_bytes, uploaded_media
from tests.media.images import opened, pdf_bytes


@pytest.fixture
def org(client, api, admin) -> Organizer:
    return Organizer(client, api, admin)


def _put_event(client, org: Organizer, event_id: str, **body) -> httpx.Response:
    return client.put(f"{V1}/events/{event_id}", json=body, headers=org.owner["headers"])


def _follow(client, url: str, user: dict | None = None) -> tuple[httpx.Response, bytes]:
    """The API's redirect, then the object it points at, fetched from S3."""
    redirect = client.get(url, headers=user["headers"] if user else None, follow_redirects=False)
    assert redirect.status_code == 307, redirect.text
    assert redirect.headers["cache-control"].startswith("private, max-age=")
    got = httpx.get(redirect.headers["location"], timeout=10)
    assert got.status_code == 200, got.text
    return redirect, got.content


def test_an_event_cover_is_set_shown_and_served_to_whoever_sees_the_event(client, org) -> None:
    image = uploaded_media(client, org.org["id"], org.owner, image_bytes("PNG", (1600, 900)))
    event = org.event()
    updated = _put_event(client, org, event["id"], cover_media_id=image["id"])
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["cover_media_id"] == image["id"]
    assert body["cover_url"] == f"{V1}/events/{event['id']}/cover"
    shown = client.get(f"{V1}/events/{event['id']}", headers=org.owner["headers"]).json()
    assert shown["cover_media_id"] == image["id"]

    _, card = _follow(client, body["cover_url"], org.owner)
    assert opened(card).size == (800, 450)  # the default variant: card
    _, thumb = _follow(client, f"{body['cover_url']}?variant=thumbnail", org.owner)
    assert opened(thumb).size == (256, 256)

    # A draft is nobody else's business; once published, anonymous visitors get the cover.
    assert_error(client.get(body["cover_url"], follow_redirects=False), 404, "not_found")
    org.ticket_type(event["id"])
    org.publish(event["id"])
    _, public = _follow(client, f"{body['cover_url']}?variant=cover")
    assert opened(public).size == (1600, 900)
    listed = client.get(f"{V1}/events", params={"organization_id": org.org["id"]}).json()
    assert listed["items"][0]["cover_url"] == body["cover_url"]


def test_a_cover_can_be_given_at_creation_and_changed_once_published(client, org) -> None:
    first = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    second = uploaded_media(client, org.org["id"], org.owner, image_bytes("JPEG"))
    event = org.event(publish=True, cover_media_id=first["id"])
    assert event["cover_media_id"] == first["id"]
    changed = _put_event(client, org, event["id"], cover_media_id=second["id"])
    assert changed.status_code == 200, changed.text
    assert changed.json()["cover_media_id"] == second["id"]
    removed = _put_event(client, org, event["id"], cover_media_id=None)
    assert removed.json()["cover_media_id"] is None and removed.json()["cover_url"] is None
    assert_error(client.get(f"{V1}/events/{event['id']}/cover"), 404, "not_found")


def test_a_cover_must_be_a_live_image_of_the_same_organization(client, org) -> None:
    event = org.event()
    other = org.another()
    foreign = uploaded_media(client, other.org["id"], other.owner, image_bytes())
    pdf = uploaded_media(client, org.org["id"], org.owner, pdf_bytes(), purpose="attachment")
    gone = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    assert (
        client.delete(f"{V1}/media/{gone['id']}", headers=org.owner["headers"]).status_code == 204
    )
    for media_id in (foreign["id"], pdf["id"], gone["id"], "0190c6b2-0000-7000-8000-000000000000"):
        refused = _put_event(client, org, event["id"], cover_media_id=media_id)
        assert_error(refused, 422, "invalid_media")
    created = org.create_event(cover_media_id=foreign["id"])
    assert_error(created, 422, "invalid_media")


def test_the_database_refuses_a_cover_of_another_tenant(client, org, owner_engine) -> None:
    """The composite foreign key holds even for code that skips the service's check."""
    event = org.event()
    other = org.another()
    foreign = uploaded_media(client, other.org["id"], other.owner, image_bytes())
    with (
        pytest.raises(IntegrityError, match="fk_events_tenant_id_cover_media_id_media"),
        owner_engine.begin() as conn,
    ):
        conn.execute(
            text("UPDATE events SET cover_media_id = :m WHERE id = :e"),
            {"m": foreign["id"], "e": event["id"]},
        )


def test_media_in_use_cannot_be_deleted(client, org) -> None:
    image = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    event = org.event(cover_media_id=image["id"])
    refused = client.delete(f"{V1}/media/{image['id']}", headers=org.owner["headers"])
    error = assert_error(refused, 409, "media_in_use")
    assert error["details"] == {"events": [event["id"]], "organizations": []}
    assert _put_event(client, org, event["id"], cover_media_id=None).status_code == 200
    assert (
        client.delete(f"{V1}/media/{image['id']}", headers=org.owner["headers"]).status_code == 204
    )


def test_an_organization_logo(client, org) -> None:
    analyst = org.member("analyst")
    logo = uploaded_media(
        client,
        org.org["id"],
        org.owner,
        image_bytes("PNG", (500, 500)),
        purpose="organization_logo",
    )
    path = f"{V1}/organizations/{org.org['id']}/logo"
    assert_error(client.get(path, headers=org.owner["headers"]), 404, "not_found")
    refused = client.put(path, json={"media_id": logo["id"]}, headers=analyst["headers"])
    assert_error(refused, 403, "insufficient_role")
    updated = client.put(path, json={"media_id": logo["id"]}, headers=org.owner["headers"])
    assert updated.status_code == 200, updated.text
    assert updated.json()["logo_media_id"] == logo["id"]
    assert updated.json()["logo_url"] == path
    shown = client.get(f"{V1}/organizations/{org.org['id']}", headers=analyst["headers"]).json()
    assert shown["logo_media_id"] == logo["id"]
    mine = client.get(f"{V1}/organizations", headers=org.owner["headers"]).json()["items"]
    assert mine[0]["logo_url"] == path

    _, thumb = _follow(client, path, analyst)
    assert opened(thumb).size == (256, 256)
    error = assert_error(
        client.delete(f"{V1}/media/{logo['id']}", headers=org.owner["headers"]), 409, "media_in_use"
    )
    assert error["details"]["organizations"] == [org.org["id"]]

    other = org.another()
    foreign = uploaded_media(client, other.org["id"], other.owner, image_bytes())
    refused = client.put(path, json={"media_id": foreign["id"]}, headers=org.owner["headers"])
    assert_error(refused, 422, "invalid_media")
    cleared = client.put(path, json={"media_id": None}, headers=org.owner["headers"])
    assert cleared.json()["logo_url"] is None
    assert_error(client.get(path, headers=org.owner["headers"]), 404, "not_found")
    # Outsiders learn nothing about the logo.
    assert_error(client.get(path, headers=other.owner["headers"]), 404, "not_found")
