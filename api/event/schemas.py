"""Request and response bodies of events and ticket types."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.types import RequestModel, TimeZoneName
from domain.event.models import EventStatus, ParticipantsVisibility, Visibility

Title = Annotated[str, Field(min_length=1, max_length=200)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
# No spaces or control characters, spelled out: "\s" differs between the JSON Schema (ECMAScript)
# and pydantic's (Rust) regular expressions (U+0085, U+FEFF), so the schema allowed what was refused.
URL_PATTERN = (
    r"^https?://[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
    r"\u3000\ufeff]+$"
)
Url = Annotated[str, Field(max_length=2000, pattern=URL_PATTERN)]


def _strip(value: str) -> str:
    return value.strip()


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_nullable(o) for o in schema.get("anyOf", []))


def _omitted_is_unchanged(schema: dict[str, Any]) -> None:
    """A partial update's fields may all be left out. One whose type has no None may not be sent
    as null: its None default only marks it as not sent, so the schema shows no default."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None and not _nullable(prop):
            del prop["default"]


class PartialUpdate(RequestModel):
    """Base of PUT bodies that change only what they name (``model_dump(exclude_unset=True)``):
    a field left out is unchanged; null clears a field only where its type allows None."""

    model_config = ConfigDict(json_schema_extra=_omitted_is_unchanged)


