"""Events of the organization capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from domain.events import DomainEvent

if TYPE_CHECKING:
    from domain.organization.models import (
        Organization,
        OrganizationInvite,
        OrganizationMember,
        OrganizationRequest,
        Role,
    )


@dataclass(frozen=True, kw_only=True)
class OrganizationRequestCreated(DomainEvent):
    event_type = "organization.request.created"
    aggregate_type = "organization_request"

    request_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    slug: str

    @classmethod
    def of(cls, request: OrganizationRequest) -> Self:
        return cls(
            aggregate_id=request.id,
            request_id=request.id,
            user_id=request.user_id,
            name=request.name,
            slug=request.slug,
        )


@dataclass(frozen=True, kw_only=True)
class OrganizationRequestReviewed(DomainEvent):
    event_type = "organization.request.reviewed"
    aggregate_type = "organization_request"

    request_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    reviewed_by: uuid.UUID
    comment: str | None = None

    @classmethod
    def of(cls, request: OrganizationRequest) -> Self:
        return cls(
            aggregate_id=request.id,
            request_id=request.id,
            user_id=request.user_id,
            status=request.status.value,
            reviewed_by=request.reviewed_by,
            comment=request.review_comment,
        )


@dataclass(frozen=True, kw_only=True)
class OrganizationCreated(DomainEvent):
    event_type = "organization.created"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    name: str
    slug: str
    owner_id: uuid.UUID

    @classmethod
    def of(cls, organization: Organization) -> Self:
        """``owner_id``: its founder, who becomes its first owner."""
        return cls(
            aggregate_id=organization.id,
            tenant_id=organization.id,
            organization_id=organization.id,
            name=organization.name,
            slug=organization.slug,
            owner_id=organization.created_by,
        )


@dataclass(frozen=True, kw_only=True)
class MemberAdded(DomainEvent):
    event_type = "organization.member.added"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    user_id: uuid.UUID
    role: str

    @classmethod
    def of(cls, member: OrganizationMember) -> Self:
        return cls(
            aggregate_id=member.tenant_id,
            tenant_id=member.tenant_id,
            organization_id=member.tenant_id,
            user_id=member.user_id,
            role=member.role.value,
        )


@dataclass(frozen=True, kw_only=True)
class MemberRoleChanged(DomainEvent):
    event_type = "organization.member.role_changed"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    user_id: uuid.UUID
    old_role: str
    new_role: str

    @classmethod
    def of(cls, member: OrganizationMember, *, old_role: Role) -> Self:
        return cls(
            aggregate_id=member.tenant_id,
            tenant_id=member.tenant_id,
            organization_id=member.tenant_id,
            user_id=member.user_id,
            old_role=old_role.value,
            new_role=member.role.value,
        )


@dataclass(frozen=True, kw_only=True)
class MemberRemoved(DomainEvent):
    event_type = "organization.member.removed"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    user_id: uuid.UUID

    @classmethod
    def of(cls, member: OrganizationMember) -> Self:
        return cls(
            aggregate_id=member.tenant_id,
            tenant_id=member.tenant_id,
            organization_id=member.tenant_id,
            user_id=member.user_id,
        )


@dataclass(frozen=True, kw_only=True)
class MemberInvited(DomainEvent):
    event_type = "organization.member.invited"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    invite_id: uuid.UUID
    role: str
    email: str | None = None
    telegram_username: str | None = None

    @classmethod
    def of(cls, invite: OrganizationInvite) -> Self:
        return cls(
            aggregate_id=invite.tenant_id,
            tenant_id=invite.tenant_id,
            organization_id=invite.tenant_id,
            invite_id=invite.id,
            role=invite.role.value,
            email=invite.email,
            telegram_username=invite.telegram_username,
        )
