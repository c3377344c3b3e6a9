"""Request and response bodies of the group endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.types import Email, RequestModel


class GroupCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class GroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID = Field(validation_alias="tenant_id")
    name: str
    description: str | None
    created_at: datetime


class GroupInviteCreate(RequestModel):
    ttl_hours: int = Field(default=168, ge=1, le=24 * 90)


class GroupInviteOut(BaseModel):
    group_id: uuid.UUID
    code: str = Field(description="Share it; whoever holds it can join. A new one replaces it.")
    expires_at: datetime


class GroupJoin(RequestModel):
    # The schema says what the server does: exactly one of the two is a string (the other is
    # absent or null).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["code"],
                    "properties": {"code": {"type": "string"}, "token": {"type": "null"}},
                },
                {
                    "required": ["token"],
                    "properties": {"token": {"type": "string"}, "code": {"type": "null"}},
                },
            ]
        },
    )

    code: str | None = Field(
        default=None, min_length=8, max_length=64, description="The group's shared invite code."
    )
    token: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        description="The code of an invitation addressed to the caller (POST "
        "/groups/{group_id}/invitations), from its e-mail or Telegram message.",
    )


class GroupPersonInviteCreate(RequestModel):
    email: Email | None = None
    telegram_username: str | None = Field(
        default=None, pattern=r"^@?[A-Za-z0-9_]{5,32}$", max_length=33
    )


class GroupPersonInviteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    group_id: uuid.UUID
    email: str | None
    telegram_username: str | None
    invited_by: uuid.UUID
    created_at: datetime
    expires_at: datetime


class GroupPersonInviteCreated(GroupPersonInviteOut):
    token: str = Field(
        description="Secret; shown once. The invitation's message carries it too; the invitee "
        'accepts with it (POST /group-invites/accept {"token"}).'
    )


class GroupMemberOut(BaseModel):
    user_id: uuid.UUID
    display_name: str
    joined_at: datetime
