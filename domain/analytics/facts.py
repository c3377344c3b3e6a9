"""The warehouse's input, ``Fact`` (one per business fact or tracked action), and the mapping from
a consumed record (its event type, JSON payload and headers) to it.

``Fact`` is the contract between the producers of facts (the analytics stream in
``streams/analytics.py`` and ``aqstream backfill``) and the warehouse (``warehouse/sink.py``
stores them and keeps the rollups). A fact's ``fact_id`` is the id of the record it comes from
(the domain event id, or the id the API gave a tracked action): storing a fact twice changes
nothing, which is what makes replay and redelivery harmless.

The fact's id is the record's ``event_id`` header (the outbox row's id, or the tracked action's
id), its tenant the ``tenant_id`` header, its time the event's: ``occurred_at`` of the record
(the writing transaction's start, or when the browser saw the action), except a check-in, which
counts when the participant was let in (``checked_in_at``). Types the analytics does not count
map to None.

Tracking records (the platform's one high-volume topic) also have a fast path,
``tracked_fact``: the JSON value is decoded straight into a typed struct by msgspec (ids and times
parsed and checked in C) instead of a dict first; both paths then share one mapping
(docs/analytics.md, "The write path").
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.analytics.tracking import EVENT_TYPE_PREFIX, TRACK_TYPES


class FactKind(enum.StrEnum):
    # tracked by the browser (POST /analytics/track), event level; ticket_type_id when known
    PAGE_VIEW = "page_view"
    TICKET_SELECTED = "ticket_selected"
    CHECKOUT_STARTED = "checkout_started"
    # from the domain topics
    RESERVATION = "reservation"  # reservation.created: seats held on a timer
    REGISTRATION = "registration"  # registration.created
    CONFIRMATION = "confirmation"  # registration.confirmed
    CANCELLATION = "cancellation"  # registration.cancelled
    PAYMENT = "payment"  # payment.completed (amount, currency, purpose full|deposit|remainder)
    REFUND = "refund"  # payment.refunded (amount = this refund, currency)
    CHECKIN = "checkin"  # checkin.completed (occurred_at = checked_in_at)
    WAITLIST_JOINED = "waitlist_joined"  # waitlist.joined
    WAITLIST_LEFT = "waitlist_left"  # waitlist.left or waitlist.offered: no longer waiting


TRACKED_KINDS = frozenset({FactKind.PAGE_VIEW, FactKind.TICKET_SELECTED, FactKind.CHECKOUT_STARTED})


class Fact(msgspec.Struct, frozen=True, omit_defaults=True):
    """Immutable; a msgspec struct rather than a frozen dataclass because the worker builds one
    per tracked action: 0.4 µs instead of 2.4 µs here (docs/analytics.md, "The write path").
    Encoded (the sink sends facts to PostgreSQL as JSON), a member at its default is left out:
    a tracked action's JSON is a quarter shorter."""

    fact_id: uuid.UUID
    kind: FactKind
    tenant_id: uuid.UUID
    event_id: uuid.UUID
    occurred_at: datetime  # aware (UTC); the minute bucket is taken from it
    ticket_type_id: uuid.UUID | None = None
    registration_id: uuid.UUID | None = None
    quantity: int = 1  # seats (reservation, registration, cancellation, confirmation, checkin)
    amount: int = 0  # minor units (payment, refund)
    currency: str | None = None  # ISO 4217 (payment, refund)
    purpose: str | None = None  # payment: full | deposit | remainder
    # tracked actions; holds and registrations made by a tracked visitor carry visitor_id too
    visitor_id: str | None = None
    session_id: str | None = None
    source: str | None = None  # utm_source, else the referrer's host, else "direct"
    device: str | None = None  # desktop | mobile | tablet


DOMAIN_KINDS: dict[str, FactKind] = {
    "reservation.created": FactKind.RESERVATION,
    "registration.created": FactKind.REGISTRATION,
    "registration.confirmed": FactKind.CONFIRMATION,
    "registration.cancelled": FactKind.CANCELLATION,
    "payment.completed": FactKind.PAYMENT,
    "payment.refunded": FactKind.REFUND,
    "checkin.completed": FactKind.CHECKIN,
    "waitlist.joined": FactKind.WAITLIST_JOINED,
    "waitlist.offered": FactKind.WAITLIST_LEFT,  # an offered entry no longer waits
    "waitlist.left": FactKind.WAITLIST_LEFT,
}
TRACKING_KINDS: dict[str, FactKind] = {
    EVENT_TYPE_PREFIX + kind: FactKind(kind) for kind in TRACK_TYPES
}
DOMAIN_EVENT_TYPES = tuple(DOMAIN_KINDS)


class UnreadableRecord(ValueError):
    """A record of a counted type that lacks what its fact needs (it cannot succeed on retry)."""


