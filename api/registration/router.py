"""Seat holds and registrations, for participants and organizers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select

from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    Membership,
    SettingsDep,
    UowDep,
    UowRunnerDep,
    optional_membership,
    require_resource_role,
)
from api.errors import ApiError, responses
from api.pagination import Page, Paging
from api.registration.schemas import (
    CancellationOut,
    CancelRegistration,
    OrganizerRegistration,
    Participant,
    ParticipantName,
    RefundQuoteOut,
    RegistrationCreate,
    RegistrationFromHold,
    RegistrationOut,
    RegistrationPatch,
    ReservationCreate,
    ReservationOut,
)
from api.responses import model_json
from domain.checkin import tickets
from domain.errors import NotFound
from domain.identity.models import User
from domain.payment import cancellation
from domain.registration import service
from domain.registration.models import Registration, RegistrationStatus
from domain.registration.service import PaymentState
from domain.uow import UnitOfWork

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
EventMember = Annotated[Membership | None, Depends(optional_membership("events", "event_id"))]


def utc_now() -> datetime:
    """The time a request acts at: a dependency, so tests set it (no rule of theirs depends on
    today's date)."""
    return datetime.now(UTC)


Clock = Annotated[datetime, Depends(utc_now)]


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
async def register(event_id: uuid.UUID, body: RegistrationCreate, run: UowRunnerDep) -> Response:
    """Register, from a hold or directly. Free tickets are confirmed at once; paid ones stay
    `pending_payment` until paid (the full price or the deposit, see `amount_due_now`)."""

    def work(uow: UnitOfWork) -> Registration:
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
        return registration

    # Answered once committed: a direct registration's row is written with the COMMIT.
    registration = await run(work)
    return model_json(RegistrationOut.model_validate(registration), status.HTTP_201_CREATED)


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
    response_model=CancellationOut,
    responses=responses(401, 403, 404, 409),
)
def cancel_registration(
    registration_id: uuid.UUID,
    member: RegistrationMember,
    uow: UowDep,
    now: Clock,
    body: CancelRegistration | None = None,
) -> CancellationOut:
    """Cancel (the participant, or an owner or moderator); frees the seats. The participant's
    own cancellation refunds what they paid per the event's refund policy; `refund` says what
    goes back (the refund settles asynchronously). An organizer's refunds nothing by itself."""
    registration = service.get_registration(uow, registration_id)
    by_participant = registration.user_id == uow.user_id
    if not by_participant:
        if member is None:
            raise NotFound("Registration not found")
        if member.role not in MANAGE_ROLES:
            raise ApiError(403, "insufficient_role", "Owners and moderators cancel registrations")
    registration, refund = cancellation.cancel_registration(
        uow,
        registration_id,
        by_participant=by_participant,
        now=now,
        note=body.reason if body else None,
    )
    return CancellationOut(
        **RegistrationOut.model_validate(registration).model_dump(),
        refund=RefundQuoteOut(
            rule=refund.rule,
            amount=refund.amount,
            currency=registration.currency,
            paid=refund.paid,
            fee=refund.fee,
            deadline=refund.deadline,
        ),
    )


@router.patch(
    "/registrations/{registration_id}",
    response_model=RegistrationOut,
    responses=responses(401, 403, 404, 409),
)
def update_registration(
    registration_id: uuid.UUID, body: RegistrationPatch, member: RegistrationMember, uow: UowDep
) -> RegistrationOut:
    """The participant's own choices: `listed: false` leaves the event's participant list,
    `true` returns to it (default). Anyone else: 403 `not_participant` (organizers) or 404."""
    return RegistrationOut.model_validate(
        service.set_listed(uow, registration_id, user_id=uow.user_id, listed=body.listed)
    )


@router.get(
    "/events/{event_id}/participants",
    response_model=Page[ParticipantName],
    responses=responses(401, 403, 404),
    tags=["events"],
)
def event_participants(
    event_id: uuid.UUID, member: EventMember, uow: UowDep, paging: Paging
) -> Page[ParticipantName]:
    """Who comes: the display names of the event's confirmed participants who stay listed,
    oldest registration first. For participants with a confirmed registration while the event's
    `participants_visibility` is `open` (else 403 `participants_closed` or `not_registered`);
    owners and moderators of the event's organization always."""
    organizer = member is not None and member.role in MANAGE_ROLES
    page = service.participants(uow, event_id, paging, organizer=organizer)
    return Page[ParticipantName].of(page, lambda name: ParticipantName(display_name=name))


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
