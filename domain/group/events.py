"""Events of the group capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.group.models import Group, GroupMember
    from domain.organization.models import OrganizationInvite


@dataclass(frozen=True, kw_only=True)
class GroupCreated(DomainEvent):
    event_type = "group.created"
    aggregate_type = "group"

    group_id: uuid.UUID
    organization_id: uuid.UUID
    name: str

    @classmethod
    def of(cls, group: Group) -> Self:
        return cls(
            aggregate_id=group.id,
            tenant_id=group.tenant_id,
            group_id=group.id,
            organization_id=group.tenant_id,
            name=group.name,
        )


@dataclass(frozen=True, kw_only=True)
class GroupMemberAdded(DomainEvent):
    event_type = "group.member.added"
    aggregate_type = "group"

    group_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID

    @classmethod
    def of(cls, member: GroupMember) -> Self:
        return cls(
            aggregate_id=member.group_id,
            tenant_id=member.tenant_id,
            group_id=member.group_id,
            organization_id=member.tenant_id,
            user_id=member.user_id,
        )


@dataclass(frozen=True, kw_only=True)
class GroupMemberInvited(DomainEvent):
    """Someone was invited to the group by e-mail or Telegram username; the notifications agent
    sends the invitation (its code drawn when sent, as for an organization's)."""

    event_type = "group.member.invited"
    aggregate_type = "group"

    group_id: uuid.UUID
    organization_id: uuid.UUID
    invite_id: uuid.UUID
    email: str | None = None
    telegram_username: str | None = None

    @classmethod
    def of(cls, invite: OrganizationInvite) -> Self:
        assert invite.group_id is not None
        return cls(
            aggregate_id=invite.group_id,
            tenant_id=invite.tenant_id,
            group_id=invite.group_id,
            organization_id=invite.tenant_id,
            invite_id=invite.id,
            email=invite.email,
            telegram_username=invite.telegram_username,
        )