def kind_of(event_type: str) -> FactKind | None:
    return DOMAIN_KINDS.get(event_type) or TRACKING_KINDS.get(event_type)


def to_fact(event_type: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Fact | None:
    """The fact of one record, or None when the analytics does not count its type."""
    kind = kind_of(event_type)
    if kind is None:
        return None
    try:
        if kind in TRACKED_KINDS:
            return _tracked(
                kind,
                msgspec.convert(payload, _Tracked),
                headers.get("event_id"),
                headers.get("tenant_id"),
                headers.get("occurred_at"),
            )
        return _fact(kind, payload, headers)
    except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
        raise UnreadableRecord(f"{event_type}: {exc!r}") from exc


def _fact(kind: FactKind, p: Mapping[str, Any], headers: Mapping[str, str]) -> Fact:
    tenant = headers.get("tenant_id") or p.get("tenant_id")
    if not tenant:
        raise ValueError("no tenant_id")
    common: dict[str, Any] = {
        "fact_id": uuid.UUID(headers["event_id"]),
        "kind": kind,
        "tenant_id": _known_uuid(tenant),
        "event_id": _known_uuid(p["event_id"]),
        "ticket_type_id": _uuid(p.get("ticket_type_id")),
    }
    occurred_at = _time(p["checked_in_at"] if kind == FactKind.CHECKIN else headers["occurred_at"])
    registration_id = uuid.UUID(p["registration_id"]) if p.get("registration_id") else None
    if kind in (FactKind.PAYMENT, FactKind.REFUND):
        return Fact(
            **common,
            occurred_at=occurred_at,
            registration_id=registration_id,
            amount=int(p["amount"]),
            currency=p["currency"],
            purpose=p.get("purpose"),
        )
    return Fact(
        **common,
        occurred_at=occurred_at,
        registration_id=registration_id,
        quantity=int(p.get("quantity") or 1),
        # holds and registrations name the tracking visitor who made them, when the page sent it
        # (first-touch attribution: docs/analytics.md, "Funnel and attribution")
        visitor_id=p.get("visitor_id") if kind in _VISITED else None,
    )


_VISITED = frozenset({FactKind.RESERVATION, FactKind.REGISTRATION})


def _uuid(value: Any) -> uuid.UUID | None:
    return _known_uuid(value) if value else None


@functools.lru_cache(maxsize=65536)
def _known_uuid(value: str) -> uuid.UUID:
    """An id that comes again and again (tenants, events, ticket types): parsed once."""
    return uuid.UUID(value)


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Tracked(msgspec.Struct):
    """What a fact takes from a tracking record's value (domain/schemas/tracking.v1.json; the
    other members are ignored)."""

    event_id: uuid.UUID
    visitor_id: str
    session_id: str
    tenant_id: uuid.UUID | None = None
    ticket_type_id: uuid.UUID | None = None
    occurred_at: datetime | None = None
    source: str | None = None
    device: str | None = None


_TRACKED = msgspec.json.Decoder(_Tracked)


def tracked_fact(
    event_type: str,
    value: bytes,
    fact_id: str | None,
    tenant_id: str | None,
    occurred_at: str | None,
) -> Fact | None:
    """The fact of one tracking record, from its JSON value and three headers (``event_id``,
    ``tenant_id``, ``occurred_at``): what ``to_fact`` gives for the decoded value, or None when
    the type is not a tracked action, without building the value's dict (the worker's hot path)."""
    kind = TRACKING_KINDS.get(event_type)
    if kind is None:
        return None
    try:
        return _tracked(kind, _TRACKED.decode(value), fact_id, tenant_id, occurred_at)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise UnreadableRecord(f"{event_type}: {exc!r}") from exc


def _tracked(
    kind: FactKind,
    action: _Tracked,
    fact_id: str | None,
    tenant_id: str | None,
    occurred_at: str | None,
) -> Fact:
    """A tracked action's fact: the value as ``action`` (ids and times parsed and type checked by
    msgspec: a number for a visitor id is refused), the id from the ``event_id`` header, the
    tenant from the header or else the value, the time from the value or else the header (a time
    without an offset is UTC). Raises ValueError (or msgspec's errors) for what is missing."""
    if not fact_id:
        raise ValueError("no event_id header")
    if tenant_id:
        tenant = _known_uuid(tenant_id)
    elif action.tenant_id is not None:
        tenant = action.tenant_id
    else:
        raise ValueError("no tenant_id")
    if action.occurred_at is not None:
        moment = action.occurred_at
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    elif occurred_at:
        moment = _time(occurred_at)
    else:
        raise ValueError("no occurred_at")
    return Fact(
        msgspec.convert(fact_id, uuid.UUID),  # in C: a third of uuid.UUID's 2 µs
        kind,
        tenant,
        action.event_id,
        moment,
        action.ticket_type_id,
        visitor_id=action.visitor_id,
        session_id=action.session_id,
        source=action.source,
        device=action.device,
    )
