"""Request and response bodies of the organization endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.types import Email, RequestModel, Slug
from domain.organization.models import RequestStatus, Role


class OrganizationRequestCreate(RequestModel):
    name: str = Field(min_length=2, max_length=200)
    slug: Slug
    description: str | None = Field(default=None, max_length=5000)


class OrganizationRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    slug: str
    description: str | None
    status: RequestStatus
    reviewed_at: datetime | None
    review_comment: str | None
    created_at: datetime


class ReviewBody(RequestModel):
    comment: str | None = Field(default=None, max_length=2000)


class OrganizationCreate(RequestModel):
    request_id: uuid.UUID = Field(description="An approved request of the caller's")


class OrganizationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    created_at: datetime
    logo_media_id: uuid.UUID | None = None
    logo_url: str | None = Field(
        default=None,
        description="Redirects to the logo (`?variant=thumbnail|card|cover`); null without one",
    )

    @model_validator(mode="after")
    def _logo_url(self) -> OrganizationOut:
        self.logo_url = f"/api/v1/organizations/{self.id}/logo" if self.logo_media_id else None
        return self


class MyOrganization(OrganizationOut):
    role: Role


class MemberOut(BaseModel):
    user_id: uuid.UUID
    display_name: str
    email: str | None
    telegram_username: str | None
    role: Role
    joined_at: datetime


class InviteCreate(RequestModel):
    email: Email | None = None
    telegram_username: str | None = Field(
        default=None, pattern=r"^@?[A-Za-z0-9_]{5,32}$", max_length=33
    )
    role: Role = Role.MODERATOR


class InviteOut(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    role: Role
    email: str | None
    telegram_username: str | None
    expires_at: datetime
    token: str = Field(description="Secret; shown once. The invitee accepts with it.")


class PendingInviteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    role: Role
    email: str | None
    telegram_username: str | None
    invited_by: uuid.UUID
    created_at: datetime
    expires_at: datetime


class InviteAccept(RequestModel):
    token: str = Field(min_length=16, max_length=128)


class RoleChange(RequestModel):
    role: Role
