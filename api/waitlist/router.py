"""Waitlists of sold-out ticket types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    Membership,
    UowDep,
    optional_membership,
    require_resource_role,
)
from api.errors import ApiError, responses
from api.pagination import Page, Paging
from domain.waitlist import service
from domain.waitlist.models import WaitlistStatus

router = APIRouter(tags=["waitlist"])


class WaitlistJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticket_type_id: uuid.UUID


class WaitlistEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    user_id: uuid.UUID
    priority: int
    status: WaitlistStatus
    reservation_id: uuid.UUID | None
    created_at: datetime


class WaitlistPosition(WaitlistEntryOut):
    position: int


class OrganizerWaitlistEntry(WaitlistEntryOut):
    position: int | None = Field(
        description="1-based place in its ticket type's queue while waiting; null otherwise"
    )
    offer_expires_at: datetime | None = Field(
        description="While offered: when the offered hold lapses and the seat passes on"
    )


EntryMember = Annotated[
    Membership | None, Depends(optional_membership("waitlist_entries", "entry_id"))
]
EventReader = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *READ_ROLES))
]


@router.post(
    "/events/{event_id}/waitlist",
    response_model=WaitlistPosition,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 404, 409),
)
def join(event_id: uuid.UUID, body: WaitlistJoin, uow: UowDep) -> WaitlistPosition:
    """Join the waitlist of a sold-out ticket type; a freed seat is offered as a timed hold."""
    entry, position = service.join(uow, event_id, body.ticket_type_id, user_id=uow.user_id)
    return WaitlistPosition(
        **WaitlistEntryOut.model_validate(entry).model_dump(), position=position
    )


@router.get(
    "/events/{event_id}/waitlist",
    response_model=Page[OrganizerWaitlistEntry],
    responses=responses(401, 403, 404),
)
def entries(
    event_id: uuid.UUID, member: EventReader, uow: UowDep, paging: Paging
) -> Page[OrganizerWaitlistEntry]:
    """The event's waitlist by ticket type, each in offer order (members), with each entry's
    place while waiting and its offer's deadline while offered."""
    page = service.list_for_event(uow, event_id, paging)
    standing = service.standings(uow, page.items)

    def out(entry) -> OrganizerWaitlistEntry:
        return OrganizerWaitlistEntry(
            **WaitlistEntryOut.model_validate(entry).model_dump(),
            position=standing[entry.id].position,
            offer_expires_at=standing[entry.id].offer_expires_at,
        )

    return Page[OrganizerWaitlistEntry].of(page, out)


@router.delete(
    "/waitlist/{entry_id}",
    response_model=WaitlistEntryOut,
    responses=responses(401, 403, 404, 409),
)
def leave(entry_id: uuid.UUID, member: EntryMember, uow: UowDep) -> WaitlistEntryOut:
    """Take an entry off a waitlist while it is still waiting: the participant's own, or any of
    the organization's (owners and moderators; an analyst's is a 403). The entry is cancelled
    and ``waitlist.left`` published. An entry already offered a seat is a 409 — its hold then
    lapses or is cancelled instead."""
    entry = service.get_entry(uow, entry_id) if member is not None else None
    organizer = member is not None and member.role in MANAGE_ROLES
    if entry is not None and entry.user_id != uow.user_id and not organizer:
        raise ApiError(403, "insufficient_role", "Owners and moderators remove waitlist entries")
    return WaitlistEntryOut.model_validate(
        service.leave(uow, entry_id, uow.user_id, organizer=organizer)
    )
