"""Analytics API: the event dashboard and the organization report, read from the warehouse's
rollups (warehouse/queries.py); owners, moderators and analysts of the organization only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.analytics.schemas import Dashboard, Granularity, Report
from api.deps import (
    READ_ROLES,
    Membership,
    SettingsDep,
    UowDep,
    enter_tenant_as,
    require_resource_role,
)
from api.errors import responses
from api.types import IsoDatetime
from warehouse import queries

router = APIRouter(prefix="/analytics", tags=["analytics"])

EventReader = Annotated[
    Membership, Depends(require_resource_role("events", "event_id", *READ_ROLES))
]
From = Annotated[
    IsoDatetime | None,
    Query(alias="from", description="Start, ISO 8601 with offset (default: see the operation)"),
]
To = Annotated[IsoDatetime | None, Query(description="End, exclusive, ISO 8601 with offset")]


def _organization_reader(organization_id: uuid.UUID, uow: UowDep) -> Membership:
    return enter_tenant_as(uow, organization_id, READ_ROLES)


OrganizationReader = Annotated[Membership, Depends(_organization_reader)]


@router.get(
    "/events/{event_id}/dashboard", response_model=Dashboard, response_model_by_alias=True,
    responses=responses(401, 403, 404, 422),
)  # fmt: skip
def event_dashboard(
    event_id: uuid.UUID,
    member: EventReader,
    uow: UowDep,
    settings: SettingsDep,
    from_: From = None,
    to: To = None,
    granularity: Annotated[
        Granularity | None,
        Query(description="Series bucket size (default hour, or day when hours are too many)"),
    ] = None,
) -> Dashboard:
    """KPIs, funnel, revenue, series, ticket types and traffic of an event over a range (default:
    its whole history); at most `analytics_max_points` series buckets (else 422
    `range_too_large`)."""
    # A plain dict: FastAPI validates it against the response model once (a model instance
    # would be validated a second time; a dashboard holds up to 2,000 series points).
    return queries.dashboard(  # type: ignore[return-value]
        uow.session, event_id, from_, to, granularity, max_points=settings.analytics_max_points
    )


@router.get(
    "/organizations/{organization_id}/report", response_model=Report,
    response_model_by_alias=True, responses=responses(401, 403, 404, 422),
)  # fmt: skip
def organization_report(
    organization_id: uuid.UUID,
    member: OrganizationReader,
    uow: UowDep,
    settings: SettingsDep,
    from_: From = None,
    to: To = None,
) -> Report:
    """Per event of the organization over a range (default: the last `analytics_report_days`
    days): views, conversion, registrations, revenue, attendance, with the previous period of
    equal length and the change."""
    return queries.report(  # type: ignore[return-value]
        uow.session, organization_id, from_, to, default_days=settings.analytics_report_days
    )
