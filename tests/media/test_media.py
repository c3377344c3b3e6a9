"""Uploads through the API against the real S3 server: round trips, limits, spoofed types,
decompression bombs, metadata stripping, permissions, deletion."""

from __future__ import annotations

import hashlib
from datetime import datetime

import httpx
import pytest

from domain.media.storage import MediaStorage
from tests.factories import (
    V1,
    Organizer,
    assert_error,
    image_bytes,
    outbox_rows,
    upload_media,
    uploaded_media,
)
from tests.media.images import (
    BLUE,
    RED,
    animated_gif,
    colour_at,
    has_gps,
    jpeg_with_gps,
    near,
    opened,
    pdf_bytes,
    png_declaring,
)

MiB = 1024 * 1024


@pytest.fixture
def org(client, api, admin) -> Organizer:
    return Organizer(client, api, admin)


def _url(client, media_id: str, user: dict, variant: str | None = None) -> httpx.Response:
    params = {"variant": variant} if variant else None
    return client.get(f"{V1}/media/{media_id}/url", params=params, headers=user["headers"])


def _fetch(client, media_id: str, user: dict, variant: str | None = None) -> tuple[dict, bytes]:
    """The presigned URL of a variant, fetched from S3 like a browser would."""
    answer = _url(client, media_id, user, variant)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    got = httpx.get(answer.json()["url"], timeout=10)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == answer.json()["content_type"]
    return answer.json(), got.content


# --- round trips ----------------------------------------------------------------------------------


