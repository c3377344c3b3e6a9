"""Payments of registrations and their refunds. Amounts are integer minor units in the payment's
one currency; the provider's references are stored, never card data."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey
from domain.organization.models import _enum
from domain.registration.models import Registration


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class PaymentPurpose(enum.StrEnum):
    FULL = "full"  # the whole price
    DEPOSIT = "deposit"  # the ticket type's deposit
    REMAINDER = "remainder"  # the rest, after a deposit


class RefundStatus(enum.StrEnum):
    REQUESTED = "requested"  # recorded, not yet accepted by the provider
    PENDING = "pending"  # accepted by the provider, not settled
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Payment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "payments"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    registration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("registrations.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[PaymentPurpose] = mapped_column(_enum(PaymentPurpose, "payment_purpose"))
    provider: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    status: Mapped[PaymentStatus] = mapped_column(
        _enum(PaymentStatus, "payment_status"), server_default=text("'pending'")
    )
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    client_secret: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    # When the payment was counted towards its registration's amount_paid: each payment once.
    applied_at: Mapped[datetime | None]
    processing_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        # What was refunded never exceeds what was paid, and the status says how much was.
        CheckConstraint(
            "(status IN ('pending', 'processing', 'completed', 'failed') AND amount_refunded = 0)"
            " OR (status = 'partially_refunded'"
            " AND amount_refunded > 0 AND amount_refunded < amount)"
            " OR (status = 'refunded' AND amount_refunded = amount)",
            name="refunds_match_status",
        ),
        Index("uq_payments_provider_ref", "provider", "provider_ref", unique=True),
        # One live payment per purpose of a registration: a double submit never charges twice.
        Index(
            "uq_payments_registration_purpose_live",
            "registration_id",
            "purpose",
            unique=True,
            postgresql_where=text("status <> 'failed'"),
        ),
        Index("ix_payments_registration_id", "registration_id"),
        Index("ix_payments_user_id", "user_id"),
        # Payments of a cancelled event still to be refunded (the sweeper).
        Index(
            "ix_payments_refundable_event",
            "event_id",
            postgresql_where=text("status IN ('completed', 'partially_refunded')"),
        ),
    )


class Refund(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "refunds"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))  # the payer
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[RefundStatus] = mapped_column(
        _enum(RefundStatus, "refund_status"), server_default=text("'requested'")
    )
    # Why: organizer, event_cancelled, remainder_unpaid, registration_cancelled,
    # participant_cancelled (the event's refund policy), provider.
    reason: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    # Who asked for it once: the client's idempotency key, or the saga step that asked.
    request_key: Mapped[str] = mapped_column(String(255))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    provider_ref: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    succeeded_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_iso"),
        Index("uq_refunds_payment_request_key", "payment_id", "request_key", unique=True),
        Index(
            "uq_refunds_payment_provider_ref",
            "payment_id",
            "provider_ref",
            unique=True,
            postgresql_where=text("provider_ref IS NOT NULL"),
        ),
        Index("ix_refunds_user_id", "user_id"),
        # The submitter's queue: refunds not yet handed to their provider.
        Index("ix_refunds_requested", "created_at", postgresql_where=text("status = 'requested'")),
    )


# The payment jobs' queues over registrations, declared with the jobs that read them (the
# registrations table itself belongs to domain/registration).
Index(
    "ix_registrations_awaiting_payment",
    Registration.created_at,
    postgresql_where=text("status = 'pending_payment'"),
)
Index(
    "ix_registrations_remainder_open",
    Registration.event_id,
    postgresql_where=text(
        "status = 'confirmed' AND payment_mode = 'deposit' AND amount_paid < amount_total"
    ),
)
