"""Tracked actions (POST /analytics/track): what a browser reports about a visitor on an event's
page, checked as a whole batch, classified (source, device), bots filtered, and turned into the
records of the tracking topic (schema: domain/schemas/tracking.v1.json).

A batch is all or nothing: every action must name a published event (and, when given, one of its
ticket types) and a time inside the window the warehouse still corrects (``late_s`` back, 5 min
ahead); otherwise nothing is sent and the answer (409) names the indexes. The tenant is the
event's. An action with an id but no time gets the time it was first given (``FirstTimes``).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import redis
from sqlalchemy import select

from core.logging import get_logger
from domain.db.base import uuid7
from domain.errors import Conflict
from domain.event.models import Event, EventStatus, TicketType
from domain.uow import UnitOfWork

log = get_logger(__name__)

TRACK_TYPES = ("page_view", "ticket_selected", "checkout_started")
DEVICES = ("desktop", "mobile", "tablet")
EVENT_TYPE_PREFIX = "tracking."  # header event_type: tracking.page_view, ...
SCHEMA = "tracking"  # domain/schemas/tracking.v1.json
SCHEMA_VERSION = 1
FUTURE_SKEW = timedelta(minutes=5)
DIRECT = "direct"
SOURCE_CHARS = 64
# A client's action id is mapped into this namespace together with the event id: a retry with the
# same id is the same record, and no client can pick the id of another fact (a domain event's).
ID_NAMESPACE = uuid.UUID("6f1d3c2e-5a7b-4c8d-9e0f-a1b2c3d4e5f6")


@dataclass(frozen=True)
class Action:
    """One tracked action as the client sent it (already well-formed: types, lengths)."""

    type: str
    event_id: uuid.UUID
    visitor_id: str
    session_id: str
    id: uuid.UUID | None = None
    ticket_type_id: uuid.UUID | None = None
    occurred_at: datetime | None = None
    referrer: str | None = None
    utm_source: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class PublishedEvent:
    event_id: uuid.UUID
    tenant_id: uuid.UUID
    ticket_type_ids: frozenset[uuid.UUID]


@dataclass(frozen=True)
class Problem:
    index: int
    code: str
    message: str


@dataclass(frozen=True)
class Prepared:
    """A checked batch: the records to send (key, headers, value) and how many bots were dropped."""

    records: list[TrackingRecord]
    filtered: int


@dataclass(frozen=True)
class TrackingRecord:
    key: str  # the event id
    event_type: str  # tracking.<type>
    tenant_id: uuid.UUID
    occurred_at: datetime
    value: dict[str, Any]

    @property
    def id(self) -> str:
        return self.value["id"]


def record_schema() -> dict[str, Any]:
    """The JSON Schema of a tracking record (``domain/schemas/tracking.v1.json``, written and
    checked by ``aqstream schemas`` like the domain events' contracts)."""
    uuid_ = {"type": "string", "format": "uuid"}
    text_ = {"type": "string", "minLength": 1, "maxLength": 64}
    properties: dict[str, Any] = {
        "id": {
            **uuid_,
            "description": "The action's id (also the event_id header): derived from the "
            "client's id when it sent one, so a retry is the same record.",
        },
        "type": {"enum": list(TRACK_TYPES)},
        "tenant_id": {**uuid_, "description": "The organization of the event."},
        "event_id": uuid_,
        "ticket_type_id": {"type": ["string", "null"], "format": "uuid"},
        "visitor_id": text_,
        "session_id": text_,
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "When the browser saw the action (UTC).",
        },
        "received_at": {
            "type": "string",
            "format": "date-time",
            "description": "When the API took it (UTC).",
        },
        "source": {
            **text_,
            "description": 'utm_source, else the referrer\'s host, else "direct".',
        },
        "device": {"enum": list(DEVICES)},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:aqstream:{SCHEMA}:v{SCHEMA_VERSION}",
        "title": SCHEMA,
        "description": "A tracked action (page_view, ticket_selected, checkout_started) as the "
        "API sends it to the tracking topic: key = the event id, header event_type = "
        "tracking.<type>. Not a domain event (no outbox); see docs/tracking.md.",
        "x-aggregate-type": "tracking",
        "x-event-type": SCHEMA,
        "x-schema-version": SCHEMA_VERSION,
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# --- published events ---------------------------------------------------------------------------


def published_events(uow: UnitOfWork, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, PublishedEvent]:
    """The published events among ``ids`` that the caller's context can see (anonymous: public
    ones), with their live ticket types."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    events = uow.session.execute(
        select(Event.id, Event.tenant_id).where(
            Event.id.in_(wanted),
            Event.status == EventStatus.PUBLISHED,
            Event.deleted_at.is_(None),
        )
    ).all()
    found = {row.id: row.tenant_id for row in events}
    types: dict[uuid.UUID, set[uuid.UUID]] = {event_id: set() for event_id in found}
    if found:
        rows = uow.session.execute(
            select(TicketType.event_id, TicketType.id).where(
                TicketType.event_id.in_(list(found)), TicketType.deleted_at.is_(None)
            )
        ).all()
        for row in rows:
            types[row.event_id].add(row.id)
    return {
        event_id: PublishedEvent(event_id, tenant_id, frozenset(types[event_id]))
        for event_id, tenant_id in found.items()
    }


Loader = Callable[[Iterable[uuid.UUID]], Mapping[uuid.UUID, PublishedEvent]]


@dataclass
class EventCache:
    """Published events remembered for ``ttl_s`` (thread-safe), so tracking a page seen by many
    visitors asks the database once in a while, not per request. An action naming a ticket type
    the remembered event lacks looks again (it may be new); unknown events are not remembered."""

    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    _entries: dict[uuid.UUID, tuple[float, PublishedEvent]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(self, actions: Sequence[Action], load: Loader) -> dict[uuid.UUID, PublishedEvent]:
        now = self.clock()
        known: dict[uuid.UUID, PublishedEvent] = {}
        with self._lock:
            for action in actions:
                entry = self._entries.get(action.event_id)
                if entry is not None and now - entry[0] < self.ttl_s:
                    known[action.event_id] = entry[1]
        missing = {
            a.event_id
            for a in actions
            if a.event_id not in known
            or (
                a.ticket_type_id is not None
                and a.ticket_type_id not in known[a.event_id].ticket_type_ids
            )
        }
        if missing:
            loaded = load(missing)
            with self._lock:
                for event_id in missing:
                    known.pop(event_id, None)
                    self._entries.pop(event_id, None)
                for event_id, event in loaded.items():
                    known[event_id] = event
                    self._entries[event_id] = (now, event)
                if len(self._entries) > 10_000:  # many events tracked: forget the expired ones
                    self._entries = {
                        k: v for k, v in self._entries.items() if now - v[0] < self.ttl_s
                    }
        return known

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --- classification -----------------------------------------------------------------------------

_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|nexus (7|9|10)|sm-t\d", re.I)
_ANDROID = re.compile(r"android", re.I)
_MOBILE = re.compile(
    r"mobi|iphone|ipod|windows phone|blackberry|bb10|opera mini|iemobile|webos", re.I
)


def device_of(user_agent: str) -> str:
    """desktop | mobile | tablet, from the User-Agent (Android without "Mobile" is a tablet)."""
    if _TABLET.search(user_agent):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    if _ANDROID.search(user_agent):
        return "tablet"
    return "desktop"


def source_of(utm_source: str | None, referrer: str | None) -> str:
    """utm_source, else the referrer's host (without www.), else "direct"; lower case."""
    if utm_source and utm_source.strip():
        return utm_source.strip().lower()[:SOURCE_CHARS]
    if referrer:
        try:
            host = urlsplit(referrer.strip()).hostname or ""
        except ValueError:
            host = ""
        host = host.lower().removeprefix("www.")
        if host:
            return host[:SOURCE_CHARS]
    return DIRECT


class BotFilter:
    """crawlerdetect's patterns (built once: compiling them is the expensive part); an empty
    User-Agent is a bot too (every browser sends one)."""

    def __init__(self) -> None:
        from crawlerdetect import CrawlerDetect

        self._detect = CrawlerDetect()
        self._lock = threading.Lock()  # CrawlerDetect keeps the last match on the instance

    def is_bot(self, user_agent: str | None) -> bool:
        if not user_agent or not user_agent.strip():
            return True
        with self._lock:
            return bool(self._detect.isCrawler(user_agent))


def record_id(action: Action) -> uuid.UUID:
    """The record's id: derived from the client's (same id, same event: same record), else new."""
    if action.id is None:
        return uuid7()
    return uuid.uuid5(ID_NAMESPACE, f"{action.event_id}/{action.id}")


class FirstTimes:
    """The time given to each action sent with an id but without ``occurred_at``, kept in Redis
    for the late window by tenant, event and id, so that a resend gets it again: the warehouse
    stores a fact once per id *and time*, and the time of receipt differs on every resend."""

    PREFIX = "aq:track:at"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def recall(
        self, actions: Sequence[tuple[uuid.UUID, Action]], *, now: datetime, ttl_s: int
    ) -> list[datetime]:
        """The time of each (tenant, action): its ``occurred_at``, else the one first given to
        its id (``now`` for a new id or one without). One round trip for the whole batch, none
        when no action needs one; without Redis, ``now`` (a resend may then count twice)."""
        times = [_aware(a.occurred_at) if a.occurred_at is not None else now for _, a in actions]
        pending = [
            (i, f"{self.PREFIX}:{tenant}:{a.event_id}:{a.id}")
            for i, (tenant, a) in enumerate(actions)
            if a.occurred_at is None and a.id is not None
        ]
        if not pending:
            return times
        stamp = now.astimezone(UTC).isoformat()
        # MULTI: no expiry between a key's SET NX and its GET. EX 0 is an error in Redis.
        pipe = self.client.pipeline(transaction=True)
        for _, key in pending:
            pipe.set(key, stamp, nx=True, ex=max(ttl_s, 1))
            pipe.get(key)
        try:
            replies = pipe.execute()
        except redis.RedisError as exc:  # fail open: tracking stays up, as its rate limit does
            log.warning("tracking_times_unavailable", error=str(exc), actions=len(pending))
            return times
        for (index, _), first in zip(pending, replies[1::2], strict=True):
            if first is not None:
                times[index] = datetime.fromisoformat(
                    first.decode() if isinstance(first, bytes) else first
                )
        return times


# --- the batch ----------------------------------------------------------------------------------


def check_batch(
    actions: Sequence[Action],
    events: Mapping[uuid.UUID, PublishedEvent],
    *,
    now: datetime,
    late_s: int,
) -> list[Problem]:
    """Every reason the batch cannot be taken, by index (empty: take it)."""
    problems = []
    oldest, latest = now - timedelta(seconds=late_s), now + FUTURE_SKEW
    for index, action in enumerate(actions):
        event = events.get(action.event_id)
        if event is None:
            problems.append(Problem(index, "unknown_event", "No published event with this id"))
        elif action.ticket_type_id is not None and (
            action.ticket_type_id not in event.ticket_type_ids
        ):
            problems.append(
                Problem(index, "unknown_ticket_type", "The ticket type is not one of the event's")
            )
        if action.occurred_at is not None:
            at = _aware(action.occurred_at)
            if at > latest:
                problems.append(
                    Problem(index, "occurred_at_out_of_range", "occurred_at is in the future")
                )
            elif at < oldest:
                problems.append(
                    Problem(
                        index,
                        "occurred_at_out_of_range",
                        f"occurred_at is older than the late window ({late_s} s)",
                    )
                )
    return problems


def rejection(problems: Sequence[Problem]) -> Conflict:
    """One refusal for the batch (409: well-formed, but it does not fit what the platform holds
    now, its published events and the time window): the code of its problems (``invalid_batch``
    when they differ), the indexes, and each problem."""
    codes = {p.code for p in problems}
    code = codes.pop() if len(codes) == 1 else "invalid_batch"
    return Conflict(
        f"{len(problems)} problem(s) in the batch; nothing was accepted",
        code=code,
        details={
            "indexes": sorted({p.index for p in problems}),
            "problems": [
                {"index": p.index, "code": p.code, "message": p.message} for p in problems
            ],
        },
    )


def prepare(
    actions: Sequence[Action],
    *,
    user_agent: str | None,
    events: EventCache,
    load: Loader,
    bots: BotFilter,
    late_s: int,
    times: FirstTimes | None = None,
    now: datetime | None = None,
) -> Prepared:
    """Check the whole batch (raise ``Conflict`` naming every bad index), then the
    records to send: none when the User-Agent is a bot's (they count as filtered). With
    ``times``, an action with an id but no ``occurred_at`` gets the time first given to it."""
    now = now or datetime.now(UTC)
    known = events.lookup(actions, load)
    problems = check_batch(actions, known, now=now, late_s=late_s)
    if problems:
        raise rejection(problems)
    if bots.is_bot(user_agent):
        return Prepared([], len(actions))
    ua_device = device_of(user_agent or "")
    at: list[datetime | None] = [None] * len(actions)
    if times is not None:
        at = list(
            times.recall([(known[a.event_id].tenant_id, a) for a in actions], now=now, ttl_s=late_s)
        )
    return Prepared(
        [
            to_record(a, known[a.event_id], now, ua_device, occurred_at=t)
            for a, t in zip(actions, at, strict=True)
        ],
        0,
    )


def to_record(
    action: Action,
    event: PublishedEvent,
    received_at: datetime,
    ua_device: str,
    *,
    occurred_at: datetime | None = None,
) -> TrackingRecord:
    """The record of an action; its time: ``occurred_at`` of the action, else the one given
    here, else ``received_at``."""
    if action.occurred_at is not None:
        occurred_at = _aware(action.occurred_at)
    occurred_at = occurred_at or received_at
    value = {
        "id": str(record_id(action)),
        "type": action.type,
        "tenant_id": str(event.tenant_id),
        "event_id": str(action.event_id),
        "ticket_type_id": str(action.ticket_type_id) if action.ticket_type_id else None,
        "visitor_id": action.visitor_id,
        "session_id": action.session_id,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(),
        "received_at": received_at.astimezone(UTC).isoformat(),
        "source": source_of(action.utm_source, action.referrer),
        "device": action.device or ua_device,
    }
    return TrackingRecord(
        key=str(action.event_id),
        event_type=EVENT_TYPE_PREFIX + action.type,
        tenant_id=event.tenant_id,
        occurred_at=occurred_at,
        value=value,
    )


def _aware(moment: datetime) -> datetime:
    """A time without an offset is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
