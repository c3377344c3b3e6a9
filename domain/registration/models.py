"""Reservations (timed seat holds) and registrations (a participant's seats at an event)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey
from domain.organization.models import _enum


class ReservationStatus(enum.StrEnum):
    ACTIVE = "active"
    CONVERTED = "converted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class RegistrationStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class PaymentMode(enum.StrEnum):
    FREE = "free"
    FULL = "full"
    DEPOSIT = "deposit"


class Reservation(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "reservations"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket_types.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    quantity: Mapped[int]
    status: Mapped[ReservationStatus] = mapped_column(
        _enum(ReservationStatus, "reservation_status"), server_default=text("'active'")
    )
    expires_at: Mapped[datetime]
    waitlist_entry_id: Mapped[uuid.UUID | None]
    # The tracking visitor who made the hold (analytics attribution; docs/tracking.md)
    visitor_id: Mapped[str | None] = mapped_column(String(64))
    # The seat counters' shards that gave the seats (claim_seats writes them; migration 0023)
    seat_shard: Mapped[int | None] = mapped_column(SmallInteger)
    event_seat_shard: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 100", name="quantity_range"),
        Index("ix_reservations_due", "expires_at", postgresql_where=text("status = 'active'")),
        Index("ix_reservations_user_id", "user_id"),
        Index(
            "ix_reservations_user_event_active",
            "user_id",
            "event_id",
            postgresql_where=text("status = 'active'"),
        ),
    )


class Registration(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "registrations"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    ticket_type_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket_types.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    reservation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reservations.id"))
    quantity: Mapped[int]
    status: Mapped[RegistrationStatus] = mapped_column(
        _enum(RegistrationStatus, "registration_status")
    )
    payment_mode: Mapped[PaymentMode] = mapped_column(_enum(PaymentMode, "payment_mode"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_total: Mapped[int] = mapped_column(BigInteger)
    amount_due_now: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    ticket_secret: Mapped[str] = mapped_column(String(32))
    confirmed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(64))
    checked_in_at: Mapped[datetime | None]
    # The tracking visitor who registered (analytics attribution; docs/tracking.md)
    visitor_id: Mapped[str | None] = mapped_column(String(64))
    # Shown on the event's participant list (the participant's choice; migration 0021).
    listed: Mapped[bool] = mapped_column(server_default=text("true"))
    # What the event's refund policy gave back when the participant cancelled (the payment saga
    # asks the provider for it); null unless the participant cancelled.
    refund_due: Mapped[int | None] = mapped_column(BigInteger)
    # The seat counters' shards that gave the seats (its hold's, or claim_seats writes them)
    seat_shard: Mapped[int | None] = mapped_column(SmallInteger)
    event_seat_shard: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 100", name="quantity_range"),
        CheckConstraint(
            "refund_due IS NULL OR (refund_due >= 0 AND refund_due <= amount_paid)",
            name="refund_due_range",
        ),
        CheckConstraint(
            "amount_paid >= 0 AND amount_due_now <= amount_total", name="amounts_consistent"
        ),
        # One live registration per participant and event (a double click is not two seats).
        Index(
            "uq_registrations_event_user_live",
            "event_id",
            "user_id",
            unique=True,
            postgresql_where=text("status <> 'cancelled'"),
        ),
        Index("uq_registrations_reservation_id", "reservation_id", unique=True),
        Index("ix_registrations_event_id_id", "event_id", "id"),
        Index("ix_registrations_event_status_id", "event_id", "status", "id"),
        Index("ix_registrations_user_id", "user_id"),
    )


class SeatCounter(Base):
    """One shard of a seat counter: a ticket type's (``counter_id`` = its id) or an event-wide
    capacity's (the event's id). Written only by the database's seat functions (migration 0023),
    never by a foreign key's target: no table references it."""

    __tablename__ = "seat_counters"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    counter_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    capacity: Mapped[int]
    sold: Mapped[int] = mapped_column(server_default=text("0"))

    __table_args__ = (
        CheckConstraint("sold >= 0 AND sold <= capacity", name="within_capacity"),
        CheckConstraint("shard BETWEEN 0 AND 15", name="shard_range"),
        Index("ix_seat_counters_event_id", "event_id"),
    )
