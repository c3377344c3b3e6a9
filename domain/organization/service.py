"""Organization requests, organizations, membership and invitations."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from domain.db.base import add_unique, uuid7
from domain.errors import Conflict, InvalidState, NotFound, PermissionDenied, ValidationFailed
from domain.identity.models import User
from domain.media.service import usable_image
from domain.organization.events import (
    MemberAdded,
    MemberInvited,
    MemberRemoved,
    MemberRoleChanged,
    OrganizationCreated,
    OrganizationRequestCreated,
    OrganizationRequestReviewed,
)
from domain.organization.models import (
    Organization,
    OrganizationInvite,
    OrganizationMember,
    OrganizationRequest,
    RequestStatus,
    Role,
)
from domain.pagination import Keyset, Page, PageRequest
from domain.uow import UnitOfWork

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_INVITE_KEY_LABEL = b"aqstream:organization-invite"


def invite_signing_key(ticket_signing_key: str) -> bytes:
    """The invitation tokens' key, derived from the platform's ticket signing key."""
    return hmac.new(ticket_signing_key.encode(), _INVITE_KEY_LABEL, hashlib.sha256).digest()


def invite_token(key: bytes, invite_id: uuid.UUID) -> str:
    """The token of ``invite_id`` (43 URL-safe characters). Drawn again from the id when the
    invitation is sent, so the clear token rests nowhere: only its hash is stored, and the
    queued message holds a placeholder (docs/notifications.md, Invitations)."""
    digest = hmac.new(key, invite_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _now() -> datetime:
    return datetime.now(UTC)


def _check_slug(slug: str) -> str:
    slug = slug.strip().lower()
    if not SLUG.match(slug):
        raise ValidationFailed(
            "Slug: 3-64 lower-case letters, digits and inner hyphens", code="invalid_slug"
        )
    return slug


# --- requests -------------------------------------------------------------------------------------


def create_request(
    uow: UnitOfWork, user_id: uuid.UUID, *, name: str, slug: str, description: str | None
) -> OrganizationRequest:
    """Ask the platform to found an organization."""
    slug = _check_slug(slug)
    request = OrganizationRequest(
        id=uuid7(), user_id=user_id, name=name.strip(), slug=slug, description=description
    )
    add_unique(  # uq_organization_requests_pending_user
        uow.session, request, Conflict("You already have a pending request", code="request_pending")
    )
    uow.emit(OrganizationRequestCreated.of(request))
    return request


def list_requests(
    uow: UnitOfWork, status: RequestStatus | None, page: PageRequest
) -> Page[OrganizationRequest]:
    """The caller's own requests, oldest first; every request for a platform admin (RLS
    decides)."""
    query = select(OrganizationRequest)
    if status is not None:
        query = query.where(OrganizationRequest.status == status)
    return Keyset(OrganizationRequest.id).page(uow.session, query, page)


def review_request(
    uow: UnitOfWork,
    request_id: uuid.UUID,
    *,
    approve: bool,
    reviewer_id: uuid.UUID,
    comment: str | None,
) -> OrganizationRequest:
    if not uow.platform_admin:
        raise PermissionDenied("Platform administrators only")
    request = uow.session.get(OrganizationRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound("Organization request not found")
    if request.status != RequestStatus.PENDING:
        raise InvalidState(
            f"Request is already {request.status.value}", details={"status": request.status.value}
        )
    request.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
    request.reviewed_by = reviewer_id
    request.reviewed_at = _now()
    request.review_comment = comment
    uow.session.flush()
    uow.emit(OrganizationRequestReviewed.of(request))
    return request


# --- organizations ----------------------------------------------------------------------------------


def create_organization(uow: UnitOfWork, user_id: uuid.UUID, request_id: uuid.UUID) -> Organization:
    """Found the organization an approved request describes; the requester becomes its owner."""
    request = uow.session.get(OrganizationRequest, request_id, with_for_update=True)
    if request is None or request.user_id != user_id:
        raise NotFound("Organization request not found")
    if request.status != RequestStatus.APPROVED:
        raise InvalidState("The request is not approved", details={"status": request.status.value})
    org = Organization(
        id=uuid7(),
        name=request.name,
        slug=request.slug,
        description=request.description,
        request_id=request.id,
        created_by=user_id,
    )
    uow.enter_tenant(org.id)
    add_unique(
        uow.session,
        org,
        Conflict(
            "An organization with this slug exists, or this request was already used",
            code="organization_exists",
        ),
    )
    # Before the owner's membership: consumers learn of the organization first.
    uow.emit(OrganizationCreated.of(org))
    _add_member(uow, org.id, user_id, Role.OWNER)
    return org


def list_my_organizations(
    uow: UnitOfWork, user_id: uuid.UUID, page: PageRequest
) -> Page[tuple[Organization, Role]]:
    """The user's organizations by name, each with the user's role in it."""
    stmt = (
        select(Organization, OrganizationMember.role)
        .join(OrganizationMember, OrganizationMember.tenant_id == Organization.id)
        .where(
            OrganizationMember.user_id == user_id,
            OrganizationMember.deleted_at.is_(None),
            Organization.deleted_at.is_(None),
        )
    )
    return Keyset(Organization.name, Organization.id).page(uow.session, stmt, page)


def get_organization(uow: UnitOfWork, org_id: uuid.UUID) -> Organization:
    org = uow.session.get(Organization, org_id)
    if org is None or org.deleted_at is not None:
        raise NotFound("Organization not found")
    return org


def set_logo(uow: UnitOfWork, org_id: uuid.UUID, media_id: uuid.UUID | None) -> Organization:
    """Point the organization's logo at an image of its own (None removes it)."""
    org = get_organization(uow, org_id)
    if media_id is not None:
        usable_image(uow, media_id, org.id)
    org.logo_media_id = media_id
    uow.session.flush()
    return org


