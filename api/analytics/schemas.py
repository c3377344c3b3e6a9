"""Response schemas of the analytics dashboard and report (the Dash app reads these names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Granularity = Literal["minute", "hour", "day"]


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Range(_Out):
    from_: datetime = Field(alias="from", description="Start (UTC), inclusive")
    to: datetime = Field(description="End (UTC), exclusive")


class DashboardRange(Range):
    granularity: Granularity


class Kpis(_Out):
    views: int
    unique_views: int = Field(
        description="Page views whose visitor had no page view of the event in the 30 minutes "
        "before"
    )
    ticket_selected: int
    checkout_started: int
    reservations: int
    registrations: int
    confirmations: int
    cancellations: int
    checkins: int
    waitlist: int = Field(description="Joined minus left, over the whole history up to `to`")
    conversion_rate: float | None = Field(description="registrations / unique_views")
    attendance_rate: float | None = Field(description="checkins / (registrations - cancellations)")


class Money(_Out):
    currency: str
    gross: int = Field(description="Payments, minor units")
    refunds: int
    net: int = Field(description="gross - refunds")


class Revenue(Money):
    full: int = Field(description="Gross from payments in full")
    deposits: int
    remainders: int


class FunnelStage(_Out):
    stage: Literal["view", "ticket_selected", "reservation", "registration", "payment", "checkin"]
    count: int
    rate_from_previous: float | None
    drop_off: int | None


class SeriesPoint(_Out):
    bucket: datetime
    views: int
    unique_views: int
    registrations: int
    cancellations: int
    checkins: int


class RevenuePoint(Money):
    bucket: datetime


class TicketTypeStats(_Out):
    ticket_type_id: uuid.UUID | None = Field(description="null: facts that named no ticket type")
    name: str | None
    capacity: int | None
    sold: int | None
    registrations: int
    cancellations: int
    checkins: int
    revenue: list[Money]


class SourceStats(_Out):
    source: str
    views: int
    unique_views: int
    ticket_selected: int
    checkout_started: int


class DeviceStats(_Out):
    device: str
    views: int
    unique_views: int


class Dashboard(_Out):
    event_id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    timezone: str = Field(description="The event's time zone, for display; buckets are UTC")
    starts_at: datetime
    ends_at: datetime
    status: str
    capacity: int | None
    sold: int
    range: DashboardRange
    kpis: Kpis
    revenue: list[Revenue]
    funnel: list[FunnelStage]
    series: list[SeriesPoint]
    revenue_series: list[RevenuePoint]
    ticket_types: list[TicketTypeStats]
    sources: list[SourceStats]
    devices: list[DeviceStats]


class ReportValues(_Out):
    views: int
    unique_views: int
    registrations: int
    cancellations: int
    checkins: int
    conversion_rate: float | None
    attendance_rate: float | None
    revenue: list[Money]


class ReportChange(_Out):
    views: int
    unique_views: int
    registrations: int
    cancellations: int
    checkins: int
    conversion_rate: float | None = Field(description="Difference; null when either is null")
    attendance_rate: float | None
    revenue: list[Money]


class ReportRow(ReportValues):
    event_id: uuid.UUID
    title: str
    starts_at: datetime
    status: str
    previous: ReportValues
    change: ReportChange = Field(description="This period minus the previous one")


class ReportTotals(ReportValues):
    previous: ReportValues
    change: ReportChange


class Report(_Out):
    organization_id: uuid.UUID
    range: Range
    previous_range: Range
    events: list[ReportRow]
    totals: ReportTotals
