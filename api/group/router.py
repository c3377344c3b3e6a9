"""Groups that gate private events: create, invite codes, join, members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    Membership,
    SettingsDep,
    UowDep,
    require_resource_role,
    require_role,
)
from api.errors import responses
from api.group.schemas import (
    GroupCreate,
    GroupInviteCreate,
    GroupInviteOut,
    GroupJoin,
    GroupMemberOut,
    GroupOut,
    GroupPersonInviteCreate,
    GroupPersonInviteCreated,
    GroupPersonInviteOut,
)
from api.pagination import Page, Paging
from domain.errors import ValidationFailed
from domain.group import service
from domain.identity.service import get_user
from domain.organization.service import invite_signing_key

router = APIRouter(tags=["groups"])

OrgReader = Annotated[Membership, Depends(require_role(*READ_ROLES))]
OrgManager = Annotated[Membership, Depends(require_role(*MANAGE_ROLES))]
GroupReader = Annotated[
    Membership, Depends(require_resource_role("groups", "group_id", *READ_ROLES))
]
GroupManager = Annotated[
    Membership, Depends(require_resource_role("groups", "group_id", *MANAGE_ROLES))
]


@router.get(
    "/organizations/{org_id}/groups",
    response_model=Page[GroupOut],
    responses=responses(401, 404),
)
def list_groups(
    org_id: uuid.UUID, member: OrgReader, uow: UowDep, paging: Paging
) -> Page[GroupOut]:
    """The organization's groups by name."""
    return Page[GroupOut].of(service.list_groups(uow, org_id, paging), GroupOut.model_validate)


@router.post(
    "/organizations/{org_id}/groups",
    response_model=GroupOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409),
)
def create_group(org_id: uuid.UUID, body: GroupCreate, member: OrgManager, uow: UowDep) -> GroupOut:
    """Create a group (owners and moderators)."""
    group = service.create_group(
        uow, org_id, name=body.name, description=body.description, actor=member.user_id
    )
    return GroupOut.model_validate(group)


@router.get("/groups/{group_id}", response_model=GroupOut, responses=responses(401, 404))
def get_group(group_id: uuid.UUID, member: GroupReader, uow: UowDep) -> GroupOut:
    """One group of an organization the caller belongs to."""
    return GroupOut.model_validate(service.get_group(uow, group_id))


@router.post(
    "/groups/{group_id}/invite",
    response_model=GroupInviteOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404),
)
def invite(
    group_id: uuid.UUID, member: GroupManager, uow: UowDep, body: GroupInviteCreate | None = None
) -> GroupInviteOut:
    """Issue a new invite code for the group (the previous code stops working)."""
    ttl_s = (body or GroupInviteCreate()).ttl_hours * 3600
    group, code = service.new_invite_code(uow, group_id, ttl_s)
    return GroupInviteOut(group_id=group.id, code=code, expires_at=group.invite_expires_at)


@router.post(
    "/group-invites/accept",
    response_model=GroupOut,
    responses=responses(401, 404, 409),
)
def join(body: GroupJoin, uow: UowDep) -> GroupOut:
    """Join a group with its shared invite code (`code`), or with the code of an invitation
    addressed to the caller (`token`: 403 `invite_mismatch` for another account's)."""
    if (body.code is None) == (body.token is None):
        raise ValidationFailed("Give exactly one of code or token", code="invalid_invite")
    if body.token is not None:
        user = get_user(uow, uow.user_id)
        return GroupOut.model_validate(service.accept_invite(uow, user, body.token))
    return GroupOut.model_validate(service.join(uow, uow.user_id, body.code))


@router.post(
    "/groups/{group_id}/invitations",
    response_model=GroupPersonInviteCreated,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404),
)
def invite_person(
    group_id: uuid.UUID,
    body: GroupPersonInviteCreate,
    member: GroupManager,
    uow: UowDep,
    settings: SettingsDep,
) -> GroupPersonInviteCreated:
    """Invite one person to the group by e-mail or Telegram username (owners and moderators).
    The invitation is sent by e-mail to the address, or by Telegram to the linked account with
    that username; it lives `AQSTREAM_INVITE_TTL_S` and is accepted with POST
    /group-invites/accept {"token"} by that account only."""
    record, token = service.invite(
        uow,
        group_id,
        inviter_id=member.user_id,
        email=body.email,
        telegram_username=body.telegram_username,
        ttl_s=settings.invite_ttl_s,
        key=invite_signing_key(settings.ticket_signing_key.get_secret_value()),
    )
    return GroupPersonInviteCreated(
        **GroupPersonInviteOut.model_validate(record).model_dump(), token=token
    )


@router.get(
    "/groups/{group_id}/invitations",
    response_model=Page[GroupPersonInviteOut],
    responses=responses(401, 403, 404),
)
def list_invitations(
    group_id: uuid.UUID, member: GroupManager, uow: UowDep, paging: Paging
) -> Page[GroupPersonInviteOut]:
    """The group's pending invitations (not accepted, revoked or expired), oldest first."""
    return Page[GroupPersonInviteOut].of(
        service.list_invites(uow, group_id, paging), GroupPersonInviteOut.model_validate
    )


@router.delete(
    "/groups/{group_id}/invitations/{invite_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
def revoke_invitation(
    group_id: uuid.UUID, invite_id: uuid.UUID, member: GroupManager, uow: UowDep
) -> None:
    """Revoke a pending invitation: its code admits nobody, and its message, if still queued,
    is not sent."""
    service.revoke_invite(uow, group_id, invite_id)


@router.get(
    "/groups/{group_id}/members",
    response_model=Page[GroupMemberOut],
    responses=responses(401, 403, 404),
)
def members(
    group_id: uuid.UUID, member: GroupManager, uow: UowDep, paging: Paging
) -> Page[GroupMemberOut]:
    """Members of the group in joining order (owners and moderators)."""
    return Page[GroupMemberOut].of(
        service.list_members(uow, group_id, paging),
        lambda v: GroupMemberOut(
            user_id=v.user.id, display_name=v.user.display_name, joined_at=v.member.created_at
        ),
    )