class EventFields(RequestModel):
    title: Annotated[Title, AfterValidator(_strip)]
    description: str | None = Field(default=None, max_length=20000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    timezone: TimeZoneName = "UTC"
    venue: str | None = Field(default=None, max_length=500)
    online_url: Url | None = None
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    visibility: Visibility = Visibility.PUBLIC
    group_id: uuid.UUID | None = None
    participants_visibility: ParticipantsVisibility = ParticipantsVisibility.CLOSED
    registration_opens_at: AwareDatetime | None = None
    registration_closes_at: AwareDatetime | None = None
    hold_minutes: int = Field(default=15, ge=1, le=1440)
    max_holds_per_account: int = Field(
        default=3, ge=1, le=100, description="Holds one account may have at once"
    )
    max_held_seats_per_account: int = Field(
        default=10, ge=1, le=10_000, description="Seats one account may hold at once, all holds"
    )
    remainder_due_at: AwareDatetime | None = Field(
        default=None,
        description="When the rest of a deposit is due (at the latest the start; null: the "
        "start). An unpaid remainder then cancels the registration.",
    )
    refund_deposit_on_default: bool = Field(
        default=False,
        description="Refund the deposit of a registration cancelled for an unpaid remainder",
    )
    refund_days_before_start: int | None = Field(
        default=None,
        ge=0,
        le=365,
        description="A participant who cancels is refunded what they paid until this many days "
        "before the start (0: until the start); null: cancelling refunds nothing. Fixed once "
        "published",
    )
    refund_fee_percent: int | None = Field(
        default=None,
        ge=1,
        le=99,
        description="Kept of such a refund: this percent of what was paid (rounded down); not "
        "with refund_fee_amount",
    )
    refund_fee_amount: int | None = Field(
        default=None,
        ge=1,
        le=10**12,
        description="Kept of such a refund: this fixed amount, in minor units of the "
        "registration's currency (at most what was paid); not with refund_fee_percent",
    )
    cover_media_id: uuid.UUID | None = Field(
        default=None, description="An uploaded image of the organization's (POST /media/upload)"
    )


class EventCreate(EventFields):
    organization_id: uuid.UUID


class EventUpdate(PartialUpdate):
    """Fields to change; once published only title, description, venue, online_url, capacity,
    registration_closes_at, participants_visibility, hold_minutes and remainder_due_at."""

    title: Title = None
    description: str | None = Field(default=None, max_length=20000)
    starts_at: AwareDatetime = None
    ends_at: AwareDatetime = None
    timezone: TimeZoneName = None
    venue: str | None = Field(default=None, max_length=500)
    online_url: Url | None = None
    capacity: int | None = Field(default=None, ge=0, le=1_000_000)
    visibility: Visibility = None
    group_id: uuid.UUID | None = None
    participants_visibility: ParticipantsVisibility = None
    registration_opens_at: AwareDatetime | None = None
    registration_closes_at: AwareDatetime | None = None
    hold_minutes: int = Field(default=None, ge=1, le=1440)
    max_holds_per_account: int = Field(default=None, ge=1, le=100)
    max_held_seats_per_account: int = Field(default=None, ge=1, le=10_000)
    remainder_due_at: AwareDatetime | None = None
    refund_deposit_on_default: bool = None
    refund_days_before_start: int | None = Field(default=None, ge=0, le=365)
    refund_fee_percent: int | None = Field(default=None, ge=1, le=99)
    refund_fee_amount: int | None = Field(default=None, ge=1, le=10**12)
    cover_media_id: uuid.UUID | None = Field(
        default=None, description="An uploaded image of the organization's; null removes it"
    )


class OrganizerOut(BaseModel):
    """The organization behind an event, as everyone sees it (its public profile)."""

    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    logo_url: str | None = Field(
        description="Redirects to the logo for anyone (`?variant=thumbnail|card|cover`); null "
        "without one"
    )
    page_url: str = Field(description="The organizer's public profile")
    events_url: str = Field(description="The organizer's published public events")

    @classmethod
    def of(cls, profile) -> OrganizerOut:
        return cls(
            id=profile.id,
            name=profile.name,
            slug=profile.slug,
            description=profile.description,
            logo_url=f"/api/v1/organizers/{profile.slug}/logo" if profile.logo_media_id else None,
            page_url=f"/api/v1/organizers/{profile.slug}",
            events_url=f"/api/v1/events?organization_id={profile.id}",
        )


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization_id: uuid.UUID = Field(validation_alias="tenant_id")
    title: str
    description: str | None
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue: str | None
    online_url: str | None
    capacity: int | None
    sold: int | None = Field(
        description="Seats taken against the event-wide capacity; null when there is none "
        "(see each ticket type's `sold`)"
    )
    visibility: Visibility
    group_id: uuid.UUID | None
    participants_visibility: ParticipantsVisibility
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    hold_minutes: int
    max_holds_per_account: int
    max_held_seats_per_account: int
    remainder_due_at: datetime | None
    refund_deposit_on_default: bool
    refund_days_before_start: int | None = None
    refund_fee_percent: int | None = None
    refund_fee_amount: int | None = None
    refund_deadline: datetime | None = Field(
        default=None,
        description="Until when a participant's own cancellation refunds (the start less "
        "`refund_days_before_start` days); null: it refunds nothing",
    )
    status: EventStatus
    published_at: datetime | None
    created_at: datetime
    cover_media_id: uuid.UUID | None = None
    cover_url: str | None = Field(
        default=None,
        description="Redirects to the cover image (`?variant=thumbnail|card|cover`); null "
        "without a cover",
    )
    organizer: OrganizerOut | None = Field(
        default=None, description="Who organizes it: the organization's public profile"
    )

    @model_validator(mode="after")
    def _sold_only_with_capacity(self) -> EventOut:
        if self.capacity is None:
            self.sold = None
        return self

    @model_validator(mode="after")
    def _refund_deadline(self) -> EventOut:
        days = self.refund_days_before_start
        self.refund_deadline = None if days is None else self.starts_at - timedelta(days=days)
        return self

    @model_validator(mode="after")
    def _cover_url(self) -> EventOut:
        self.cover_url = f"/api/v1/events/{self.id}/cover" if self.cover_media_id else None
        return self


class CancelBody(RequestModel):
    reason: str | None = Field(default=None, max_length=500)


class TicketTypeFields(RequestModel):
    name: Title
    description: str | None = Field(default=None, max_length=5000)
    price_amount: int = Field(default=0, ge=0, le=10**12, description="Minor units; 0 is free")
    currency: Currency = "EUR"
    capacity: int = Field(ge=0, le=1_000_000)
    sales_starts_at: AwareDatetime | None = None
    sales_ends_at: AwareDatetime | None = None
    max_per_order: int = Field(default=10, ge=1, le=100)
    max_held_seats_per_account: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Seats of this type one account may hold at once (null: the event's limit)",
    )
    deposit_amount: int | None = Field(default=None, ge=1, le=10**12)
    deposit_percent: int | None = Field(default=None, ge=1, le=99)
    is_active: bool = True


class TicketTypeUpdate(PartialUpdate):
    name: Title = None
    description: str | None = Field(default=None, max_length=5000)
    price_amount: int = Field(default=None, ge=0, le=10**12)
    currency: Currency = None
    capacity: int = Field(default=None, ge=0, le=1_000_000)
    sales_starts_at: AwareDatetime | None = None
    sales_ends_at: AwareDatetime | None = None
    max_per_order: int = Field(default=None, ge=1, le=100)
    max_held_seats_per_account: int | None = Field(default=None, ge=1, le=10_000)
    deposit_amount: int | None = Field(default=None, ge=1, le=10**12)
    deposit_percent: int | None = Field(default=None, ge=1, le=99)
    is_active: bool = None


class TicketTypeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    name: str
    description: str | None
    price_amount: int
    currency: str
    capacity: int
    sold: int = Field(description="Seats taken: registered and held (`held` of them in holds)")
    held: int | None = Field(
        description="Of `sold`, the seats in active holds (not registered yet); null unless "
        "the caller is a member of the event's organization"
    )
    available: int
    sales_starts_at: datetime | None
    sales_ends_at: datetime | None
    max_per_order: int
    max_held_seats_per_account: int | None
    deposit_amount: int | None
    deposit_percent: int | None
    is_active: bool

    @classmethod
    def of(cls, tt, held: int | None = None) -> TicketTypeOut:
        return cls.model_validate(
            {
                **{k: getattr(tt, k) for k in cls.model_fields if k not in ("available", "held")},
                "held": held,
                "available": max(0, tt.capacity - tt.sold),
            }
        )
