"""Events of the organization capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class OrganizationRequestCreated(DomainEvent):
    event_type = "organization.request.created"
    aggregate_type = "organization_request"

    request_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    slug: str


@dataclass(frozen=True, kw_only=True)
class OrganizationRequestReviewed(DomainEvent):
    event_type = "organization.request.reviewed"
    aggregate_type = "organization_request"

    request_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    reviewed_by: uuid.UUID
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrganizationCreated(DomainEvent):
    event_type = "organization.created"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    name: str
    slug: str
    owner_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class MemberAdded(DomainEvent):
    event_type = "organization.member.added"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    user_id: uuid.UUID
    role: str


@dataclass(frozen=True, kw_only=True)
class MemberRoleChanged(DomainEvent):
    event_type = "organization.member.role_changed"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    user_id: uuid.UUID
    old_role: str
    new_role: str


@dataclass(frozen=True, kw_only=True)
class MemberRemoved(DomainEvent):
    event_type = "organization.member.removed"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class MemberInvited(DomainEvent):
    event_type = "organization.member.invited"
    aggregate_type = "organization"

    organization_id: uuid.UUID
    invite_id: uuid.UUID
    role: str
    email: str | None = None
    telegram_username: str | None = None
