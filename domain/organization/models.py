"""Organizations are the tenants; members carry a role; requests and invites lead to both."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey


class Role(enum.StrEnum):
    OWNER = "owner"
    MODERATOR = "moderator"
    ANALYST = "analyst"


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Organization(UUIDPrimaryKey, Timestamps, Base):
    """The tenant. Its ``id`` is the ``tenant_id`` of everything it owns."""

    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organization_requests.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None]
    # An image of this organization's own (composite foreign key); see docs/media.md.
    logo_media_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        # use_alter: media references organizations too (a cycle, resolved after both exist).
        ForeignKeyConstraint(
            ["id", "logo_media_id"], ["media.tenant_id", "media.id"], use_alter=True
        ),
        Index(
            "ix_organizations_logo_media_id",
            "logo_media_id",
            postgresql_where=text("logo_media_id IS NOT NULL"),
        ),
        Index(
            "uq_organizations_slug",
            "slug",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("uq_organizations_request_id", "request_id", unique=True),
    )


class OrganizationMember(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "organization_members"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    role: Mapped[Role] = mapped_column(_enum(Role, "member_role"))
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_organization_members_tenant_user",
            "tenant_id",
            "user_id",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_organization_members_user_id", "user_id"),
    )


class OrganizationRequest(UUIDPrimaryKey, Timestamps, Base):
    """A user's request to found an organization; a platform admin approves or rejects it."""

    __tablename__ = "organization_requests"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, "organization_request_status"), server_default=text("'pending'")
    )
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    review_comment: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_organization_requests_user_id", "user_id"),
        # At most one pending request per user, even under concurrent submissions.
        Index(
            "uq_organization_requests_pending_user",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )


class OrganizationInvite(UUIDPrimaryKey, Timestamps, Base):
    """An invitation to join with a role; accepted by whoever holds the token (hash stored)."""

    __tablename__ = "organization_invites"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    email: Mapped[str | None] = mapped_column(String(320))
    telegram_username: Mapped[str | None] = mapped_column(String(64))
    # An invitation to the organization has a role; one to a group of it has the group instead
    # (accepting makes a group member, not an organization member; migration 0025).
    role: Mapped[Role | None] = mapped_column(_enum(Role, "member_role"))
    group_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("groups.id"))
    token_hash: Mapped[str] = mapped_column(String(64))
    invited_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None]

    __table_args__ = (
        Index("uq_organization_invites_token_hash", "token_hash", unique=True),
        Index("ix_organization_invites_tenant_id", "tenant_id"),
        Index(
            "ix_organization_invites_group_id",
            "group_id",
            postgresql_where=text("group_id IS NOT NULL"),
        ),
    )
