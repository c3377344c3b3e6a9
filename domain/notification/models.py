"""Notifications: each user's delivery preferences, the log of every message (one row per source
event, recipient and channel, so a redelivered event never sends twice), and the record of which
events have had their reminder emitted (exactly once per event)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, time

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, Time, func, text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db.base import Base, Timestamps, UUIDPrimaryKey
from domain.organization.models import _enum


class Channel(enum.StrEnum):
    TELEGRAM = "telegram"
    EMAIL = "email"
    NONE = "none"  # a preference only: nothing is sent, nothing is logged


class NotificationStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    DEFERRED = "deferred"  # due in the recipient's quiet hours: waits until they end


class NotificationPreference(Timestamps, Base):
    """A user's choice; no row means the default (Telegram if linked, else e-mail)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # None: the default channel, worked out from the account at each message.
    channel: Mapped[Channel | None] = mapped_column(_enum(Channel, "notification_channel"))
    quiet_start: Mapped[time | None] = mapped_column(Time())
    quiet_end: Mapped[time | None] = mapped_column(Time())
    timezone: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(
            "(quiet_start IS NULL) = (quiet_end IS NULL) "
            "AND (quiet_start IS NULL) = (timezone IS NULL)",
            name="quiet_hours_complete",
        ),
        CheckConstraint("quiet_start <> quiet_end", name="quiet_hours_not_empty"),
    )


class Notification(UUIDPrimaryKey, Timestamps, Base):
    """One message to one recipient on one channel, rendered when it was queued."""

    __tablename__ = "notifications"

    # NULL for platform messages (user.registered): those belong to their recipient alone.
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id"))
    source_event_id: Mapped[uuid.UUID]
    source_event_type: Mapped[str] = mapped_column(String(128))
    template: Mapped[str] = mapped_column(String(64))
    # NULL for a message to an address without an account (an invitation; migration 0022).
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "notification_channel"))
    address: Mapped[str] = mapped_column(String(320))  # chat id or e-mail address
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # The ticket's QR is drawn when sending, from the registration: no ticket code at rest here.
    registration_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("registrations.id"))
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.id"))
    status: Mapped[NotificationStatus] = mapped_column(
        _enum(NotificationStatus, "notification_status"), server_default=text("'queued'")
    )
    due_at: Mapped[datetime] = mapped_column(server_default=func.now())
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("channel <> 'none'", name="real_channel"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("user_id IS NOT NULL OR tenant_id IS NOT NULL", name="recipient"),
        Index(
            "uq_notifications_source_user_channel",
            "source_event_id",
            "user_id",
            "channel",
            unique=True,
        ),
        Index(
            "uq_notifications_source_address_channel",
            "source_event_id",
            "address",
            "channel",
            unique=True,
            postgresql_where=text("user_id IS NULL"),
        ),
        # One ticket per registration and channel, whichever event (created, confirmed) sent it.
        Index(
            "uq_notifications_ticket",
            "registration_id",
            "user_id",
            "channel",
            unique=True,
            postgresql_where=text("template = 'ticket'"),
        ),
        Index(
            "ix_notifications_due",
            "due_at",
            postgresql_where=text("status IN ('queued', 'deferred')"),
        ),
        Index("ix_notifications_user_id", "user_id"),
        Index("ix_notifications_tenant_id_created_at", "tenant_id", "created_at"),
    )


class EventReminder(Base):
    """The reminder of an event was emitted (the row and the outbox event commit together)."""

    __tablename__ = "event_reminders"

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    starts_at: Mapped[datetime]
    emitted_at: Mapped[datetime] = mapped_column(server_default=func.now())
