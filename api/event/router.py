"""Events (create, edit, lifecycle, listing) and their ticket types."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    Membership,
    OptionalUowDep,
    UowDep,
    enter_tenant_as,
    public_or_member,
    require_resource_role,
    require_role,
)
from api.errors import responses
from api.event.schemas import (
    CancelBody,
    EventCreate,
    EventOut,
    EventUpdate,
    OrganizerOut,
    TicketTypeFields,
    TicketTypeOut,
    TicketTypeUpdate,
)
from api.pagination import Page, Paging, encode_cursor
from api.types import IsoDatetime
from domain.event import service
from domain.event.models import EventStatus
from domain.organization import profiles

router = APIRouter(tags=["events"])

# Reads open to anonymous callers: a bearer token is optional (it shows more, e.g. drafts).
OPTIONAL_AUTH = {"security": [{}, {"HTTPBearer": []}]}

EventManager = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *MANAGE_ROLES))
]
EventReader = Annotated[Membership | None, Depends(public_or_member("events", "event_id"))]
OrgReader = Annotated[Membership, Depends(require_role(*READ_ROLES))]


def _outs(uow, events) -> list[EventOut]:
    """Events as answered, each with its organizer's public profile (one query for all)."""
    found = profiles.profiles(uow, {e.tenant_id for e in events})
    return [
        EventOut.model_validate(e).model_copy(
            update={"organizer": OrganizerOut.of(found[e.tenant_id])}
            if e.tenant_id in found
            else {}
        )
        for e in events
    ]


def _out(uow, event) -> EventOut:
    return _outs(uow, [event])[0]


@router.post(
    "/events", response_model=EventOut, status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404),
)  # fmt: skip
def create_event(body: EventCreate, uow: UowDep) -> EventOut:
    """Create a draft event in an organization (owners and moderators)."""
    member = enter_tenant_as(uow, body.organization_id, MANAGE_ROLES)
    event = service.create_event(
        uow, member.tenant_id, member.user_id, body.model_dump(exclude={"organization_id"})
    )
    return _out(uow, event)


@router.get("/events", response_model=Page[EventOut], openapi_extra=OPTIONAL_AUTH)
def list_events(
    uow: OptionalUowDep,
    paging: Paging,
    organization_id: uuid.UUID | None = None,
    starts_after: IsoDatetime | None = Query(default=None, description="Inclusive"),
    starts_before: IsoDatetime | None = Query(default=None, description="Exclusive"),
    q: str | None = Query(default=None, max_length=200, description="Text in title or description"),
    visibility: Literal["public", "private", "all"] = Query(
        default="public",
        description="`public` events, the `private` events of the caller's groups (signed in), "
        "or `all` of both",
    ),
    group_id: uuid.UUID | None = Query(
        default=None, description="Only this group's private events (the caller's groups)"
    ),
) -> Page[EventOut]:
    """Published events anyone may see, soonest first, with cursor pagination; signed in, also
    the private events of the caller's groups (`visibility`, `group_id`)."""
    page = service.list_public(
        uow,
        organization_id=organization_id,
        starts_after=starts_after,
        starts_before=starts_before,
        query=q,
        page=paging,
        visibility=visibility,
        group_id=group_id,
    )
    return Page[EventOut](items=_outs(uow, page.items), next_cursor=encode_cursor(page.after))


@router.get(
    "/organizations/{org_id}/events",
    response_model=Page[EventOut],
    responses=responses(401, 404),
)
def organization_events(
    org_id: uuid.UUID,
    member: OrgReader,
    uow: UowDep,
    paging: Paging,
    status_filter: Annotated[EventStatus | None, Query(alias="status")] = None,
    group_id: uuid.UUID | None = Query(
        default=None, description="Only the private events of this group"
    ),
) -> Page[EventOut]:
    """Every event of the organization, drafts included, soonest first (members)."""
    page = service.list_for_tenant(uow, org_id, status_filter, paging, group_id)
    return Page[EventOut](items=_outs(uow, page.items), next_cursor=encode_cursor(page.after))


@router.get(
    "/events/{event_id}",
    response_model=EventOut,
    responses=responses(404),
    openapi_extra=OPTIONAL_AUTH,
)
def get_event(event_id: uuid.UUID, member: EventReader, uow: OptionalUowDep) -> EventOut:
    """An event: published ones for anyone allowed to see them, every state for its organizers."""
    return _out(uow, service.get_event(uow, event_id))


