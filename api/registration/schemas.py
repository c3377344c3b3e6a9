"""Request and response bodies of reservations and registrations."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.types import RequestModel
from domain.payment.refund_policy import RefundRule
from domain.registration.models import PaymentMode, RegistrationStatus, ReservationStatus


class ReservationCreate(RequestModel):
    ticket_type_id: uuid.UUID
    quantity: int = Field(default=1, ge=1, le=100)
    visitor_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The tracking visitor id the page sends with POST /analytics/track: credits "
        "this to the visitor's visit and its source (docs/tracking.md)",
    )


class ReservationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    quantity: int
    status: ReservationStatus
    expires_at: datetime
    created_at: datetime


class RegistrationFromHold(RequestModel):
    """Turn a hold into a registration."""

    reservation_id: uuid.UUID
    payment_mode: PaymentMode | None = Field(
        default=None, description="`full` (default for paid tickets) or `deposit`"
    )
    visitor_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The tracking visitor id the page sends with POST /analytics/track: credits "
        "this (default: the hold's) to the visitor's visit and its source (docs/tracking.md)",
    )


class DirectRegistration(RequestModel):
    """Register without a hold."""

    ticket_type_id: uuid.UUID
    quantity: int = Field(default=1, ge=1, le=100)
    payment_mode: PaymentMode | None = Field(
        default=None, description="`full` (default for paid tickets) or `deposit`"
    )
    visitor_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The tracking visitor id the page sends with POST /analytics/track: credits "
        "this to the visitor's visit and its source (docs/tracking.md)",
    )


RegistrationCreate = RegistrationFromHold | DirectRegistration


class RegistrationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    ticket_type_id: uuid.UUID
    reservation_id: uuid.UUID | None
    quantity: int
    status: RegistrationStatus
    payment_mode: PaymentMode
    currency: str
    amount_total: int
    amount_due_now: int
    amount_paid: int
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    checked_in_at: datetime | None
    created_at: datetime
    listed: bool = Field(
        default=True,
        description="Shown by name on the event's participant list (while confirmed and the "
        "list is open); the participant's choice: PATCH /registrations/{id}",
    )
    refund_due: int | None = Field(
        default=None,
        description="What the event's refund policy gave back when the participant cancelled "
        "(refunded through the payments); null unless they cancelled",
    )


class RegistrationPatch(RequestModel):
    listed: bool = Field(
        description="false: leave the event's participant list; true: be shown on it"
    )


class RefundQuoteOut(BaseModel):
    """What a cancellation gives back."""

    model_config = ConfigDict(from_attributes=True)

    rule: RefundRule = Field(
        description="`full` or `minus_fee`: refunded per the event's policy, before its "
        "deadline; `after_deadline`: too late, nothing; `no_refunds`: the event refunds no "
        "cancellation; `nothing_paid`; `event_cancelled`: the event's cancellation refunds "
        "everything left; `by_organizer`: an organizer's cancellation refunds nothing by itself"
    )
    amount: int = Field(description="What goes back, in minor units (settles asynchronously)")
    currency: str
    paid: int = Field(description="What the registration paid")
    fee: int = Field(description="What the organizer keeps under the policy")
    deadline: datetime | None = Field(
        description="Until when the event's policy refunds a participant's cancellation"
    )


class CancellationOut(RegistrationOut):
    refund: RefundQuoteOut


class ParticipantName(BaseModel):
    """Someone who comes: their display name, nothing else."""

    display_name: str


class Participant(BaseModel):
    user_id: uuid.UUID
    display_name: str | None = None
    email: str | None = None


class OrganizerRegistration(RegistrationOut):
    participant: Participant
    ticket_code: str | None = Field(
        default=None,
        description="The ticket's code (owners and moderators; none once cancelled)",
    )
    cancel_reason: str | None = None


class CancelRegistration(RequestModel):
    reason: str | None = Field(default=None, max_length=200)
