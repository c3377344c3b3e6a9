"""The ticket sent again at an organizer's request (``registration.ticket_resent``, from POST
/registrations/{id}/resend-ticket).

The first ticket is sent once per registration and channel whichever event carries it
(``service.enqueue``'s rule for the ``ticket`` template); a resend is asked for on purpose, so it
has a template of its own (``ticket_resent``) and is sent once per request: the log is unique per
source event, recipient and channel. The QR code is attached as with the first ticket (the
delivery attaches it to any message of a registration)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from domain.event.models import Event, TicketType
from domain.notification import catalog, service
from domain.notification.models import Notification
from domain.registration.models import Registration, RegistrationStatus
from domain.uow import UnitOfWork

EVENT_TYPE = "registration.ticket_resent"
TEMPLATE = "ticket_resent"


def handle(
    uow: UnitOfWork,
    payload: Mapping[str, Any],
    event_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> list[Notification]:
    """Queue the ticket again for the registration's participant (none once it is no longer
    confirmed: a cancelled registration has no ticket). The caller commits."""
    now = now or datetime.now(UTC)
    tenant_id = uuid.UUID(str(payload["tenant_id"]))
    source = service.Source(id=event_id, type=EVENT_TYPE, tenant_id=tenant_id)
    uow.enter_tenant(tenant_id)
    uow.act_as(uuid.UUID(str(payload["user_id"])))  # their account and preferences are theirs
    registration = uow.session.get(Registration, uuid.UUID(str(payload["registration_id"])))
    if registration is None or registration.status != RegistrationStatus.CONFIRMED:
        return []
    people = service.recipients(uow, [registration.user_id], now)
    event = uow.session.get(Event, registration.event_id)
    ticket_type = uow.session.get(TicketType, registration.ticket_type_id)
    variables = {
        "event_title": event.title,
        "starts_at": catalog.when(event.starts_at, event.timezone),
        "venue": event.venue,
        "online_url": event.online_url,
        "ticket_type": ticket_type.name if ticket_type else "",
        "quantity": registration.quantity,
        "registration_id": str(registration.id),
    }
    return service.enqueue(
        uow,
        source,
        TEMPLATE,
        people,
        variables,
        now=now,
        event_id=event.id,
        registration_id=registration.id,
    )
