"""Declarative base shared by every model: naming convention, UUIDv7 keys, timestamps."""

from __future__ import annotations

import uuid
from datetime import datetime

import uuid_utils
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

UNIQUE_VIOLATION = "23505"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def uuid7() -> uuid.UUID:
    """Time-ordered UUID (RFC 9562 v7): index-friendly primary keys that sort by creation."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}  # noqa: RUF012
    # Server defaults (created_at, ...) come back with the INSERT (RETURNING), so a response
    # needs no second round trip, e.g. while a seat counter row is locked.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def add_unique(session: Session, row: object, on_duplicate: Exception) -> None:
    """Insert ``row`` now; a unique violation raises ``on_duplicate``, any other integrity error
    propagates as the bug it is. Either way the transaction is over: no savepoint is taken (two
    round trips fewer on the registration path), as no caller goes on after a duplicate."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION:
            raise on_duplicate from None
        raise
