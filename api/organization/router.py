"""Organization requests, organizations, members and invitations."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from api.deps import (
    MANAGE_ROLES,
    OWNER_ONLY,
    READ_ROLES,
    Membership,
    SettingsDep,
    UowDep,
    require_platform_admin,
    require_role,
)
from api.errors import ApiError, responses
from api.organization.schemas import (
    InviteAccept,
    InviteCreate,
    InviteOut,
    MemberOut,
    MyOrganization,
    OrganizationCreate,
    OrganizationOut,
    OrganizationRequestCreate,
    OrganizationRequestOut,
    PendingInviteOut,
    ReviewBody,
    RoleChange,
)
from api.pagination import Page, Paging
from domain.identity.service import get_user
from domain.organization import service
from domain.organization.models import RequestStatus
from domain.organization.service import MemberView
from domain.uow import UnitOfWork

router = APIRouter(tags=["organizations"])

AdminUow = Annotated[UnitOfWork, Depends(require_platform_admin)]
Manager = Annotated[Membership, Depends(require_role(*MANAGE_ROLES))]
Owner = Annotated[Membership, Depends(require_role(*OWNER_ONLY))]
Reader = Annotated[Membership, Depends(require_role(*READ_ROLES))]


def _member_out(view: MemberView) -> MemberOut:
    return MemberOut(
        user_id=view.user.id,
        display_name=view.user.display_name,
        email=view.user.email,
        telegram_username=view.user.telegram_username,
        role=view.member.role,
        joined_at=view.member.created_at,
    )


# --- requests -------------------------------------------------------------------------------------


@router.post(
    "/organization-requests",
    response_model=OrganizationRequestOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 409),
)
def create_request(body: OrganizationRequestCreate, uow: UowDep) -> OrganizationRequestOut:
    """Ask the platform to found an organization."""
    request = service.create_request(
        uow, uow.user_id, name=body.name, slug=body.slug, description=body.description
    )
    return OrganizationRequestOut.model_validate(request)


@router.get(
    "/organization-requests",
    response_model=Page[OrganizationRequestOut],
    responses=responses(401),
)
def list_requests(
    uow: UowDep,
    paging: Paging,
    status_filter: Annotated[RequestStatus | None, Query(alias="status")] = None,
) -> Page[OrganizationRequestOut]:
    """Platform admins see every request; anyone else sees their own. Oldest first."""
    page = service.list_requests(uow, status_filter, paging)
    return Page[OrganizationRequestOut].of(page, OrganizationRequestOut.model_validate)


def _review(uow: UnitOfWork, request_id: uuid.UUID, approve: bool, body: ReviewBody | None):
    request = service.review_request(
        uow,
        request_id,
        approve=approve,
        reviewer_id=uow.user_id,
        comment=body.comment if body else None,
    )
    return OrganizationRequestOut.model_validate(request)


@router.post(
    "/organization-requests/{request_id}/approve",
    response_model=OrganizationRequestOut,
    responses=responses(401, 403, 404, 409),
)
def approve_request(
    request_id: uuid.UUID, uow: AdminUow, body: ReviewBody | None = None
) -> OrganizationRequestOut:
    """Platform admin: approve a pending request."""
    return _review(uow, request_id, True, body)


@router.post(
    "/organization-requests/{request_id}/reject",
    response_model=OrganizationRequestOut,
    responses=responses(401, 403, 404, 409),
)
def reject_request(
    request_id: uuid.UUID, uow: AdminUow, body: ReviewBody | None = None
) -> OrganizationRequestOut:
    """Platform admin: reject a pending request."""
    return _review(uow, request_id, False, body)


# --- organizations ----------------------------------------------------------------------------------


@router.post(
    "/organizations",
    response_model=OrganizationOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 404, 409),
)
def create_organization(body: OrganizationCreate, uow: UowDep) -> OrganizationOut:
    """Found the organization of an approved request; the caller becomes its owner."""
    org = service.create_organization(uow, uow.user_id, body.request_id)
    return OrganizationOut.model_validate(org)


@router.get("/organizations", response_model=Page[MyOrganization], responses=responses(401))
def my_organizations(uow: UowDep, paging: Paging) -> Page[MyOrganization]:
    """The organizations the caller belongs to by name, with the caller's role in each."""
    page = service.list_my_organizations(uow, uow.user_id, paging)
    return Page[MyOrganization].of(
        page,
        lambda row: MyOrganization(
            **OrganizationOut.model_validate(row[0]).model_dump(), role=row[1]
        ),
    )


