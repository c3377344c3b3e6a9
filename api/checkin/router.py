"""Tickets (code and QR image) for participants; check-in and its counts for organizers.

Check-in errors (409 unless noted): `already_checked_in` (details: `checked_in_at`),
`not_confirmed`, `cancelled`, `wrong_event`, `nonce_reused`, and 422 `invalid_code` for a code
this server did not issue (forged, garbled, or signed with another key).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from api.checkin.schemas import (
    CheckInOut,
    CheckInStats,
    ManualCheckIn,
    ScanCheckIn,
    TicketOut,
)
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
from domain.checkin import service, tickets
from domain.errors import NotFound
from domain.registration.models import Registration
from domain.registration.service import get_registration

router = APIRouter(tags=["check-in"])

RegistrationMember = Annotated[
    Membership | None, Depends(optional_membership("registrations", "registration_id"))
]
RegistrationManager = Annotated[
    Membership,
    Depends(require_resource_role("registrations", "registration_id", *MANAGE_ROLES)),
]
EventManager = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *MANAGE_ROLES))
]
EventReader = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *READ_ROLES))
]

# A ticket image is a credential: no shared or browser cache keeps it.
_NO_STORE = {"Cache-Control": "no-store"}


def _ticket_key(settings: SettingsDep) -> bytes:
    return settings.ticket_signing_key.get_secret_value().encode()


TicketKey = Annotated[bytes, Depends(_ticket_key)]


def _ticket_registration(
    registration_id: uuid.UUID, member: RegistrationMember, uow: UowDep
) -> Registration:
    """The registration whose ticket is asked for: the caller's own, or one of an event the
    caller manages (owners and moderators)."""
    registration = get_registration(uow, registration_id)
    if registration.user_id == uow.user_id:
        return registration
    if member is not None and member.role in MANAGE_ROLES:
        return registration
    if member is not None:
        raise ApiError(403, "insufficient_role", "Owners and moderators see others' tickets")
    raise NotFound("Registration not found")


TicketRegistration = Annotated[Registration, Depends(_ticket_registration)]


def _image(media_type: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {}}, "description": "The ticket code as a QR image"},
        **responses(401, 403, 404, 409),
    }


def _out(result: service.CheckInResult) -> CheckInOut:
    registration = result.registration
    return CheckInOut(
        registration_id=registration.id,
        event_id=registration.event_id,
        ticket_type_id=registration.ticket_type_id,
        user_id=registration.user_id,
        quantity=registration.quantity,
        checked_in_at=result.checked_in_at,
        checked_in_by=result.check_in.checked_in_by,
        nonce=result.check_in.nonce,
    )


@router.get(
    "/registrations/{registration_id}/ticket",
    response_model=TicketOut,
    responses=responses(401, 403, 404, 409),
)
def get_ticket(
    registration_id: uuid.UUID, registration: TicketRegistration, key: TicketKey
) -> TicketOut:
    """The ticket code of a registration (the participant's own, or for owners and moderators).
    A cancelled registration has none (409 `cancelled`); a pending one's is refused at the door
    until it is paid."""
    return TicketOut(
        registration_id=registration.id,
        event_id=registration.event_id,
        ticket_code=service.ticket_code(registration, key),
        status=registration.status,
    )


@router.get(
    "/registrations/{registration_id}/ticket.png",
    response_class=Response,
    responses=_image("image/png"),
)
def get_ticket_png(
    registration_id: uuid.UUID, registration: TicketRegistration, key: TicketKey
) -> Response:
    """The ticket code as a QR image (PNG)."""
    code = service.ticket_code(registration, key)
    return Response(tickets.qr_png(code), media_type="image/png", headers=_NO_STORE)


@router.get(
    "/registrations/{registration_id}/ticket.svg",
    response_class=Response,
    responses=_image("image/svg+xml"),
)
def get_ticket_svg(
    registration_id: uuid.UUID, registration: TicketRegistration, key: TicketKey
) -> Response:
    """The ticket code as a QR image (SVG)."""
    code = service.ticket_code(registration, key)
    return Response(tickets.qr_svg(code), media_type="image/svg+xml", headers=_NO_STORE)


@router.post(
    "/registrations/{registration_id}/check-in",
    response_model=CheckInOut,
    responses=responses(401, 403, 404, 409),
)
def check_in_registration(
    registration_id: uuid.UUID,
    member: RegistrationManager,
    uow: UowDep,
    body: ManualCheckIn | None = None,
) -> CheckInOut:
    """Check a confirmed registration in by id (owners and moderators). With a `nonce`, a
    repeated request returns the first result instead of `already_checked_in`."""
    result = service.check_in_registration(
        uow, registration_id, by=member.user_id, nonce=body.nonce if body else None
    )
    return _out(result)


@router.post(
    "/events/{event_id}/check-in",
    response_model=CheckInOut,
    responses=responses(401, 403, 404, 409, 422),
)
def scan(
    event_id: uuid.UUID, body: ScanCheckIn, member: EventManager, uow: UowDep, key: TicketKey
) -> CheckInOut:
    """Check in a scanned ticket code at this event (owners and moderators). Idempotent by
    `nonce`: a retried scan returns 200 with the first result. A code that this server did
    not issue is a 422 `invalid_code`; a ticket of another event is a 409 `wrong_event`."""
    result = service.check_in_by_code(
        uow, event_id, body.ticket_code, key=key, by=member.user_id, nonce=body.nonce
    )
    return _out(result)


@router.get(
    "/events/{event_id}/check-ins/stats",
    response_model=CheckInStats,
    responses=responses(401, 403, 404),
)
def check_in_stats(event_id: uuid.UUID, member: EventReader, uow: UowDep) -> CheckInStats:
    """Confirmed seats and how many are checked in (members)."""
    counts = service.stats(uow, event_id)
    return CheckInStats(
        registered=counts.registered,
        checked_in=counts.checked_in,
        attendance_rate=counts.attendance_rate,
    )