def membership_role(uow: UnitOfWork, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Role | None:
    """The user's role in the tenant, or None (visible through the user's own memberships)."""
    return uow.session.scalar(
        select(OrganizationMember.role).where(
            OrganizationMember.tenant_id == tenant_id,
            OrganizationMember.user_id == user_id,
            OrganizationMember.deleted_at.is_(None),
        )
    )


def _add_member(uow: UnitOfWork, tenant_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> None:
    member = OrganizationMember(id=uuid7(), tenant_id=tenant_id, user_id=user_id, role=role)
    add_unique(
        uow.session,
        member,
        Conflict("Already a member of this organization", code="already_member"),
    )
    uow.emit(MemberAdded.of(member))


@dataclass(frozen=True)
class MemberView:
    member: OrganizationMember
    user: User


def list_members(uow: UnitOfWork, tenant_id: uuid.UUID, page: PageRequest) -> Page[MemberView]:
    """The organization's members, in joining order."""
    stmt = (
        select(OrganizationMember, User)
        .join(User, User.id == OrganizationMember.user_id)
        .where(OrganizationMember.tenant_id == tenant_id, OrganizationMember.deleted_at.is_(None))
    )
    rows = Keyset(OrganizationMember.id).page(uow.session, stmt, page)
    return Page([MemberView(m, u) for m, u in rows.items], rows.after)


def member_view(uow: UnitOfWork, tenant_id: uuid.UUID, user_id: uuid.UUID) -> MemberView:
    """One member of the organization with their account."""
    member = _member(uow, tenant_id, user_id)
    return MemberView(member, uow.session.get_one(User, member.user_id))


def _lock_tenant(uow: UnitOfWork, tenant_id: uuid.UUID) -> None:
    """Serialise membership changes of one tenant (the last-owner rule needs it)."""
    uow.session.execute(
        select(Organization.id).where(Organization.id == tenant_id).with_for_update()
    )


def _member(uow: UnitOfWork, tenant_id: uuid.UUID, user_id: uuid.UUID) -> OrganizationMember:
    member = uow.session.scalar(
        select(OrganizationMember).where(
            OrganizationMember.tenant_id == tenant_id,
            OrganizationMember.user_id == user_id,
            OrganizationMember.deleted_at.is_(None),
        )
    )
    if member is None:
        raise NotFound("Member not found")
    return member


def _owners(uow: UnitOfWork, tenant_id: uuid.UUID) -> int:
    return uow.session.scalar(
        select(func.count())
        .select_from(OrganizationMember)
        .where(
            OrganizationMember.tenant_id == tenant_id,
            OrganizationMember.role == Role.OWNER,
            OrganizationMember.deleted_at.is_(None),
        )
    )


def change_role(
    uow: UnitOfWork, tenant_id: uuid.UUID, user_id: uuid.UUID, new_role: Role
) -> OrganizationMember:
    _lock_tenant(uow, tenant_id)
    member = _member(uow, tenant_id, user_id)
    old = member.role
    if old == new_role:
        return member
    if old == Role.OWNER and _owners(uow, tenant_id) == 1:
        raise Conflict("The last owner cannot be demoted", code="last_owner")
    member.role = new_role
    uow.session.flush()
    uow.emit(MemberRoleChanged.of(member, old_role=old))
    return member


def remove_member(uow: UnitOfWork, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    _lock_tenant(uow, tenant_id)
    member = _member(uow, tenant_id, user_id)
    if member.role == Role.OWNER and _owners(uow, tenant_id) == 1:
        raise Conflict("The last owner cannot be removed", code="last_owner")
    member.deleted_at = _now()
    uow.session.flush()
    uow.emit(MemberRemoved.of(member))


# --- invitations ------------------------------------------------------------------------------------


def invite(
    uow: UnitOfWork,
    tenant_id: uuid.UUID,
    *,
    inviter_id: uuid.UUID,
    inviter_role: Role,
    role: Role,
    email: str | None,
    telegram_username: str | None,
    ttl_s: int,
    key: bytes | None = None,
) -> tuple[OrganizationInvite, str]:
    """Invite someone by e-mail or Telegram username; returns the invite and its secret token
    (derived from the invite's id with ``key``, so the invitation message can draw it again;
    random without one)."""
    if (email is None) == (telegram_username is None):
        raise ValidationFailed(
            "Give exactly one of email or telegram_username", code="invalid_invite"
        )
    if role == Role.OWNER and inviter_role != Role.OWNER:
        raise PermissionDenied("Only owners may invite owners")
    if email is not None:
        from domain.identity.service import normalize_email

        email = normalize_email(email)
    invite_id = uuid7()
    token = invite_token(key, invite_id) if key is not None else secrets.token_urlsafe(32)
    record = OrganizationInvite(
        id=invite_id,
        tenant_id=tenant_id,
        email=email,
        telegram_username=telegram_username.lstrip("@").lower() if telegram_username else None,
        role=role,
        token_hash=token_hash(token),
        invited_by=inviter_id,
        expires_at=_now() + timedelta(seconds=ttl_s),
    )
    uow.session.add(record)
    uow.session.flush()
    uow.emit(MemberInvited.of(record))
    return record, token


def list_invites(
    uow: UnitOfWork, tenant_id: uuid.UUID, page: PageRequest, *, now: datetime | None = None
) -> Page[OrganizationInvite]:
    """The organization's pending invitations (neither accepted, revoked nor expired), oldest
    first."""
    stmt = select(OrganizationInvite).where(
        OrganizationInvite.tenant_id == tenant_id,
        OrganizationInvite.group_id.is_(None),  # a group's are listed with the group
        OrganizationInvite.accepted_at.is_(None),
        OrganizationInvite.expires_at > (now or _now()),
    )
    return Keyset(OrganizationInvite.id).page(uow.session, stmt, page)


def revoke_invite(
    uow: UnitOfWork,
    tenant_id: uuid.UUID,
    invite_id: uuid.UUID,
    *,
    revoker_role: Role,
    now: datetime | None = None,
) -> None:
    """Withdraw a pending invitation: it expires now, so its token no longer admits anyone."""
    now = now or _now()
    record = uow.session.scalar(
        select(OrganizationInvite)
        .where(
            OrganizationInvite.tenant_id == tenant_id,
            OrganizationInvite.id == invite_id,
            OrganizationInvite.group_id.is_(None),
        )
        .with_for_update()
    )
    if record is None or record.accepted_at is not None or record.expires_at <= now:
        raise NotFound("Pending invitation not found")
    if record.role == Role.OWNER and revoker_role != Role.OWNER:
        raise PermissionDenied("Only owners may revoke an owner's invitation")
    record.expires_at = now
    uow.session.flush()


def pending_invite(
    uow: UnitOfWork, user: User, token: str, *, to_group: bool
) -> OrganizationInvite:
    """The live invitation ``token`` opens, addressed to this account: to a group of the
    organization (``to_group``) or to the organization itself; any other is not found."""
    uow.set_capability("invite_token", token_hash(token))
    invite_row = uow.session.scalar(
        select(OrganizationInvite).where(OrganizationInvite.token_hash == token_hash(token))
    )
    if invite_row is None or (invite_row.group_id is not None) != to_group:
        raise NotFound("Invitation not found")
    if invite_row.accepted_at is not None:
        raise InvalidState("Invitation already used", details={"status": "accepted"})
    if invite_row.expires_at <= _now():
        raise InvalidState("Invitation expired", details={"status": "expired"})
    addressed_to_me = (invite_row.email is not None and invite_row.email == user.email) or (
        invite_row.telegram_username is not None
        and (user.telegram_username or "").lower() == invite_row.telegram_username
    )
    if not addressed_to_me:
        raise PermissionDenied(
            "This invitation is addressed to another account", code="invite_mismatch"
        )
    return invite_row


def accept_invite(uow: UnitOfWork, user: User, token: str) -> OrganizationMember:
    """Join the organization an invite names; the invite must be addressed to this account."""
    invite_row = pending_invite(uow, user, token, to_group=False)
    assert invite_row.role is not None
    uow.enter_tenant(invite_row.tenant_id)
    _add_member(uow, invite_row.tenant_id, user.id, invite_row.role)
    invite_row.accepted_at = _now()
    invite_row.accepted_by = user.id
    uow.session.flush()
    return _member(uow, invite_row.tenant_id, user.id)
