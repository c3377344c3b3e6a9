"""Request and response bodies of the group endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.types import RequestModel


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
    code: str = Field(min_length=8, max_length=64)


class GroupMemberOut(BaseModel):
    user_id: uuid.UUID
    display_name: str
    joined_at: datetime