@router.get(
    "/organizations/{org_id}",
    response_model=MyOrganization,
    responses=responses(401, 404),
)
def get_organization(org_id: uuid.UUID, member: Reader, uow: UowDep) -> MyOrganization:
    """One organization the caller belongs to."""
    org = service.get_organization(uow, org_id)
    return MyOrganization(**OrganizationOut.model_validate(org).model_dump(), role=member.role)


@router.get(
    "/organizations/{org_id}/members",
    response_model=Page[MemberOut],
    responses=responses(401, 403, 404),
)
def list_members(
    org_id: uuid.UUID, member: Manager, uow: UowDep, paging: Paging
) -> Page[MemberOut]:
    """Members and their roles in joining order (owners and moderators: it shows contact
    details)."""
    return Page[MemberOut].of(service.list_members(uow, org_id, paging), _member_out)


@router.post(
    "/organizations/{org_id}/invite",
    response_model=InviteOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404),
)
def invite(
    org_id: uuid.UUID, body: InviteCreate, member: Manager, uow: UowDep, settings: SettingsDep
) -> InviteOut:
    """Invite by e-mail or Telegram username; the response carries the one-time token."""
    record, token = service.invite(
        uow,
        org_id,
        inviter_id=member.user_id,
        inviter_role=member.role,
        role=body.role,
        email=body.email,
        telegram_username=body.telegram_username,
        ttl_s=settings.invite_ttl_s,
        key=service.invite_signing_key(settings.ticket_signing_key.get_secret_value()),
    )
    return InviteOut(
        id=record.id,
        organization_id=org_id,
        role=record.role,
        email=record.email,
        telegram_username=record.telegram_username,
        expires_at=record.expires_at,
        token=token,
    )


@router.get(
    "/organizations/{org_id}/invitations",
    response_model=Page[PendingInviteOut],
    responses=responses(401, 403, 404),
)
def list_invitations(
    org_id: uuid.UUID, member: Manager, uow: UowDep, paging: Paging
) -> Page[PendingInviteOut]:
    """Pending invitations (not accepted, revoked or expired), oldest first (owners and
    moderators)."""
    return Page[PendingInviteOut].of(
        service.list_invites(uow, org_id, paging), PendingInviteOut.model_validate
    )


@router.delete(
    "/organizations/{org_id}/invitations/{invite_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
def revoke_invitation(
    org_id: uuid.UUID, invite_id: uuid.UUID, member: Manager, uow: UowDep
) -> None:
    """Revoke a pending invitation: its token stops working (only owners revoke an owner's)."""
    service.revoke_invite(uow, org_id, invite_id, revoker_role=member.role)


@router.post(
    "/organization-invites/accept",
    response_model=MyOrganization,
    responses=responses(401, 403, 404, 409),
)
def accept_invite(body: InviteAccept, uow: UowDep) -> MyOrganization:
    """Join the organization an invitation addressed to the caller names."""
    member = service.accept_invite(uow, get_user(uow, uow.user_id), body.token)
    org = service.get_organization(uow, member.tenant_id)
    return MyOrganization(**OrganizationOut.model_validate(org).model_dump(), role=member.role)


@router.patch(
    "/organizations/{org_id}/members/{user_id}",
    response_model=MemberOut,
    responses=responses(401, 403, 404, 409),
)
def change_role(
    org_id: uuid.UUID, user_id: uuid.UUID, body: RoleChange, owner: Owner, uow: UowDep
) -> MemberOut:
    """Owner: change a member's role. The last owner cannot be demoted."""
    service.change_role(uow, org_id, user_id, body.role)
    return _member_out(service.member_view(uow, org_id, user_id))


@router.delete(
    "/organizations/{org_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409),
)
def remove_member(org_id: uuid.UUID, user_id: uuid.UUID, member: Reader, uow: UowDep) -> None:
    """Owner: remove a member; any member: leave. The last owner cannot be removed."""
    if user_id != member.user_id and member.role.value != "owner":
        raise ApiError(403, "insufficient_role", "Only owners remove other members")
    service.remove_member(uow, org_id, user_id)
