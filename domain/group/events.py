"""Events of the group capability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class GroupCreated(DomainEvent):
    event_type = "group.created"
    aggregate_type = "group"

    group_id: uuid.UUID
    organization_id: uuid.UUID
    name: str


@dataclass(frozen=True, kw_only=True)
class GroupMemberAdded(DomainEvent):
    event_type = "group.member.added"
    aggregate_type = "group"

    group_id: uuid.UUID
    organization_id: uuid.UUID
    user_id: uuid.UUID
