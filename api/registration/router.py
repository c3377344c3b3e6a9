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
    SettingsDep,
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
from domain.checkin import tickets
from domain.errors import NotFound
from domain.identity.models import User
from domain.registration import service
from domain.registration.models import RegistrationStatus
from domain.registration.service import PaymentState

router = APIRouter(tags=["registrations"])

EventReader = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *READ_ROLES))
]


def _ticket_key(settings: SettingsDep) -> bytes:
    return settings.ticket_signing_key.get_secret_value().encode()


TicketKey = Annotated[bytes, Depends(_ticket_key)]
RegistrationManager = Annotated[
    Membership,
    Depends(require_resource_role("registrations", "registration_id", *MANAGE_ROLES)),
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
    responses=responses(401, 403, 404, 422),
)
def event_registrations(
    event_id: uuid.UUID,
    member: EventReader,
    uow: UowDep,
    paging: Paging,
    key: TicketKey,
    status_filter: Annotated[RegistrationStatus | None, Query(alias="status")] = None,
    ticket_type_id: uuid.UUID | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Case-insensitive search in the participant's name and e-mail (anywhere "
            "in them), or a whole ticket code. Owners and moderators only: an analyst's is a "
            "403 `insufficient_role` (it would tell whose name matches)",
        ),
    ] = None,
    payment: Annotated[
        PaymentState | None,
        Query(
            description="`paid`: a price paid in full; `deposit`: the deposit paid, the "
            "remainder outstanding; `owing`: pending payment with nothing paid yet"
        ),
    ] = None,
    checked_in: Annotated[
        bool | None, Query(description="Checked in (true) or not yet (false)")
    ] = None,
) -> Page[OrganizerRegistration]:
    """The event's registrations, oldest first (members). Names, e-mails and ticket codes only
    for owners and moderators."""
    personal = member.role in MANAGE_ROLES
    search = q.strip() if q else None
    if search and not personal:
        raise ApiError(
            403, "insufficient_role", "Owners and moderators search by name, e-mail or ticket code"
        )
    page = service.list_for_event(
        uow,
        event_id,
        status=status_filter,
        ticket_type_id=ticket_type_id,
        page=paging,
        search=search or None,
        ticket_key=key,
        payment=payment,
        checked_in=checked_in,
    )
    rows = page.items
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
        live = r.status != RegistrationStatus.CANCELLED
        return OrganizerRegistration(
            **RegistrationOut.model_validate(r).model_dump(),
            participant=participant,
            ticket_code=tickets.issue(key, r.id, r.ticket_secret) if personal and live else None,
            cancel_reason=r.cancel_reason,
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


@router.post(
    "/registrations/{registration_id}/resend-ticket",
    response_model=RegistrationOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(401, 403, 404, 409),
)
def resend_ticket(
    registration_id: uuid.UUID, member: RegistrationManager, uow: UowDep
) -> RegistrationOut:
    """Send a confirmed registration's ticket to its participant again (owners and
    moderators); the message follows asynchronously. 409 `not_confirmed` otherwise."""
    return RegistrationOut.model_validate(
        service.resend_ticket(uow, registration_id, requested_by=member.user_id)
    )
