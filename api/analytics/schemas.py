"""Response schemas of the analytics dashboard and report (the Dash app reads these names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from warehouse.queries import FUNNEL

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
    paid_registrations: int = Field(
        description="First payments (`payment` facts of purpose full or deposit) in the range"
    )
    waitlist: int = Field(description="Joined minus left, over the whole history up to `to`")
    visits: int = Field(
        description="Visits that started in the range: unique page views (the funnel's first stage)"
    )
    converted_visits: int = Field(
        description="Visits of the range credited with at least one registration (first touch, "
        "within 24 h of the visit's start and before `to`)"
    )
    registrations_without_visit: int = Field(
        description="Registrations of the range credited to no visit of the range: made without "
        "a tracked visitor id (API-only), or more than 24 h after the visitor's latest visit. "
        "Counted in `registrations`, never in the funnel or the conversion"
    )
    conversion_rate: float | None = Field(
        description="converted_visits / visits: at most 1; null when there is no visit"
    )
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
    """Visits that started in the range and reached this stage or a later one before `to`, so
    every stage is a subset of the one before (a registration without a hold has passed the
    hold stage)."""

    stage: Literal[FUNNEL] = Field(  # the stages in order, as the warehouse computes them
        description="view: every visit; payment: a first payment (full or deposit), so a free "
        "registration stops before it unless checked in"
    )
    count: int = Field(description="Visits that reached this stage or a later one")
    rate_from_previous: float | None = Field(
        description="count / the previous stage's count (0..1); null for the first stage or a "
        "previous 0"
    )
    drop_off: int | None = Field(
        description="The previous stage's count minus this one (never negative); null for the "
        "first stage"
    )


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


class AttributedRevenue(_Out):
    currency: str
    gross: int = Field(description="Payments (any purpose), minor units")


class SourceStats(_Out):
    source: str = Field(
        description="utm_source, else the referrer's host, else `direct`; for the attribution "
        "the source of a visit's first page view (first touch)"
    )
    views: int = Field(description="Page views from this source (each view's own source)")
    unique_views: int
    ticket_selected: int
    checkout_started: int
    visits: int = Field(description="Visits whose first page view came from this source")
    converted_visits: int = Field(description="Those of them credited with a registration")
    registrations: int = Field(description="Registrations credited to those visits")
    conversion_rate: float | None = Field(
        description="converted_visits / visits: at most 1; null when there is no visit"
    )
    revenue: list[AttributedRevenue] = Field(
        description="Payments in the range of the registrations credited to those visits"
    )


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
    visits: int = Field(description="Visits that started in the range (the dashboard's)")
    converted_visits: int = Field(description="Visits credited with a registration")
    registrations_without_visit: int = Field(
        description="Registrations credited to no visit of the range (API-only, or too late)"
    )
    conversion_rate: float | None = Field(
        description="converted_visits / visits: at most 1; null when there is no visit"
    )
    attendance_rate: float | None
    revenue: list[Money]


class ReportChange(_Out):
    views: int
    unique_views: int
    registrations: int
    cancellations: int
    checkins: int
    visits: int
    converted_visits: int
    registrations_without_visit: int
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
