"""Waitlists of sold-out ticket types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict

from api.deps import READ_ROLES, Membership, UowDep, require_resource_role
from api.errors import responses
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
    response_model=Page[WaitlistEntryOut],
    responses=responses(401, 403, 404),
)
def entries(
    event_id: uuid.UUID, member: EventReader, uow: UowDep, paging: Paging
) -> Page[WaitlistEntryOut]:
    """The event's waitlist by ticket type, each in offer order (members)."""
    page = service.list_for_event(uow, event_id, paging)
    return Page[WaitlistEntryOut].of(page, WaitlistEntryOut.model_validate)


@router.delete(
    "/waitlist/{entry_id}",
    response_model=WaitlistEntryOut,
    responses=responses(401, 404, 409),
)
def leave(entry_id: uuid.UUID, uow: UowDep) -> WaitlistEntryOut:
    """Leave a waitlist (the participant's own entry, while it is still waiting): the entry is
    cancelled and ``waitlist.left`` published. An entry already offered a seat is a 409 — the
    participant then lets the offered hold lapse or cancels it instead."""
    return WaitlistEntryOut.model_validate(service.leave(uow, entry_id, uow.user_id))
