"""Cleanup: the S3 objects of deleted media, and of uploads nothing references once the grace
period is over, are removed; their rows stay, marked ``purged_at`` (history, and the foreign keys
of past references).

Candidates are found across tenants by a SECURITY DEFINER function that returns only ids; each
one is then re-checked and purged in its own tenant's transaction, under row level security,
locked with SKIP LOCKED (several job processes may run; a cover being set right now holds the
row FOR SHARE and is skipped). Objects are deleted before the row is marked: if S3 fails the
row stays unpurged and the next pass retries; deleting twice is harmless.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.logging import get_logger
from domain.media.models import Media, MediaVariant
from domain.media.service import is_referenced
from domain.media.storage import MediaStorage
from domain.uow import UnitOfWork

log = get_logger(__name__)
BATCH = 200


def _candidates(
    sessions: sessionmaker[Session], cutoff: datetime, limit: int
) -> dict[uuid.UUID, list[uuid.UUID]]:
    with sessions() as session:
        rows = session.execute(
            text("SELECT id, tenant_id FROM media_due_for_cleanup(:cutoff, :n)"),
            {"cutoff": cutoff, "n": limit},
        )
        by_tenant: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
        for media_id, tenant_id in rows:
            by_tenant[tenant_id].append(media_id)
        return by_tenant


def _purge_tenant(
    uow: UnitOfWork, storage: MediaStorage, ids: list[uuid.UUID], cutoff: datetime, now: datetime
) -> int:
    due = list(
        uow.session.scalars(
            select(Media)
            .where(
                Media.id.in_(ids),
                Media.purged_at.is_(None),
                or_(
                    Media.deleted_at.is_not(None),
                    (Media.created_at < cutoff) & ~is_referenced(Media.id),
                ),
            )
            .with_for_update(skip_locked=True, of=Media)
        )
    )
    if not due:
        return 0
    keys = list(
        uow.session.scalars(
            select(MediaVariant.storage_key).where(MediaVariant.media_id.in_([m.id for m in due]))
        )
    )
    storage.delete(keys)
    for media in due:
        media.deleted_at = media.deleted_at or now
        media.purged_at = now
    uow.session.flush()
    return len(due)


def cleanup_media(
    sessions: sessionmaker[Session],
    s3: Any,
    now: datetime | None = None,
    *,
    bucket: str,
    grace: timedelta,
    batch: int = BATCH,
) -> int:
    """One pass: purge up to ``batch`` media; answers how many were purged.

    ``s3`` is a boto3 S3 client; ``grace`` how long an unreferenced upload may wait to be
    referenced (``AQSTREAM_MEDIA_ORPHAN_GRACE_S``). A tenant whose objects cannot be deleted
    is logged and left for the next pass; the others go on."""
    now = now or datetime.now(UTC)
    cutoff = now - grace
    storage = MediaStorage(s3, bucket)
    purged = 0
    for tenant_id, ids in _candidates(sessions, cutoff, batch).items():
        try:
            with UnitOfWork(sessions, tenant_id=tenant_id) as uow:
                count = _purge_tenant(uow, storage, ids, cutoff, now)
                uow.commit()
        except Exception:
            log.exception("media_cleanup_failed", tenant_id=str(tenant_id))
            continue
        purged += count
    if purged:
        log.info("media_purged", count=purged)
    return purged
