"""Request and response bodies of the notification routes."""

from __future__ import annotations

import uuid
from datetime import time

from pydantic import BaseModel, Field

from api.types import RequestModel, TimeZoneName
from domain.notification.models import Channel
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
