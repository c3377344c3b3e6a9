"""Organizers' public profiles: who organizes an event, for everyone.

Organizations are readable by their members only (row level security); their public face (name,
address name, description, logo) is read through the SECURITY DEFINER functions of migration
0019, which answer nothing else. A deleted organization has no profile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text

from domain.errors import NotFound
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class Profile:
    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    logo_media_id: uuid.UUID | None


def profiles(uow: UnitOfWork, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Profile]:
    """The profiles of ``ids`` (one query), by id; deleted organizations are left out."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = uow.session.execute(
        text(
            "SELECT id, name, slug, description, logo_media_id"
            " FROM organizer_profiles(CAST(:ids AS uuid[]))"
        ),
        {"ids": wanted},
    )
    return {row.id: Profile(*row) for row in rows}


def by_slug(uow: UnitOfWork, slug: str) -> Profile:
    found = uow.session.execute(text("SELECT organizer_by_slug(:s)"), {"s": slug}).scalar()
    profile = profiles(uow, [found]).get(found) if found else None
    if profile is None:
        raise NotFound("No organizer has this address")
    return profile


def logo_variant(uow: UnitOfWork, org_id: uuid.UUID, variant: str) -> tuple[str, str] | None:
    row = uow.session.execute(
        text("SELECT storage_key, content_type FROM organizer_logo_variant(:o, :v)"),
        {"o": org_id, "v": variant},
    ).first()
    return (row.storage_key, row.content_type) if row else None
