"""Notifications: each user's preferences, the template catalog, and organizers' messages to the
participants of their events. Messages are queued in the notification log and delivered by the
background dispatcher (see docs/notifications.md)."""

from __future__ import annotations

import math
import time

import redis
from fastapi import APIRouter, status
from limits import parse

from api.deps import MANAGE_ROLES, StateDep, UowDep, enter_tenant_as
from api.errors import ApiError, responses
from api.notification.schemas import (
    PreferencesIn,
    PreferencesOut,
    QuietHoursOut,
    SendIn,
    SendOut,
    TemplateOut,
)
from api.pagination import Page
from api.security import CurrentPrincipal
from api.state import AppState
from core.logging import get_logger
from domain.notification import catalog, service
from domain.notification.preferences import (
    Preferences,
    QuietHours,
    get_preferences,
    set_preferences,
)

log = get_logger(__name__)
router = APIRouter(prefix="/notifications", tags=["notifications"])

RATE_SCOPE = "notify"


def _out(prefs: Preferences) -> PreferencesOut:
    quiet = prefs.quiet_hours
    return PreferencesOut(
        channel=prefs.channel,
        effective_channel=prefs.effective_channel,
        quiet_hours=QuietHoursOut(
            start=quiet.start.strftime("%H:%M"),
            end=quiet.end.strftime("%H:%M"),
            timezone=quiet.timezone,
        )
        if quiet
        else None,
    )


@router.get("/preferences", response_model=PreferencesOut, responses=responses(401))
def read_preferences(uow: UowDep) -> PreferencesOut:
    """The caller's notification preferences (the defaults when never set)."""
    return _out(get_preferences(uow))


@router.put("/preferences", response_model=PreferencesOut, responses=responses(401, 409, 422))
def write_preferences(body: PreferencesIn, uow: UowDep) -> PreferencesOut:
    """Replace the caller's preferences. 409 `channel_unavailable` for a channel the account
    cannot be reached on; 422 `invalid_timezone`. Quiet hours
    that start and end at the same time are an empty window: none are kept."""
    quiet = None
    if body.quiet_hours is not None:
        start, end = body.quiet_hours.parsed()
        quiet = QuietHours(start, end, body.quiet_hours.timezone)
    return _out(set_preferences(uow, channel=body.channel, quiet=quiet))


@router.get("/templates", response_model=Page[TemplateOut], responses=responses(401))
def list_templates(principal: CurrentPrincipal) -> Page[TemplateOut]:
    """Every message template: the events that send it, its languages and its variables (the
    catalog is fixed: answered whole)."""
    return Page[TemplateOut].whole(TemplateOut(**entry) for entry in catalog.available())


def _check_rate(state: AppState, organizer: str) -> None:
    item = parse(state.settings.notification_send_rate)
    limiter = state.limiter
    try:
        if limiter.hit(item, RATE_SCOPE, organizer):
            return
        reset_at = limiter.get_window_stats(item, RATE_SCOPE, organizer).reset_time
    except redis.RedisError as exc:  # fail open, as every rate limit here (docs/api-rules.md)
        log.warning("rate_limit_unavailable", error=str(exc), scope=RATE_SCOPE)
        return
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise ApiError(
        429,
        "rate_limited",
        f"Too many messages; retry in {retry_after} s",
        {"scope": "notifications", "retry_after_s": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


@router.post(
    "/send",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SendOut,
    responses=responses(401, 403, 404, 422, 429),
)
def send(body: SendIn, state: StateDep, uow: UowDep) -> SendOut:
    """Queue a message to the participants of an event (owners and moderators of its
    organization), one per reachable participant, delivered by their preferred channel and
    outside their quiet hours. Rate limited per organizer (429 `rate_limited`, Retry-After)."""
    member = enter_tenant_as(uow, service.event_tenant(uow, body.event_id), MANAGE_ROLES)
    _check_rate(state, str(member.user_id))
    queued = service.send_organizer_message(
        uow,
        body.event_id,
        subject=body.subject,
        text_=body.text,
        statuses=body.statuses or service.LIVE,
    )
    return SendOut(message_id=queued.message_id, count=queued.recipients, deferred=queued.deferred)
