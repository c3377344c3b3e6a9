"""Waitlist entries: who waits for a sold-out ticket type, in priority then arrival order."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey
from domain.organization.models import _enum


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class WaitlistEntry(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "waitlist_entries"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket_types.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    priority: Mapped[int] = mapped_column(server_default=text("0"))
    status: Mapped[WaitlistStatus] = mapped_column(
        _enum(WaitlistStatus, "waitlist_status"), server_default=text("'waiting'")
    )
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reservations.id"))
    # Arrival order: a sequence is strictly monotonic across API processes; UUIDv7 ids made in
    # two processes within the same millisecond are not.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))

    __table_args__ = (
        Index(
            "uq_waitlist_entries_type_user_live",
            "ticket_type_id",
            "user_id",
            unique=True,
            postgresql_where=text("status IN ('waiting', 'offered')"),
        ),
        Index(
            "ix_waitlist_entries_queue",
            "ticket_type_id",
            text("priority DESC"),
            "seq",
            postgresql_where=text("status = 'waiting'"),
        ),
        Index("ix_waitlist_entries_user_id", "user_id"),
    )

    # --- the offer's transitions (the registration capability drives the last two) ---
    def offer(self, reservation_id: uuid.UUID) -> None:
        """The first in line was given a hold of the freed seat."""
        self.status = WaitlistStatus.OFFERED
        self.reservation_id = reservation_id

    def lapse_offer(self) -> None:
        """The offer's hold expired or was given back: the seat passes on (next sweep)."""
        if self.status == WaitlistStatus.OFFERED:
            self.status = WaitlistStatus.EXPIRED

    def accept_offer(self) -> None:
        """The offer's hold became a registration."""
        if self.status == WaitlistStatus.OFFERED:
            self.status = WaitlistStatus.ACCEPTED
