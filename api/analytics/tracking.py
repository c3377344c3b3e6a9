"""Analytics API: tracking. Browsers report what visitors do on an event's pages; the batch goes
straight to the tracking topic (docs/tracking.md)."""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import redis
from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Request, status
from kafka.errors import KafkaError
from limits import parse
from prometheus_client import Counter
from pydantic import BaseModel, Field

from api.deps import StateDep
from api.errors import ApiError, responses
from api.middleware import caller_of
from api.state import AppState
from api.types import RequestModel
from core.logging import get_logger
from domain.analytics.tracking import (
    Action,
    BotFilter,
    EventCache,
    FirstTimes,
    PublishedEvent,
    prepare,
    published_events,
)
from domain.uow import UnitOfWork
from streams.topics import tracking_topic
from streams.tracking import TrackingUnavailable, publish_tracking

log = get_logger(__name__)
router = APIRouter(prefix="/analytics", tags=["analytics"])

RATE_SCOPE = "track"
MAX_BATCH = 100
OPTIONAL_AUTH = {"security": [{}, {"HTTPBearer": []}]}


class TrackedAction(RequestModel):
    id: uuid.UUID | None = Field(
        default=None,
        description="The client's id of this action: a retry with the same id counts once",
    )
    type: Literal["page_view", "ticket_selected", "checkout_started"]
    event_id: uuid.UUID = Field(description="A published event")
    ticket_type_id: uuid.UUID | None = Field(default=None, description="One of the event's")
    visitor_id: str = Field(min_length=1, max_length=64, description="Anonymous, per browser")
    session_id: str = Field(min_length=1, max_length=64)
    occurred_at: datetime | None = Field(
        default=None,
        description="When it happened (default: now, or for a resent `id` the time it was "
        "first given; without an offset: UTC); at most 5 min ahead and "
        "`AQSTREAM_ANALYTICS_LATE_S` back",
    )
    referrer: str | None = Field(default=None, max_length=2000)
    utm_source: str | None = Field(default=None, max_length=200)
    device: Literal["desktop", "mobile", "tablet"] | None = Field(
        default=None, description="Default: from the User-Agent"
    )


class TrackBatch(RequestModel):
    events: list[TrackedAction] = Field(min_length=1, max_length=MAX_BATCH)


class TrackOut(BaseModel):
    accepted: int = Field(description="Actions sent to the tracking topic")
    filtered: int = Field(description="Actions of bots: taken, not counted")


@functools.cache
def _counter() -> Counter:  # once per process (the default registry, which /metrics serves)
    return Counter(
        "aqstream_tracking_actions",
        "Tracked actions taken by POST /analytics/track, by outcome (accepted, filtered)",
        ["outcome"],
    )


class _Tracking:
    """What the endpoint keeps between requests: published events, the bot patterns, the
    app's per-IP limiter, the times given to ids."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.events = EventCache(state.settings.analytics_event_cache_s)
        self.bots = BotFilter()
        self.rate = parse(state.settings.analytics_track_rate)
        self.limiter = state.limiter  # the app's one limiter (api/state.py)
        self.times = FirstTimes(state.redis)
        self.topic = tracking_topic(state.settings).name

    def load(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PublishedEvent]:
        with UnitOfWork(self.state.sessionmaker) as uow:  # anonymous: public events only
            return published_events(uow, ids)

    def check_rate(self, ip: str) -> None:
        try:
            if self.limiter.hit(self.rate, RATE_SCOPE, ip):
                return
            reset_at = self.limiter.get_window_stats(self.rate, RATE_SCOPE, ip).reset_time
        except redis.RedisError as exc:  # fail open, as every rate limit here (docs/api-rules.md)
            log.warning("rate_limit_unavailable", error=str(exc), scope=RATE_SCOPE)
            return
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many tracking requests; retry in {retry_after} s",
            {"scope": "tracking", "retry_after_s": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


def _tracking(request: Request, state: AppState) -> _Tracking:
    tracking = getattr(request.app.state, "tracking", None)
    if tracking is None or tracking.state is not state:
        tracking = request.app.state.tracking = _Tracking(state)
    return tracking


@router.post(
    "/track",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TrackOut,
    responses=responses(409, 422, 429, 503),
    openapi_extra=OPTIONAL_AUTH,
)
def track(body: TrackBatch, request: Request, state: StateDep) -> TrackOut:
    """Record what visitors do on an event's pages: 1-100 page views, ticket selections and
    checkout starts (public; a token is accepted and ignored; rate limited per client IP). The
    batch is taken whole or not at all: 409 `unknown_event`, `unknown_ticket_type` or
    `occurred_at_out_of_range` (`invalid_batch` when several) names the indexes, and nothing is
    sent; a malformed one is a 422. Bots (by User-Agent) are taken but not counted
    (`filtered`). 202 once the broker has every record; 503 `temporarily_unavailable` when it
    cannot be reached (a retry with the same action ids counts once)."""
    tracking = _tracking(request, state)
    tracking.check_rate(caller_of(request.scope).ip)
    actions = [Action(**action.model_dump()) for action in body.events]
    prepared = prepare(
        actions,
        user_agent=request.headers.get("user-agent"),
        events=tracking.events,
        load=tracking.load,
        bots=tracking.bots,
        late_s=state.settings.analytics_late_s,
        times=tracking.times,
    )
    if prepared.records:
        try:
            publish_tracking(
                state.tracking_producer(),
                tracking.topic,
                prepared.records,
                timeout_s=state.settings.analytics_publish_timeout_s,
                correlation_id=correlation_id.get(),
            )
        except (TrackingUnavailable, KafkaError) as exc:
            log.warning("tracking_unavailable", error=repr(exc), actions=len(prepared.records))
            raise ApiError(
                503,
                "temporarily_unavailable",
                "Tracking is unavailable; retry shortly",
                headers={"Retry-After": "1"},
            ) from None
    if prepared.records:
        _counter().labels("accepted").inc(len(prepared.records))
    if prepared.filtered:
        _counter().labels("filtered").inc(prepared.filtered)
    return TrackOut(accepted=len(prepared.records), filtered=prepared.filtered)
