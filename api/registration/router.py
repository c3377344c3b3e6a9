"""Seat holds and registrations, for participants and organizers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select

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
from api.registration.schemas import (
    CancelRegistration,
    OrganizerRegistration,
    Participant,
    RegistrationCreate,
    RegistrationFromHold,
    RegistrationOut,
    ReservationCreate,
    ReservationOut,
)
from domain.errors import NotFound
from domain.identity.models import User
from domain.organization.models import Role
from domain.registration import service
from domain.registration.models import RegistrationStatus

router = APIRouter(tags=["registrations"])

EventReader = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *READ_ROLES))
]
RegistrationMember = Annotated[
    Membership | None, Depends(optional_membership("registrations", "registration_id"))
]


@router.post(
    "/events/{event_id}/reservations",
    response_model=ReservationOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 404, 409),
    tags=["reservations"],
)
def reserve(event_id: uuid.UUID, body: ReservationCreate, uow: UowDep) -> ReservationOut:
    """Hold seats for the event's hold time (default 15 minutes); see `expires_at`."""
    reservation = service.reserve(
        uow,
        event_id,
        body.ticket_type_id,
        body.quantity,
        user_id=uow.user_id,
        visitor_id=body.visitor_id,
    )
    return ReservationOut.model_validate(reservation)


@router.get(
    "/reservations/{reservation_id}",
    response_model=ReservationOut,
    responses=responses(401, 404),
    tags=["reservations"],
)
def get_reservation(reservation_id: uuid.UUID, uow: UowDep) -> ReservationOut:
    """One of the caller's holds."""
    reservation = service.get_reservation(uow, reservation_id)
    if reservation.user_id != uow.user_id:
        raise NotFound("Reservation not found")
    return ReservationOut.model_validate(reservation)


@router.post(
    "/reservations/{reservation_id}/cancel",
    response_model=ReservationOut,
    responses=responses(401, 404, 409),
    tags=["reservations"],
)
def cancel_reservation(reservation_id: uuid.UUID, uow: UowDep) -> ReservationOut:
    """Give a hold back before it expires."""
    return ReservationOut.model_validate(
        service.cancel_reservation(uow, reservation_id, uow.user_id)
    )


@router.post(
    "/events/{event_id}/registrations",
    response_model=RegistrationOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 404, 409),
)
def register(event_id: uuid.UUID, body: RegistrationCreate, uow: UowDep) -> RegistrationOut:
    """Register, from a hold or directly. Free tickets are confirmed at once; paid ones stay
    `pending_payment` until paid (the full price or the deposit, see `amount_due_now`)."""
    if isinstance(body, RegistrationFromHold):
        registration = service.register(
            uow,
            event_id,
            user_id=uow.user_id,
            reservation_id=body.reservation_id,
            payment_mode=body.payment_mode,
            visitor_id=body.visitor_id,
        )
    else:
        registration = service.register(
            uow,
            event_id,
            user_id=uow.user_id,
            ticket_type_id=body.ticket_type_id,
            quantity=body.quantity,
            payment_mode=body.payment_mode,
            visitor_id=body.visitor_id,
        )
    return RegistrationOut.model_validate(registration)


@router.get(
    "/events/{event_id}/registrations",
    response_model=Page[OrganizerRegistration],
    responses=responses(401, 403, 404),
)
def event_registrations(
    event_id: uuid.UUID,
    member: EventReader,
    uow: UowDep,
    paging: Paging,
    status_filter: Annotated[RegistrationStatus | None, Query(alias="status")] = None,
    ticket_type_id: uuid.UUID | None = None,
) -> Page[OrganizerRegistration]:
    """The event's registrations, oldest first (members). Names and e-mails only for owners and
    moderators."""
    page = service.list_for_event(
        uow, event_id, status=status_filter, ticket_type_id=ticket_type_id, page=paging
    )
    rows = page.items
    personal = member.role in (Role.OWNER, Role.MODERATOR)
    users = {}
    if personal and rows:
        users = {
            u.id: u
            for u in uow.session.scalars(select(User).where(User.id.in_({r.user_id for r in rows})))
        }

    def out(r) -> OrganizerRegistration:
        user = users.get(r.user_id)
        participant = Participant(
            user_id=r.user_id,
            display_name=user.display_name if user else None,
            email=user.email if user else None,
        )
        return OrganizerRegistration(
            **RegistrationOut.model_validate(r).model_dump(), participant=participant
        )

    return Page[OrganizerRegistration].of(page, out)


@router.get(
    "/registrations/{registration_id}",
    response_model=RegistrationOut,
    responses=responses(401, 404),
)
def get_registration(
    registration_id: uuid.UUID, member: RegistrationMember, uow: UowDep
) -> RegistrationOut:
    """A registration: the participant's own, or any of the organizer's events."""
    return RegistrationOut.model_validate(service.get_registration(uow, registration_id))


@router.get(
    "/users/me/registrations", response_model=Page[RegistrationOut], responses=responses(401)
)
def my_registrations(uow: UowDep, paging: Paging) -> Page[RegistrationOut]:
    """The caller's registrations across every organization, newest first."""
    page = service.list_mine(uow, uow.user_id, paging)
    return Page[RegistrationOut].of(page, RegistrationOut.model_validate)


@router.post(
    "/registrations/{registration_id}/cancel",
    response_model=RegistrationOut,
    responses=responses(401, 403, 404, 409),
)
def cancel_registration(
    registration_id: uuid.UUID,
    member: RegistrationMember,
    uow: UowDep,
    body: CancelRegistration | None = None,
) -> RegistrationOut:
    """Cancel (the participant, or an owner or moderator); frees the seats."""
    registration = service.get_registration(uow, registration_id)
    if registration.user_id == uow.user_id:
        reason = "participant"
    elif member is not None and member.role in MANAGE_ROLES:
        reason = "organizer"
    elif member is not None:
        raise ApiError(403, "insufficient_role", "Owners and moderators cancel registrations")
    else:
        raise NotFound("Registration not found")
    if body and body.reason:
        reason = f"{reason}: {body.reason}"[:64]
    return RegistrationOut.model_validate(service.cancel(uow, registration_id, reason=reason))
