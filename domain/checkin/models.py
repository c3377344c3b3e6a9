"""Check-ins: one per registration; the scanner's nonce makes a retried scan harmless."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey


class CheckIn(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "check_ins"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    registration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrations.id"))
    nonce: Mapped[str | None] = mapped_column(String(128))
    checked_in_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))

    __table_args__ = (
        Index("uq_check_ins_registration_id", "registration_id", unique=True),
        Index("uq_check_ins_event_nonce", "event_id", "nonce", unique=True),
    )
