"""Groups that gate private events: create, invite codes, join, members."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from api.deps import (
    MANAGE_ROLES,
    READ_ROLES,
    Membership,
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
)
from api.pagination import Page, Paging
from domain.group import service

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
    """Join a group with its invite code."""
    return GroupOut.model_validate(service.join(uow, uow.user_id, body.code))


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
