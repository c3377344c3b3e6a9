"""Notifications: each user's preferences, the template catalog, and organizers' messages to the
participants of their events. Messages are queued in the notification log and delivered by the
background dispatcher (see docs/notifications.md)."""

from __future__ import annotations

import math
import time
import uuid

import redis
from fastapi import APIRouter, Query, status
from limits import parse

from api.deps import MANAGE_ROLES, READ_ROLES, StateDep, UowDep, enter_tenant_as
from api.errors import ApiError, responses
from api.notification.schemas import (
    DeliveryOut,
    DeliveryStates,
    LanguagePreviewOut,
    MessageOut,
    PreferencesIn,
    PreferencesOut,
    PreviewOut,
    QuietHoursOut,
    SendIn,
    SendOut,
    TemplateOut,
)
from api.pagination import Page, Paging
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
        uow, body.event_id, subject=body.subject, text_=body.text, audience=_audience(body)
    )
    return SendOut(message_id=queued.message_id, count=queued.recipients, deferred=queued.deferred)


def _audience(body: SendIn) -> service.Audience:
    return service.Audience(
        statuses=tuple(body.statuses or service.LIVE),
        ticket_type_id=body.ticket_type_id,
        checked_in=body.checked_in,
    )


@router.post("/preview", response_model=PreviewOut, responses=responses(401, 403, 404, 422))
def preview(body: SendIn, uow: UowDep) -> PreviewOut:
    """What `POST /notifications/send` with this body would queue, without queueing anything:
    the recipient count and the message rendered in each of the recipients' languages (owners
    and moderators; not rate limited)."""
    enter_tenant_as(uow, service.event_tenant(uow, body.event_id), MANAGE_ROLES)
    answer = service.preview_organizer_message(
        uow, body.event_id, subject=body.subject, text_=body.text, audience=_audience(body)
    )
    return PreviewOut(
        recipients=answer.recipients,
        deferred=answer.deferred,
        languages=[
            LanguagePreviewOut(
                language=p.language, recipients=p.recipients, subject=p.subject, text=p.text
            )
            for p in answer.languages
        ],
    )


@router.get("/messages", response_model=Page[MessageOut], responses=responses(401, 404))
def messages(
    uow: UowDep, paging: Paging, event_id: uuid.UUID = Query(description="The event messaged")
) -> Page[MessageOut]:
    """The organizers' messages to an event's participants, newest first, with their deliveries
    counted per state (every member of the event's organization)."""
    enter_tenant_as(uow, service.event_tenant(uow, event_id), READ_ROLES)
    return Page[MessageOut].of(
        service.list_messages(uow, event_id, paging),
        lambda m: MessageOut(
            message_id=m.first.source_event_id,
            event_id=event_id,
            subject=m.first.subject,
            created_at=m.first.created_at,
            recipients=m.recipients,
            states=DeliveryStates(**{state.value: n for state, n in m.states.items()}),
        ),
    )


@router.get(
    "/messages/{message_id}/deliveries",
    response_model=Page[DeliveryOut],
    responses=responses(401, 403, 404),
)
def deliveries(
    message_id: uuid.UUID,
    uow: UowDep,
    paging: Paging,
    event_id: uuid.UUID = Query(description="The event the message went to"),
) -> Page[DeliveryOut]:
    """Each recipient of one message: channel, address, language, state, attempts and times
    (owners and moderators: it shows contact details)."""
    enter_tenant_as(uow, service.event_tenant(uow, event_id), MANAGE_ROLES)
    return Page[DeliveryOut].of(
        service.list_deliveries(uow, event_id, message_id, paging),
        lambda row: DeliveryOut(
            id=row[0].id,
            user_id=row[0].user_id,
            display_name=row[1].display_name,
            channel=row[0].channel,
            address=row[0].address,
            language=row[0].language,
            status=row[0].status,
            attempts=row[0].attempts,
            due_at=row[0].due_at,
            sent_at=row[0].sent_at,
            last_error=row[0].last_error,
        ),
    )
