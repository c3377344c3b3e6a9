"""Every model, imported once so ``Base.metadata`` is complete (Alembic, schema tests)."""

from domain.db.base import Base
from domain.group.models import Group, GroupMember
from domain.identity.models import User
from domain.organization.models import (
    Organization,
    OrganizationInvite,
    OrganizationMember,
    OrganizationRequest,
)
from domain.outbox.models import InboxMessage, OutboxMessage

__all__ = [
    "Base",
    "Group",
    "GroupMember",
    "InboxMessage",
    "Organization",
    "OrganizationInvite",
    "OrganizationMember",
    "OrganizationRequest",
    "OutboxMessage",
    "User",
]