def test_image_round_trip_upload_metadata_signed_url_variants(client, org, store) -> None:
    data = image_bytes("PNG", (1200, 800))
    media = uploaded_media(client, org.org["id"], org.owner, data, filename="poster.png")
    assert media["organization_id"] == org.org["id"]
    assert (media["content_type"], media["width"], media["height"]) == ("image/png", 1200, 800)
    assert media["size_bytes"] == len(data)
    assert media["sha256"] == hashlib.sha256(data).hexdigest()
    assert media["filename"] == "poster.png"
    sizes = {v["name"]: (v["width"], v["height"]) for v in media["variants"]}
    # thumbnail: square crop; card: 16:9 crop; cover: whole picture, never upscaled
    assert sizes == {"thumbnail": (256, 256), "card": (800, 450), "cover": (1200, 800)}

    metadata = client.get(f"{V1}/media/{media['id']}", headers=org.owner["headers"])
    assert metadata.status_code == 200, metadata.text
    assert metadata.json() == media

    for variant in media["variants"]:
        url, body = _fetch(client, media["id"], org.owner, variant["name"])
        assert url["variant"] == variant["name"]
        picture = opened(body)
        assert picture.format == "WEBP"
        assert picture.size == (variant["width"], variant["height"])
        assert len(body) == variant["size_bytes"]
        assert near(colour_at(picture, (picture.width // 2, picture.height // 2)), (200, 40, 40))

    default, _ = _fetch(client, media["id"], org.owner)
    assert default["variant"] == "cover"
    expires = datetime.fromisoformat(default["expires_at"])
    assert 0 < (expires - datetime.now(expires.tzinfo)).total_seconds() <= 300

    prefix = f"tenants/{org.org['id']}/media/{media['id']}/"
    assert store.keys(prefix) == [f"{prefix}{n}.webp" for n in ("card", "cover", "thumbnail")]

    [event] = outbox_rows(store.engine, media["id"], "media.uploaded")
    assert event["aggregate_type"] == "media"
    assert str(event["tenant_id"]) == org.org["id"]
    assert event["payload"]["content_type"] == "image/png"
    assert sorted(event["payload"]["variants"]) == ["card", "cover", "thumbnail"]


def test_small_images_are_not_upscaled(client, org) -> None:
    media = uploaded_media(client, org.org["id"], org.owner, image_bytes("JPEG", (120, 90)))
    sizes = {v["name"]: (v["width"], v["height"]) for v in media["variants"]}
    assert sizes == {"thumbnail": (90, 90), "card": (120, 68), "cover": (120, 90)}
    _, body = _fetch(client, media["id"], org.owner, "card")
    assert opened(body).size == (120, 68)


def test_pdf_round_trip_keeps_the_bytes(client, org, store) -> None:
    data = pdf_bytes(50_000)
    media = uploaded_media(
        client,
        org.org["id"],
        org.owner,
        data,
        filename="../../etc/agenda.pdf",
        purpose="attachment",
    )
    assert media["content_type"] == "application/pdf"
    assert media["filename"] == "agenda.pdf"  # no path survives
    assert [v["name"] for v in media["variants"]] == ["original"]
    url, body = _fetch(client, media["id"], org.owner)
    assert url["variant"] == "original" and body == data
    missing = _url(client, media["id"], org.owner, "thumbnail")
    assert_error(missing, 404, "variant_not_found")
    assert store.keys(f"tenants/{org.org['id']}/media/{media['id']}/")[0].endswith("original.pdf")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_every_accepted_image_format(client, org, fmt) -> None:
    media = uploaded_media(client, org.org["id"], org.owner, image_bytes(fmt, (300, 300)))
    assert media["content_type"] == f"image/{fmt.lower()}"
    assert {v["name"] for v in media["variants"]} == {"thumbnail", "card", "cover"}


# --- what is refused, before anything is stored ----------------------------------------------------


def test_an_image_over_5_mb_is_refused_with_413_and_nothing_stored(client, org, store) -> None:
    data = image_bytes("PNG", (10, 10)) + b"\x00" * (5 * MiB)
    answer = upload_media(client, org.org["id"], org.owner, data, filename="big.png")
    error = assert_error(answer, 413, "file_too_large")
    assert error["details"] == {"limit_bytes": 5 * MiB, "content_type": "image/png"}
    assert store.nothing_stored(org.org["id"])


def test_a_pdf_may_be_up_to_10_mb_but_not_more(client, org, store) -> None:
    six = uploaded_media(client, org.org["id"], org.owner, pdf_bytes(6 * MiB), purpose="attachment")
    assert six["size_bytes"] == 6 * MiB
    before = (store.tenant_keys(org.org["id"]), store.media_rows(org.org["id"]))
    answer = upload_media(client, org.org["id"], org.owner, pdf_bytes(10 * MiB + 1))
    error = assert_error(answer, 413, "file_too_large")
    assert error["details"]["limit_bytes"] == 10 * MiB
    assert (store.tenant_keys(org.org["id"]), store.media_rows(org.org["id"])) == before


def test_a_png_named_pdf_and_declared_pdf_is_stored_as_the_png_it_is(client, org) -> None:
    media = uploaded_media(
        client,
        org.org["id"],
        org.owner,
        image_bytes("PNG", (64, 64)),
        filename="report.pdf",
        content_type="application/pdf",
    )
    assert media["content_type"] == "image/png"
    assert {v["name"] for v in media["variants"]} == {"thumbnail", "card", "cover"}


@pytest.mark.parametrize(
    ("data", "filename", "declared"),
    [
        (b"just some text, honestly a PNG\n" * 10, "photo.png", "image/png"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "logo.png", "image/png"),
        (b"<html><script>alert(1)</script></html>", "cover.jpg", "image/jpeg"),
        (b"PK\x03\x04" + b"\x00" * 200, "slides.pdf", "application/pdf"),
        (image_bytes("BMP", (20, 20)), "photo.png", "image/png"),
        (image_bytes("TIFF", (20, 20)), "photo.jpg", "image/jpeg"),
    ],
    ids=["text", "svg", "html", "zip", "bmp", "tiff"],
)
def test_content_that_is_not_an_accepted_type_is_refused_with_415(
    client, org, store, data, filename, declared
) -> None:
    answer = upload_media(
        client, org.org["id"], org.owner, data, filename=filename, content_type=declared
    )
    error = assert_error(answer, 415, "unsupported_file_type")
    assert "image/png" in error["details"]["allowed"]
    assert store.nothing_stored(org.org["id"])


def test_a_png_signature_over_garbage_is_refused_as_an_invalid_image(client, org, store) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"not really a png" * 50
    answer = upload_media(client, org.org["id"], org.owner, data, filename="x.png")
    assert_error(answer, 415, "invalid_image")
    assert store.nothing_stored(org.org["id"])


@pytest.mark.parametrize(
    ("width", "height"),
    [(30_000, 30_000), (7_000, 7_000)],
    ids=["beyond-pillow-error", "between-warning-and-error"],
)
def test_a_decompression_bomb_is_refused_before_decoding(client, org, store, width, height):
    data = png_declaring(width, height)
    assert len(data) < 2048  # a tiny file that claims 49 or 900 megapixels
    answer = upload_media(client, org.org["id"], org.owner, data, filename="bomb.png")
    error = assert_error(answer, 413, "image_too_large")
    assert error["details"]["max_pixels"] == 40_000_000
    assert store.nothing_stored(org.org["id"])


def test_an_empty_file_and_missing_or_unknown_fields_are_422(client, org, store) -> None:
    empty = upload_media(client, org.org["id"], org.owner, b"")
    assert empty.status_code == 422 and empty.json()["error"]["details"][0]["type"] == "empty_file"
    no_file = client.post(
        f"{V1}/media/upload",
        data={"organization_id": org.org["id"], "purpose": "event_cover"},
        files={"other": ("x", b"y")},
        headers=org.owner["headers"],
    )
    assert_error(no_file, 422, "validation_error")
    bad_purpose = upload_media(client, org.org["id"], org.owner, image_bytes(), purpose="wallpaper")
    assert_error(bad_purpose, 422, "validation_error")
    assert bad_purpose.json()["error"]["details"][0]["loc"] == ["body", "purpose"]
    not_multipart = client.post(
        f"{V1}/media/upload", json={"organization_id": org.org["id"]}, headers=org.owner["headers"]
    )
    assert_error(not_multipart, 415, "multipart_required")
    assert store.nothing_stored(org.org["id"])


def test_animated_gif_keeps_its_first_frame(client, org) -> None:
    media = uploaded_media(client, org.org["id"], org.owner, animated_gif())
    assert media["content_type"] == "image/gif"
    _, body = _fetch(client, media["id"], org.owner, "cover")
    picture = opened(body)
    assert getattr(picture, "n_frames", 1) == 1
    assert near(colour_at(picture, (10, 10)), RED)


# --- metadata: orientation applied, EXIF and GPS gone --------------------------------------------


def test_exif_orientation_is_applied_and_gps_is_stripped(client, org) -> None:
    data = jpeg_with_gps((400, 200), orientation=6)
    assert has_gps(data)  # the upload really carries a location
    media = uploaded_media(client, org.org["id"], org.owner, data, filename="IMG_0001.jpg")
    assert (media["width"], media["height"]) == (200, 400)  # as shown: turned upright
    for name in ("thumbnail", "card", "cover"):
        _, body = _fetch(client, media["id"], org.owner, name)
        picture = opened(body)
        assert not picture.getexif(), name
        assert not {"exif", "xmp", "icc_profile"} & set(picture.info), picture.info.keys()
        assert b"SpyCam" not in body and b"Exif" not in body
    _, cover = _fetch(client, media["id"], org.owner, "cover")
    picture = opened(cover)
    assert picture.size == (200, 400)
    # Turned 90° clockwise, the red left half is now on top, the blue right half below.
    assert near(colour_at(picture, (100, 50)), RED)
    assert near(colour_at(picture, (100, 350)), BLUE)


# --- who may do what ---------------------------------------------------------------------------------


def test_members_read_only_owners_and_moderators_upload_and_delete(client, api, org) -> None:
    analyst, moderator = org.member("analyst"), org.member("moderator")
    refused = upload_media(client, org.org["id"], analyst, image_bytes())
    assert_error(refused, 403, "insufficient_role")
    media = uploaded_media(client, org.org["id"], moderator, image_bytes())
    assert client.get(f"{V1}/media/{media['id']}", headers=analyst["headers"]).status_code == 200
    _fetch(client, media["id"], analyst, "thumbnail")
    delete = client.delete(f"{V1}/media/{media['id']}", headers=analyst["headers"])
    assert_error(delete, 403, "insufficient_role")
    assert upload_media(client, org.org["id"], None, image_bytes()).status_code == 401
    outsider = api.register("outsider")
    assert_error(upload_media(client, org.org["id"], outsider, image_bytes()), 404, "not_found")
    # Whether one may upload there is answered before anything is said about the file.
    text_file = b"not an image at all" * 100
    assert_error(upload_media(client, org.org["id"], outsider, text_file), 404, "not_found")
    assert_error(upload_media(client, org.org["id"], analyst, text_file), 403, "insufficient_role")


def test_another_tenants_media_answers_404(client, org, store) -> None:
    media = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    other = org.another()
    for method, path in (
        ("GET", f"{V1}/media/{media['id']}"),
        ("GET", f"{V1}/media/{media['id']}/url"),
        ("DELETE", f"{V1}/media/{media['id']}"),
    ):
        answer = client.request(method, path, headers=other.owner["headers"])
        assert_error(answer, 404, "not_found")
    # Uploading into an organization one does not belong to is a 404 as well.
    refused = upload_media(client, org.org["id"], other.owner, image_bytes())
    assert_error(refused, 404, "not_found")
    assert len(store.media_rows(org.org["id"])) == 1


def test_deleted_media_answers_404_and_keeps_its_objects_until_cleanup(client, org, store):
    media = uploaded_media(client, org.org["id"], org.owner, image_bytes())
    deleted = client.delete(f"{V1}/media/{media['id']}", headers=org.owner["headers"])
    assert deleted.status_code == 204, deleted.text
    for path in (f"{V1}/media/{media['id']}", f"{V1}/media/{media['id']}/url"):
        assert_error(client.get(path, headers=org.owner["headers"]), 404, "not_found")
    again = client.delete(f"{V1}/media/{media['id']}", headers=org.owner["headers"])
    assert_error(again, 404, "not_found")
    assert len(store.keys(f"tenants/{org.org['id']}/media/{media['id']}/")) == 3
    [event] = outbox_rows(store.engine, media["id"], "media.deleted")
    assert event["payload"]["deleted_by"] == org.owner["user"]["id"]


def test_a_store_failure_answers_503_and_leaves_no_row(client, org, store) -> None:
    app_state = client.app.state
    # The app's store, with a bucket the S3 server does not have: every write is refused.
    app_state.media_storage = MediaStorage(app_state.aq.s3, "no-such-bucket-here")
    try:
        answer = upload_media(client, org.org["id"], org.owner, image_bytes())
    finally:
        del app_state.media_storage  # made again, as configured, on the next request
    assert_error(answer, 503, "storage_unavailable")
    assert answer.headers["retry-after"] == "1"
    assert store.nothing_stored(org.org["id"])
