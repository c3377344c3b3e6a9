"""The export's upload against the real S3 server: parts go out while the file is written, the
object is complete and exact, and a failed export leaves no parts behind."""

from __future__ import annotations

import os

import pytest

from warehouse.exports.upload import MultipartSink

MIB = 1 << 20


@pytest.fixture
def s3(client):
    return client.app.state.aq.s3, client.app.state.aq.settings.s3_bucket


def _pending(s3_client, bucket: str, key: str) -> list:
    uploads = s3_client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
    return [u for u in uploads if u["Key"] == key]


def test_a_large_file_goes_up_in_parts_while_it_is_written(s3) -> None:
    client, bucket = s3
    key = "tenants/test/exports/multipart/file.csv"
    data = os.urandom(12 * MIB + 12345)
    sink = MultipartSink(
        client, bucket, key, {"ContentType": "text/csv"}, part_bytes=5 * MIB, in_flight=2
    )
    for start in range(0, len(data), 777_777):  # odd-sized writes, as a COPY gives them
        sink.write(data[start : start + 777_777])
    assert _pending(client, bucket, key), "parts should be on their way before the end"
    assert sink.finish() == len(data)
    stored = client.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "text/csv"
    assert stored["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    assert not _pending(client, bucket, key)


def test_a_small_file_is_one_put(s3) -> None:
    client, bucket = s3
    key = "tenants/test/exports/small/file.csv"
    sink = MultipartSink(client, bucket, key, {"ContentType": "text/csv"})
    sink.write(b"a,b\n1,2\n")
    assert sink.finish() == 8
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"a,b\n1,2\n"
    assert not _pending(client, bucket, key)


def test_an_aborted_upload_leaves_nothing(s3) -> None:
    client, bucket = s3
    key = "tenants/test/exports/aborted/file.parquet"
    sink = MultipartSink(client, bucket, key, {}, part_bytes=5 * MIB)
    sink.write(os.urandom(11 * MIB))  # two parts sent
    sink.abort()
    assert not _pending(client, bucket, key)
    assert client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0
