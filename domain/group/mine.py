"""A participant's groups: the private events' doors, seen from the member's side.

Row level security lets a user read their own memberships (``group_members_mine``) and the
groups they belong to (``groups_mine``) in any organization, and the published private events of
those groups (``events_visible``); nothing here widens that.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from domain.group.models import Group, GroupMember
from domain.pagination import Keyset, Page, PageRequest, desc
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class Membership:
    group: Group
    joined_at: datetime


def my_groups(uow: UnitOfWork, user_id: uuid.UUID, page: PageRequest) -> Page[Membership]:
    """The user's live groups across organizations, the latest joined first."""
    stmt = (
        select(GroupMember)
        .join(Group, Group.id == GroupMember.group_id)
        .where(
            GroupMember.user_id == user_id,
            GroupMember.deleted_at.is_(None),
            Group.deleted_at.is_(None),
        )
    )
    found = Keyset(desc(GroupMember.id)).page(uow.session, stmt, page)
    groups = {
        g.id: g
        for g in uow.session.scalars(
            select(Group).where(Group.id.in_([m.group_id for m in found.items]))
        )
    }
    return Page([Membership(groups[m.group_id], m.created_at) for m in found.items], found.after)
