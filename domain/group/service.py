"""Groups for private events: creation, invite codes, joining."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from domain.db.base import add_unique, uuid7
from domain.errors import Conflict, InvalidState, NotFound
from domain.group.events import GroupCreated, GroupMemberAdded
from domain.group.models import Group, GroupMember
from domain.identity.models import User
from domain.organization.service import token_hash
from domain.pagination import Keyset, Page, PageRequest
from domain.uow import UnitOfWork


def create_group(
    uow: UnitOfWork, tenant_id: uuid.UUID, *, name: str, description: str | None, actor: uuid.UUID
) -> Group:
    group = Group(
        id=uuid7(),
        tenant_id=tenant_id,
        name=name.strip(),
        description=description,
        created_by=actor,
    )
    add_unique(uow.session, group, Conflict("A group with this name exists", code="group_exists"))
    uow.emit(GroupCreated.of(group))
    return group


def list_groups(uow: UnitOfWork, tenant_id: uuid.UUID, page: PageRequest) -> Page[Group]:
    """The organization's groups by name."""
    stmt = select(Group).where(Group.tenant_id == tenant_id, Group.deleted_at.is_(None))
    return Keyset(Group.name, Group.id).page(uow.session, stmt, page)


def get_group(uow: UnitOfWork, group_id: uuid.UUID) -> Group:
    group = uow.session.get(Group, group_id)
    if group is None or group.deleted_at is not None:
        raise NotFound("Group not found")
    return group


def new_invite_code(uow: UnitOfWork, group_id: uuid.UUID, ttl_s: int) -> tuple[Group, str]:
    """A fresh invite code (the previous one stops working)."""
    group = get_group(uow, group_id)
    code = secrets.token_urlsafe(12)
    group.invite_code_hash = token_hash(code)
    group.invite_expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    uow.session.flush()
    return group, code


def join(uow: UnitOfWork, user_id: uuid.UUID, code: str) -> Group:
    """Join the group an invite code opens."""
    uow.set_capability("group_invite", token_hash(code))
    group = uow.session.scalar(select(Group).where(Group.invite_code_hash == token_hash(code)))
    if group is None or group.deleted_at is not None:
        raise NotFound("Invite code not found")
    if group.invite_expires_at is not None and group.invite_expires_at <= datetime.now(UTC):
        raise InvalidState("Invite code expired", details={"status": "expired"})
    uow.enter_tenant(group.tenant_id)
    member = GroupMember(id=uuid7(), tenant_id=group.tenant_id, group_id=group.id, user_id=user_id)
    add_unique(
        uow.session, member, Conflict("Already a member of this group", code="already_member")
    )
    uow.emit(GroupMemberAdded.of(member))
    return group


@dataclass(frozen=True)
class GroupMemberView:
    member: GroupMember
    user: User


def list_members(uow: UnitOfWork, group_id: uuid.UUID, page: PageRequest) -> Page[GroupMemberView]:
    """The group's members in joining order."""
    get_group(uow, group_id)
    stmt = (
        select(GroupMember, User)
        .join(User, User.id == GroupMember.user_id)
        .where(GroupMember.group_id == group_id, GroupMember.deleted_at.is_(None))
    )
    rows = Keyset(GroupMember.id).page(uow.session, stmt, page)
    return Page([GroupMemberView(m, u) for m, u in rows.items], rows.after)
