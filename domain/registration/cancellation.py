"""Cancelling every registration of a cancelled event at once (the payment saga's
``event.cancelled`` step, streams/payment.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from domain.registration import service as registrations
from domain.registration.models import Registration, RegistrationStatus
from domain.uow import UnitOfWork


def cancel_event_registrations(uow: UnitOfWork, event_id: uuid.UUID) -> int:
    """event.cancelled: every live registration of the event is cancelled and its seats freed
    (a checked-in one stays). Its money goes back through ``saga.refund_event_payments``."""
    ids = uow.session.scalars(
        select(Registration.id).where(
            Registration.event_id == event_id,
            Registration.status.in_(
                (RegistrationStatus.CONFIRMED, RegistrationStatus.PENDING_PAYMENT)
            ),
            Registration.checked_in_at.is_(None),
        )
    ).all()
    for registration_id in ids:
        registrations.cancel(uow, registration_id, reason="event_cancelled")
    return len(ids)
