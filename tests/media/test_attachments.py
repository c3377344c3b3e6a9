"""Event attachments through the API against the real S3 server and PostgreSQL: documents an
event lists (programme, rules) for its readers to download, who may add and read them, and the
media cleanup sparing them while they are listed."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from domain.media import attachments as attachments_domain
from tests.factories import (
    V1,
    Organizer,
    assert_error,
    auth,
    image_bytes,
    outbox_rows,
    uploaded_media,
)
from tests.media.images import pdf_bytes
from tests.media.test_cleanup import _cleanup, _later, _objects, _row


@pytest.fixture
def org(client, api, admin) -> Organizer:
    return Organizer(client, api, admin)


def attach(client, event_id: str, user: dict | None, **body) -> httpx.Response:
    return client.post(f"{V1}/events/{event_id}/attachments", json=body, headers=auth(user))


def listed(client, event_id: str, user: dict | None) -> httpx.Response:
    return client.get(f"{V1}/events/{event_id}/attachments", headers=auth(user))


def download(client, event_id: str, attachment_id: str, user: dict | None) -> httpx.Response:
    return client.get(
        f"{V1}/events/{event_id}/attachments/{attachment_id}/download",
        headers=auth(user),
        follow_redirects=False,
    )


def document(client, org: Organizer, data: bytes, filename: str = "rules.pdf") -> dict:
    return uploaded_media(
        client, org.org["id"], org.owner, data, filename=filename, purpose="attachment"
    )


def test_an_event_lists_documents_its_readers_download(client, api, org, store) -> None:
    programme_bytes = pdf_bytes(30_000)
    programme = document(client, org, programme_bytes, filename="Программа 2027.pdf")
    plan = document(client, org, pdf_bytes(4096), filename="plan.pdf")
    event = org.event()
    org.ticket_type(event["id"])

    added = attach(client, event["id"], org.owner, media_id=programme["id"], title=" Programme ",
                   position=5)  # fmt: skip
    assert added.status_code == 201, added.text
    first = added.json()
    assert {
        k: first[k] for k in ("title", "position", "content_type", "size_bytes", "filename")
    } == {
        "title": "Programme",
        "position": 5,
        "content_type": "application/pdf",
        "size_bytes": 30_000,
        "filename": "Программа 2027.pdf",
    }
    assert (
        first["download_url"] == f"/api/v1/events/{event['id']}/attachments/{first['id']}/download"
    )
    second = attach(client, event["id"], org.owner, media_id=plan["id"], title="Venue map").json()
    [fact, _] = outbox_rows(store.engine, event["id"], "event.attachment.added")
    assert (
        fact["payload"]["title"] == "Programme" and fact["payload"]["media_id"] == programme["id"]
    )

    # In their order (position, then when added), for the organization while a draft ...
    assert [a["title"] for a in listed(client, event["id"], org.owner).json()["items"]] == [
        "Venue map",
        "Programme",
    ]
    assert listed(client, event["id"], org.member("analyst")).status_code == 200
    # ... and for nobody else.
    for outsider in (None, api.register("early-bird")):
        assert_error(listed(client, event["id"], outsider), 404, "not_found")
        assert_error(download(client, event["id"], first["id"], outsider), 404, "not_found")

    # Published and public: anyone reads the list and downloads the file as it was uploaded.
    org.publish(event["id"])
    public = listed(client, event["id"], None)
    assert public.status_code == 200, public.text
    assert public.json() == {"items": [second, first], "next_cursor": None}
    answer = download(client, event["id"], first["id"], None)
    assert answer.status_code == 307, answer.text
    got = httpx.get(answer.headers["location"], timeout=10)
    assert got.status_code == 200 and got.content == programme_bytes
    assert got.headers["content-type"] == "application/pdf"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('Программа 2027.pdf', safe='')}" in disposition
    missing = download(client, event["id"], programme["id"], None)  # a media id is not one
    assert_error(missing, 404, "not_found")


def test_a_private_events_documents_are_for_its_group(client, api, org) -> None:
    group, member = org.group_with_member()
    event = org.event(visibility="private", group_id=group["id"])
    org.ticket_type(event["id"])
    doc = document(client, org, pdf_bytes())
    attachment = attach(client, event["id"], org.owner, media_id=doc["id"], title="Rules").json()
    org.publish(event["id"])
    assert [a["id"] for a in listed(client, event["id"], member).json()["items"]] == [
        attachment["id"]
    ]
    assert download(client, event["id"], attachment["id"], member).status_code == 307
    for outsider in (None, api.register("not-in-group")):
        assert_error(listed(client, event["id"], outsider), 404, "not_found")
        assert_error(download(client, event["id"], attachment["id"], outsider), 404, "not_found")


def test_only_owners_and_moderators_attach_their_own_uploads(
    client, api, admin, org, store
) -> None:
    event = org.event()
    doc = document(client, org, pdf_bytes())
    assert_error(
        attach(client, event["id"], org.member("analyst"), media_id=doc["id"], title="x"),
        403,
        "insufficient_role",
    )
    assert_error(
        attach(client, event["id"], api.register("stranger"), media_id=doc["id"], title="x"),
        404,
        "not_found",
    )
    moderator = attach(client, event["id"], org.member("moderator"), media_id=doc["id"], title="A")
    assert moderator.status_code == 201, moderator.text

    # Another organization's upload, a cover, an image uploaded as an attachment (documents
    # only: an image keeps no original to download), a blank title, the same file twice.
    other = Organizer(client, api, admin)
    foreign = document(client, other, pdf_bytes())
    cover = uploaded_media(client, org.org["id"], org.owner, image_bytes("PNG"))
    picture = document(client, org, image_bytes("PNG"), filename="map.png")
    for media_id in (foreign["id"], cover["id"], picture["id"]):
        refused = attach(client, event["id"], org.owner, media_id=media_id, title="x")
        assert_error(refused, 422, "invalid_media")
    assert attach(client, event["id"], org.owner, media_id=doc["id"], title="  ").status_code == 422
    assert_error(
        attach(client, event["id"], org.owner, media_id=doc["id"], title="Again"),
        409,
        "attachment_exists",
    )
    assert len(listed(client, event["id"], org.owner).json()["items"]) == 1

    # Removing: owners and moderators; then it is gone for everyone.
    attachment_id = moderator.json()["id"]
    path = f"{V1}/events/{event['id']}/attachments/{attachment_id}"
    assert client.delete(path, headers=auth(org.member("analyst"))).status_code == 403
    assert client.delete(path, headers=auth(org.owner)).status_code == 204
    assert_error(client.delete(path, headers=auth(org.owner)), 404, "not_found")
    assert listed(client, event["id"], org.owner).json()["items"] == []
    [removed] = outbox_rows(store.engine, event["id"], "event.attachment.removed")
    assert removed["payload"]["media_id"] == doc["id"]


def test_an_event_lists_a_bounded_number_and_a_closed_one_none_more(
    client, org, monkeypatch
) -> None:
    monkeypatch.setattr(attachments_domain, "MAX_PER_EVENT", 2)
    event, _ = org.published_event()
    docs = [document(client, org, pdf_bytes(2048 + i)) for i in range(3)]
    for i in range(2):
        assert attach(
            client, event["id"], org.owner, media_id=docs[i]["id"], title=f"{i}"
        ).is_success
    refused = attach(client, event["id"], org.owner, media_id=docs[2]["id"], title="third")
    assert assert_error(refused, 409, "too_many_attachments")["details"] == {"limit": 2}

    org.moved(event["id"], "cancel")
    closed = attach(client, event["id"], org.owner, media_id=docs[2]["id"], title="late")
    assert_error(closed, 409, "invalid_state")


def test_the_cleanup_keeps_listed_documents_and_their_deletion_is_refused(
    client, settings, org, store
) -> None:
    event = org.event()
    doc = document(client, org, pdf_bytes())
    attachment = attach(client, event["id"], org.owner, media_id=doc["id"], title="Rules").json()

    _cleanup(client, settings, _later())
    assert _row(store, org, doc["id"])["purged_at"] is None
    assert _objects(store, org, doc["id"])
    deleted = client.delete(f"{V1}/media/{doc['id']}", headers=auth(org.owner))
    assert assert_error(deleted, 409, "media_in_use")["details"]["events"] == [event["id"]]

    path = f"{V1}/events/{event['id']}/attachments/{attachment['id']}"
    assert client.delete(path, headers=auth(org.owner)).status_code == 204
    _cleanup(client, settings, _later())
    assert _row(store, org, doc["id"])["purged_at"] is not None
    assert _objects(store, org, doc["id"]) == []
