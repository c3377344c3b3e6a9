"""Shared by the media tests: the bucket's objects and the media rows, read past the API."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from core.settings import Settings


class Store:
    """The real S3 bucket and database behind the API, as the owner sees them."""

    def __init__(self, client, settings: Settings, owner_engine: Engine) -> None:
        self.s3 = client.app.state.aq.s3
        self.bucket = settings.s3_bucket
        self.engine = owner_engine

    def keys(self, prefix: str) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in answer.get("Contents", []))

    def tenant_keys(self, org_id: str) -> list[str]:
        return self.keys(f"tenants/{org_id}/")

    def media_rows(self, org_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT * FROM media WHERE tenant_id = :t ORDER BY id"), {"t": org_id}
            ).mappings()
            return [dict(r) for r in rows]

    def variant_rows(self, org_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT * FROM media_variants WHERE tenant_id = :t"), {"t": org_id}
            ).mappings()
            return [dict(r) for r in rows]

    def nothing_stored(self, org_id: str) -> bool:
        rows = self.media_rows(org_id) + self.variant_rows(org_id)
        return not self.tenant_keys(org_id) and not rows


@pytest.fixture(scope="module")
def store(client, settings: Settings, owner_engine: Engine) -> Store:
    return Store(client, settings, owner_engine)
