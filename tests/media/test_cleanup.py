"""cleanup_media: the objects of deleted media, and of uploads nothing references after the
grace period, leave S3; their rows are marked purged. Runs against the real S3 server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.event.service import update_event
from domain.media.cleanup import cleanup_media
from domain.uow import UnitOfWork
from tests.factories import V1, Organizer, assert_error, image_bytes, uploaded_media

GRACE = timedelta(hours=24)


@pytest.fixture
def org(client, api, admin) -> Organizer:
    return Organizer(client, api, admin)


def _cleanup(client, settings, now=None, bucket=None) -> int:
    return cleanup_media(
        client.app.state.aq.sessionmaker,
        client.app.state.aq.s3,
        now,
        bucket=bucket or settings.s3_bucket,
        grace=GRACE,
    )


def _later() -> datetime:
    return datetime.now(UTC) + GRACE + timedelta(hours=1)


def _row(store, org: Organizer, media_id: str) -> dict:
    return next(r for r in store.media_rows(org.org["id"]) if str(r["id"]) == media_id)


def _objects(store, org: Organizer, media_id: str) -> list[str]:
    return store.keys(f"tenants/{org.org['id']}/media/{media_id}/")


def test_deleted_media_go_at_once_orphans_after_the_grace_period(client, settings, org, store):
    orphan = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    cover = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    logo = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    deleted = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    event = org.event(cover_media_id=cover["id"])
    client.put(
        f"{V1}/organizations/{org.org['id']}/logo",
        json={"media_id": logo["id"]},
        headers=org.owner["headers"],
    ).raise_for_status()
    client.delete(f"{V1}/media/{deleted['id']}", headers=org.owner["headers"]).raise_for_status()
    assert len(_objects(store, org, deleted["id"])) == 3

    assert _cleanup(client, settings) >= 1
    assert _objects(store, org, deleted["id"]) == []
    assert _row(store, org, deleted["id"])["purged_at"] is not None
    for kept in (orphan, cover, logo):  # within the grace period, referenced or not
        assert len(_objects(store, org, kept["id"])) == 3
        assert _row(store, org, kept["id"])["purged_at"] is None

    assert _cleanup(client, settings, _later()) >= 1
    assert _objects(store, org, orphan["id"]) == []
    purged = _row(store, org, orphan["id"])
    assert purged["purged_at"] is not None and purged["deleted_at"] is not None
    assert_error(
        client.get(f"{V1}/media/{orphan['id']}", headers=org.owner["headers"]), 404, "not_found"
    )
    for kept in (cover, logo):
        assert len(_objects(store, org, kept["id"])) == 3

    # Once the event shows another picture, the old cover is an orphan like any other.
    client.put(
        f"{V1}/events/{event['id']}", json={"cover_media_id": None}, headers=org.owner["headers"]
    ).raise_for_status()
    _cleanup(client, settings, _later())
    assert _objects(store, org, cover["id"]) == []
    assert len(_objects(store, org, logo["id"])) == 3
    assert _cleanup(client, settings, _later()) == 0  # nothing left to do: idempotent


def test_a_store_failure_leaves_the_rows_for_the_next_pass(client, settings, org, store):
    media = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    client.delete(f"{V1}/media/{media['id']}", headers=org.owner["headers"]).raise_for_status()
    assert _cleanup(client, settings, bucket="no-such-bucket-here") == 0
    assert _row(store, org, media["id"])["purged_at"] is None
    assert len(_objects(store, org, media["id"])) == 3
    assert _cleanup(client, settings) >= 1
    assert _row(store, org, media["id"])["purged_at"] is not None
    assert _objects(store, org, media["id"]) == []


def test_media_being_made_a_cover_right_now_is_not_purged(client, settings, org, store) -> None:
    media = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    event = org.event()
    sessions = client.app.state.aq.sessionmaker
    with UnitOfWork(sessions, tenant_id=org.org["id"]) as uow:
        update_event(uow, event["id"], {"cover_media_id": media["id"]})  # holds it FOR SHARE
        _cleanup(client, settings, _later())  # skips the locked row
        uow.commit()
    _cleanup(client, settings, _later())  # now it is referenced
    assert len(_objects(store, org, media["id"])) == 3
    assert _row(store, org, media["id"])["purged_at"] is None
