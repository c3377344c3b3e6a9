"""The media objects in S3: one key layout, writes, deletes and presigned URLs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from core.logging import get_logger
from domain.media.errors import StorageUnavailable

log = get_logger(__name__)
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


def object_key(tenant_id: uuid.UUID, media_id: uuid.UUID, variant: str, ext: str) -> str:
    """``tenants/<tenant_id>/media/<media id>/<variant>.<ext>``: a tenant's objects share a
    prefix (per-tenant listing, lifecycle rules, export, erasure)."""
    return f"tenants/{tenant_id}/media/{media_id}/{variant}.{ext}"


@dataclass(frozen=True)
class MediaStorage:
    client: Any  # boto3 S3 client
    bucket: str
    # Presigned URLs are signed for the endpoint clients reach (it may differ from the one the
    # API uses inside the network); signing makes no request.
    signer: Any | None = None

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl="private, max-age=86400, immutable",
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(
                "The file store is unavailable; retry shortly",
                details={"error": type(exc).__name__},
            ) from exc

    def delete(self, keys: list[str]) -> None:
        """Delete ``keys`` (missing ones are fine); raises StorageUnavailable if any remains."""
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as exc:
                raise StorageUnavailable(
                    "The file store is unavailable", details={"error": type(exc).__name__}
                ) from exc
            if answer.get("Errors"):
                raise StorageUnavailable(
                    "The file store did not delete every object",
                    details={"errors": [e.get("Code") for e in answer["Errors"]]},
                )

    def delete_quietly(self, keys: list[str]) -> None:
        """Best effort, for undoing a half-done upload: a failure is logged, not raised."""
        try:
            self.delete(keys)
        except StorageUnavailable:
            log.warning("media_objects_left_behind", keys=keys)

    def presign(self, key: str, ttl_s: int, download_as: str | None = None) -> str:
        """A GET URL of ``key`` for ``ttl_s`` seconds; with ``download_as``, the store answers it
        as a download of that file name (``Content-Disposition: attachment``, RFC 6266)."""
        params = {"Bucket": self.bucket, "Key": key}
        if download_as is not None:
            params["ResponseContentDisposition"] = content_disposition(download_as)
        return (self.signer or self.client).generate_presigned_url(
            "get_object", Params=params, ExpiresIn=ttl_s
        )


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact one in RFC 5987 encoding."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename) or "download"  # fmt: skip
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