@router.put("/events/{event_id}", response_model=EventOut, responses=responses(401, 403, 404, 409))
def update_event(
    event_id: uuid.UUID, body: EventUpdate, member: EventManager, uow: UowDep
) -> EventOut:
    """Edit an event; once published only the safe fields, and capacity never below sold."""
    event = service.update_event(uow, event_id, body.model_dump(exclude_unset=True))
    return _out(uow, event)


def _move(uow, event_id: uuid.UUID, target: EventStatus, reason: str | None = None) -> EventOut:
    return _out(uow, service.transition(uow, event_id, target, reason))


_LIFECYCLE = responses(401, 403, 404, 409)


@router.post("/events/{event_id}/publish", response_model=EventOut, responses=_LIFECYCLE)
def publish(event_id: uuid.UUID, member: EventManager, uow: UowDep) -> EventOut:
    """Draft → Published."""
    return _move(uow, event_id, EventStatus.PUBLISHED)


@router.post("/events/{event_id}/unpublish", response_model=EventOut, responses=_LIFECYCLE)
def unpublish(event_id: uuid.UUID, member: EventManager, uow: UowDep) -> EventOut:
    """Published → Draft."""
    return _move(uow, event_id, EventStatus.DRAFT)


@router.post("/events/{event_id}/cancel", response_model=EventOut, responses=_LIFECYCLE)
def cancel(
    event_id: uuid.UUID, member: EventManager, uow: UowDep, body: CancelBody | None = None
) -> EventOut:
    """Draft or Published → Cancelled (paid registrations are refunded by the payment saga)."""
    return _move(uow, event_id, EventStatus.CANCELLED, body.reason if body else None)


@router.post("/events/{event_id}/complete", response_model=EventOut, responses=_LIFECYCLE)
def complete(event_id: uuid.UUID, member: EventManager, uow: UowDep) -> EventOut:
    """Published → Completed."""
    return _move(uow, event_id, EventStatus.COMPLETED)


# --- ticket types ---------------------------------------------------------------------------------------


@router.get(
    "/events/{event_id}/ticket-types",
    response_model=Page[TicketTypeOut],
    responses=responses(404),
    tags=["ticket types"],
    openapi_extra=OPTIONAL_AUTH,
)
def list_ticket_types(
    event_id: uuid.UUID, member: EventReader, uow: OptionalUowDep
) -> Page[TicketTypeOut]:
    """The event's ticket types with what is still available (a short list: answered whole);
    to members of the organization also how many of the seats taken are only held."""
    service.get_event(uow, event_id)
    held = service.held_seats(uow, event_id) if member is not None else None
    return Page[TicketTypeOut].whole(
        TicketTypeOut.of(t, None if held is None else held.get(t.id, 0))
        for t in service.list_ticket_types(uow, event_id)
    )


@router.post(
    "/events/{event_id}/ticket-types",
    response_model=TicketTypeOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409),
    tags=["ticket types"],
)
def create_ticket_type(
    event_id: uuid.UUID, body: TicketTypeFields, member: EventManager, uow: UowDep
) -> TicketTypeOut:
    """Add a ticket type (owners and moderators)."""
    return TicketTypeOut.of(service.create_ticket_type(uow, event_id, body.model_dump()), held=0)


@router.put(
    "/events/{event_id}/ticket-types/{ticket_type_id}",
    response_model=TicketTypeOut,
    responses=responses(401, 403, 404, 409),
    tags=["ticket types"],
)
def update_ticket_type(
    event_id: uuid.UUID,
    ticket_type_id: uuid.UUID,
    body: TicketTypeUpdate,
    member: EventManager,
    uow: UowDep,
) -> TicketTypeOut:
    """Change a ticket type; prices are fixed once seats are taken, capacity never below sold."""
    tt = service.update_ticket_type(
        uow, event_id, ticket_type_id, body.model_dump(exclude_unset=True)
    )
    return TicketTypeOut.of(tt, service.held_seats(uow, event_id).get(tt.id, 0))


@router.delete(
    "/events/{event_id}/ticket-types/{ticket_type_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409),
    tags=["ticket types"],
)
def delete_ticket_type(
    event_id: uuid.UUID, ticket_type_id: uuid.UUID, member: EventManager, uow: UowDep
) -> None:
    """Remove a ticket type nobody holds a seat of."""
    service.delete_ticket_type(uow, event_id, ticket_type_id)
