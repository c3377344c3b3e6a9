"""Groups for private events: creation, invite codes, invitations to a person, joining."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from domain.db.base import add_unique, uuid7
from domain.errors import Conflict, InvalidState, NotFound, ValidationFailed
from domain.group.events import GroupCreated, GroupMemberAdded, GroupMemberInvited
from domain.group.models import Group, GroupMember
from domain.identity.models import User
from domain.organization.models import OrganizationInvite
from domain.organization.service import invite_token, pending_invite, token_hash
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
    _add_member(uow, group, user_id)
    return group


def _add_member(uow: UnitOfWork, group: Group, user_id: uuid.UUID) -> GroupMember:
    member = GroupMember(id=uuid7(), tenant_id=group.tenant_id, group_id=group.id, user_id=user_id)
    add_unique(
        uow.session, member, Conflict("Already a member of this group", code="already_member")
    )
    uow.emit(GroupMemberAdded.of(member))
    return member


# --- invitations to a person (migration 0025) -------------------------------------------------


def invite(
    uow: UnitOfWork,
    group_id: uuid.UUID,
    *,
    inviter_id: uuid.UUID,
    email: str | None,
    telegram_username: str | None,
    ttl_s: int,
    key: bytes,
) -> tuple[OrganizationInvite, str]:
    """Invite one person to the group, by e-mail or Telegram username; returns the invitation
    and its token (derived from the invitation's id with ``key``, as an organization's is, so the
    message can draw it again when sent)."""
    if (email is None) == (telegram_username is None):
        raise ValidationFailed(
            "Give exactly one of email or telegram_username", code="invalid_invite"
        )
    group = get_group(uow, group_id)
    if email is not None:
        from domain.identity.service import normalize_email

        email = normalize_email(email)
    invite_id = uuid7()
    token = invite_token(key, invite_id)
    record = OrganizationInvite(
        id=invite_id,
        tenant_id=group.tenant_id,
        group_id=group.id,
        role=None,
        email=email,
        telegram_username=telegram_username.lstrip("@").lower() if telegram_username else None,
        token_hash=token_hash(token),
        invited_by=inviter_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
    )
    uow.session.add(record)
    uow.session.flush()
    uow.emit(GroupMemberInvited.of(record))
    return record, token


def list_invites(
    uow: UnitOfWork, group_id: uuid.UUID, page: PageRequest, *, now: datetime | None = None
) -> Page[OrganizationInvite]:
    """The group's pending invitations (neither accepted, revoked nor expired), oldest first."""
    get_group(uow, group_id)
    stmt = select(OrganizationInvite).where(
        OrganizationInvite.group_id == group_id,
        OrganizationInvite.accepted_at.is_(None),
        OrganizationInvite.expires_at > (now or datetime.now(UTC)),
    )
    return Keyset(OrganizationInvite.id).page(uow.session, stmt, page)


def revoke_invite(
    uow: UnitOfWork, group_id: uuid.UUID, invite_id: uuid.UUID, *, now: datetime | None = None
) -> None:
    """Withdraw a pending invitation: it expires now, so its token admits nobody and a message
    still queued for it is not sent."""
    now = now or datetime.now(UTC)
    record = uow.session.scalar(
        select(OrganizationInvite)
        .where(OrganizationInvite.group_id == group_id, OrganizationInvite.id == invite_id)
        .with_for_update()
    )
    if record is None or record.accepted_at is not None or record.expires_at <= now:
        raise NotFound("Pending invitation not found")
    record.expires_at = now
    uow.session.flush()


def accept_invite(uow: UnitOfWork, user: User, token: str) -> Group:
    """Join the group an invitation addressed to this account names."""
    invite_row = pending_invite(uow, user, token, to_group=True)
    assert invite_row.group_id is not None
    uow.enter_tenant(invite_row.tenant_id)
    group = get_group(uow, invite_row.group_id)
    _add_member(uow, group, user.id)
    invite_row.accepted_at = datetime.now(UTC)
    invite_row.accepted_by = user.id
    uow.session.flush()
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
