"""Every model, imported once so ``Base.metadata`` is complete (Alembic, schema tests)."""

from domain.checkin.models import CheckIn
from domain.db.base import Base
from domain.event.models import Event, TicketType
from domain.exports.models import Export
from domain.group.models import Group, GroupMember
from domain.identity.models import User
from domain.media.models import Media, MediaVariant
from domain.notification.models import EventReminder, Notification, NotificationPreference
from domain.organization.models import (
    Organization,
    OrganizationInvite,
    OrganizationMember,
    OrganizationRequest,
)
from domain.outbox.models import InboxMessage, OutboxMessage
from domain.payment.models import Payment, Refund
from domain.registration.models import Registration, Reservation
from domain.waitlist.models import WaitlistEntry

__all__ = [
    "Base",
    "CheckIn",
    "Event",
    "EventReminder",
    "Export",
    "Group",
    "GroupMember",
    "InboxMessage",
    "Media",
    "MediaVariant",
    "Notification",
    "NotificationPreference",
    "Organization",
    "OrganizationInvite",
    "OrganizationMember",
    "OrganizationRequest",
    "OutboxMessage",
    "Payment",
    "Refund",
    "Registration",
    "Reservation",
    "TicketType",
    "User",
    "WaitlistEntry",
]
