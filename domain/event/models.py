"""Events and their ticket types. ``sold`` counts held and registered seats: the sum of the
sharded seat counters (``seat_counters``, migration 0023), which the database keeps within
capacity (CHECK constraints and conditional updates); read-only here."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    column,
    func,
    select,
    table,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey
from domain.organization.models import _enum


class EventStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class ParticipantsVisibility(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Event(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "events"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64))
    venue: Mapped[str | None] = mapped_column(String(500))
    online_url: Mapped[str | None] = mapped_column(String(2000))
    capacity: Mapped[int | None]
    visibility: Mapped[Visibility] = mapped_column(
        _enum(Visibility, "event_visibility"), server_default=text("'public'")
    )
    group_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("groups.id"))
    participants_visibility: Mapped[ParticipantsVisibility] = mapped_column(
        _enum(ParticipantsVisibility, "participants_visibility"), server_default=text("'closed'")
    )
    registration_opens_at: Mapped[datetime | None]
    registration_closes_at: Mapped[datetime | None]
    hold_minutes: Mapped[int] = mapped_column(server_default=text("15"))
    # What one account may hold at once (migration 0014): holds, and seats over all of them.
    max_holds_per_account: Mapped[int] = mapped_column(server_default=text("3"))
    max_held_seats_per_account: Mapped[int] = mapped_column(server_default=text("10"))
    # Prepayment: the rest of a deposit is due by this time (null: when the event starts); an
    # unpaid remainder then cancels the registration, refunding the deposit if the flag says so.
    remainder_due_at: Mapped[datetime | None]
    refund_deposit_on_default: Mapped[bool] = mapped_column(server_default=text("false"))
    # A participant's own cancellation refunds what they paid until this many days before the
    # start (null: nothing), less a fee: a percent of it or a fixed amount, never both
    # (migration 0021; domain/payment/refund_policy.py).
    refund_days_before_start: Mapped[int | None]
    refund_fee_percent: Mapped[int | None]
    refund_fee_amount: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[EventStatus] = mapped_column(
        _enum(EventStatus, "event_status"), server_default=text("'draft'")
    )
    published_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None]
    # An image of the same tenant (composite foreign key); see docs/media.md.
    cover_media_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "cover_media_id"], ["media.tenant_id", "media.id"]),
        Index(
            "ix_events_cover_media_id",
            "cover_media_id",
            postgresql_where=text("cover_media_id IS NOT NULL"),
        ),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("hold_minutes BETWEEN 1 AND 1440", name="hold_minutes_range"),
        CheckConstraint("max_holds_per_account >= 1", name="max_holds_per_account"),
        CheckConstraint("max_held_seats_per_account >= 1", name="max_held_seats_per_account"),
        CheckConstraint(
            "remainder_due_at IS NULL OR remainder_due_at <= starts_at", name="remainder_due_order"
        ),
        CheckConstraint(
            "(visibility = 'private') = (group_id IS NOT NULL)", name="private_needs_group"
        ),
        CheckConstraint(
            "refund_days_before_start IS NULL OR refund_days_before_start BETWEEN 0 AND 365",
            name="refund_days_range",
        ),
        CheckConstraint(
            "(refund_fee_percent IS NULL OR refund_fee_percent BETWEEN 1 AND 99)"
            " AND (refund_fee_amount IS NULL OR refund_fee_amount > 0)",
            name="refund_fee_range",
        ),
        CheckConstraint(
            "refund_fee_percent IS NULL OR refund_fee_amount IS NULL", name="refund_one_fee"
        ),
        CheckConstraint(
            "refund_days_before_start IS NOT NULL"
            " OR (refund_fee_percent IS NULL AND refund_fee_amount IS NULL)",
            name="refund_fee_needs_deadline",
        ),
        Index("ix_events_tenant_id_starts_at", "tenant_id", "starts_at"),
        Index(
            "ix_events_listing",
            "starts_at",
            "id",
            postgresql_where=text("status = 'published' AND deleted_at IS NULL"),
        ),
    )


class TicketType(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "ticket_types"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price_amount: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    currency: Mapped[str] = mapped_column(String(3), server_default=text("'EUR'"))
    capacity: Mapped[int]
    sales_starts_at: Mapped[datetime | None]
    sales_ends_at: Mapped[datetime | None]
    max_per_order: Mapped[int] = mapped_column(server_default=text("10"))
    max_held_seats_per_account: Mapped[int | None]  # null: the event's limit only
    deposit_amount: Mapped[int | None] = mapped_column(BigInteger)
    deposit_percent: Mapped[int | None]
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    deleted_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_non_negative"),
        CheckConstraint("price_amount >= 0", name="price_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        CheckConstraint("max_per_order BETWEEN 1 AND 100", name="max_per_order_range"),
        CheckConstraint("max_held_seats_per_account >= 1", name="max_held_seats_per_account"),
        CheckConstraint(
            "deposit_amount IS NULL OR deposit_percent IS NULL", name="one_deposit_form"
        ),
        CheckConstraint(
            "deposit_amount IS NULL OR (deposit_amount > 0 AND deposit_amount < price_amount)",
            name="deposit_amount_range",
        ),
        CheckConstraint(
            "deposit_percent IS NULL OR deposit_percent BETWEEN 1 AND 99",
            name="deposit_percent_range",
        ),
        CheckConstraint(
            "sales_ends_at IS NULL OR sales_starts_at IS NULL OR sales_ends_at > sales_starts_at",
            name="sales_window_order",
        ),
        Index("ix_ticket_types_event_id", "event_id"),
    )


# ``sold``: the sum of the counter's shards (the seat counters by table name: their model is the
# registration package's, which builds on this one). Loaded with the row, never written.
_seat_counters = table("seat_counters", column("counter_id"), column("sold"))
for _owner in (Event, TicketType):
    _owner.sold = column_property(
        select(func.coalesce(func.sum(_seat_counters.c.sold), 0))
        .where(_seat_counters.c.counter_id == _owner.id)
        .correlate_except(_seat_counters)
        .scalar_subquery()
    )
