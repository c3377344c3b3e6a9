"""The caller's own groups across organizations (a participant's "my groups")."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import UowDep
from api.errors import responses
from api.event.schemas import OrganizerOut
from api.pagination import Page, Paging, encode_cursor
from domain.group import mine
from domain.organization import profiles

router = APIRouter(tags=["groups"])


class MyGroupOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    joined_at: datetime
    organizer: OrganizerOut | None = Field(description="The organization's public profile")
    events_url: str = Field(description="The group's published private events")


@router.get("/users/me/groups", response_model=Page[MyGroupOut], responses=responses(401))
def my_groups(uow: UowDep, paging: Paging) -> Page[MyGroupOut]:
    """The groups the caller belongs to, in every organization, the latest joined first; each
    with the address of its private events (`GET /events?group_id=`)."""
    page = mine.my_groups(uow, uow.user_id, paging)
    found = profiles.profiles(uow, {m.group.tenant_id for m in page.items})
    items = [
        MyGroupOut(
            id=m.group.id,
            organization_id=m.group.tenant_id,
            name=m.group.name,
            description=m.group.description,
            joined_at=m.joined_at,
            organizer=OrganizerOut.of(found[m.group.tenant_id])
            if m.group.tenant_id in found
            else None,
            events_url=f"/api/v1/events?group_id={m.group.id}",
        )
        for m in page.items
    ]
    return Page[MyGroupOut](items=items, next_cursor=encode_cursor(page.after))
