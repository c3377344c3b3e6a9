"""Request and response bodies of the notification routes."""

from __future__ import annotations

import uuid
from datetime import datetime, time

from pydantic import BaseModel, Field

from api.types import RequestModel, TimeZoneName
from domain.notification.models import Channel, NotificationStatus
from domain.registration.models import RegistrationStatus

CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHoursIn(RequestModel):
    start: str = Field(pattern=CLOCK, examples=["22:00"], description="Local time, HH:MM")
    end: str = Field(pattern=CLOCK, examples=["08:00"], description="Local time, HH:MM")
    timezone: TimeZoneName

    def parsed(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class PreferencesIn(RequestModel):
    channel: Channel | None = Field(
        default=None,
        description="`telegram`, `email`, `none` (no notifications), or null for the default: "
        "Telegram when the account is linked to it, else e-mail.",
    )
    quiet_hours: QuietHoursIn | None = Field(
        default=None,
        description="A daily window (it may span midnight) in which nothing is delivered; "
        "messages due then are deferred to its end.",
    )


class QuietHoursOut(BaseModel):
    start: str
    end: str
    timezone: str


class PreferencesOut(BaseModel):
    channel: Channel | None
    effective_channel: Channel = Field(description="The channel messages go by now")
    quiet_hours: QuietHoursOut | None


class SendIn(RequestModel):
    event_id: uuid.UUID
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=3500)
    statuses: list[RegistrationStatus] | None = Field(
        default=None,
        min_length=1,
        description="Registrations whose participants receive it; default: confirmed and "
        "pending_payment.",
    )
    ticket_type_id: uuid.UUID | None = Field(
        default=None,
        description="Only registrations of this ticket type of the event (422 "
        "`unknown_ticket_type` for another event's or none)",
    )
    checked_in: bool | None = Field(
        default=None,
        description="true: only participants checked in; false: only those not checked in; "
        "null: both",
    )


class SendOut(BaseModel):
    message_id: uuid.UUID
    count: int = Field(description="Messages queued (one per reachable participant)")
    deferred: int = Field(description="Of those, held back until the recipient's quiet hours end")


class TemplateOut(BaseModel):
    template: str
    event_types: list[str]
    description: str
    languages: list[str]
    variables: list[str]


class LanguagePreviewOut(BaseModel):
    language: str
    recipients: int = Field(description="Recipients who read this language")
    subject: str
    text: str = Field(description="The plain-text body as the first of them would receive it")


class PreviewOut(BaseModel):
    recipients: int = Field(description="Messages a send would queue now (reachable recipients)")
    deferred: int = Field(description="Of those, in their quiet hours now")
    languages: list[LanguagePreviewOut]


class DeliveryStates(BaseModel):
    queued: int = 0
    deferred: int = 0
    sent: int = 0
    failed: int = 0


class MessageOut(BaseModel):
    message_id: uuid.UUID
    event_id: uuid.UUID
    subject: str = Field(description="As its first recipient received it")
    created_at: datetime
    recipients: int
    states: DeliveryStates


class DeliveryOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    channel: Channel
    address: str
    language: str
    status: NotificationStatus
    attempts: int
    due_at: datetime
    sent_at: datetime | None
    last_error: str | None
