"""Cancelling a registration, with what the cancellation gives back.

A participant's own cancellation refunds what they paid per the event's refund policy
(``refund_policy.quote``, at the time the caller passes: the API's injected clock). The amount
is recorded on the registration (``refund_due``) in the cancelling transaction, published with
``registration.cancelled``, and the payment saga asks the provider for it
(``saga.refund_participant_cancellation``): the participant's own context may read their
payments but not write refunds, which are the tenant's records. An organizer's cancellation
refunds nothing by itself (they refund with POST /payments/{id}/refund).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from domain.event.models import Event, EventStatus
from domain.payment import ledger
from domain.payment.ledger import RESERVING
from domain.payment.models import RefundStatus
from domain.payment.refund_policy import RefundQuote, RefundRule, quote, refund_deadline
from domain.registration import service as registrations
from domain.registration.models import Registration
from domain.uow import UnitOfWork

PARTICIPANT = "participant"
ORGANIZER = "organizer"


def refunded_so_far(uow: UnitOfWork, registration_id: uuid.UUID) -> int:
    """What went back, or is on its way back, of the registration's payments."""
    payments = ledger.payments_of(uow, registration_id)
    refunds = ledger.refunds_of(uow, [p.id for p in payments])
    live = (*RESERVING, RefundStatus.SUCCEEDED)
    return sum(r.amount for r in refunds if r.status in live)


def participant_quote(
    uow: UnitOfWork, registration: Registration, event: Event | None, now: datetime
) -> RefundQuote:
    paid = registration.amount_paid
    refunded = refunded_so_far(uow, registration.id) if paid else 0
    if event is None:  # not readable any more: no policy can be applied
        return RefundQuote(RefundRule.NO_REFUNDS, 0, paid, paid, None)
    if event.status == EventStatus.CANCELLED and paid:
        # The event's cancellation refunds everything left anyway (saga.refund_event_payments).
        return RefundQuote(
            RefundRule.EVENT_CANCELLED, max(0, paid - refunded), paid, 0, refund_deadline(event)
        )
    return quote(event, paid=paid, refunded=refunded, now=now)


def cancel_registration(
    uow: UnitOfWork,
    registration_id: uuid.UUID,
    *,
    by_participant: bool,
    now: datetime,
    note: str | None = None,
) -> tuple[Registration, RefundQuote]:
    """Cancel (frees the seats) and say what goes back: the participant's own cancellation per
    the event's refund policy at ``now``, an organizer's nothing."""
    registration = registrations.get_registration(uow, registration_id, lock=True)
    registrations.check_cancellable(registration)
    reason = PARTICIPANT if by_participant else ORGANIZER
    if note:
        reason = f"{reason}: {note}"[:64]
    if by_participant:
        event = uow.session.get(Event, registration.event_id)
        refund = participant_quote(uow, registration, event, now)
        refund_due: int | None = refund.amount
    else:
        refund = RefundQuote(RefundRule.BY_ORGANIZER, 0, registration.amount_paid, 0, None)
        refund_due = None
    registration = registrations.cancel(uow, registration.id, reason=reason, refund_due=refund_due)
    return registration, refund
