"""Records to facts, and the rules of tracked actions (no I/O): every counted event type gives the
right fact; other types none; the batch checks, bot filter, source and device."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator

from domain.analytics import facts as mapping
from domain.analytics.facts import (
    DOMAIN_KINDS,
    Fact,
    FactKind,
    UnreadableRecord,
    to_fact,
    tracked_fact,
)
from domain.analytics.tracking import (
    Action,
    BotFilter,
    EventCache,
    PublishedEvent,
    check_batch,
    device_of,
    prepare,
    record_id,
    record_schema,
    source_of,
    to_record,
)
from domain.contracts import SCHEMA_DIR, validate_payload
from domain.errors import Conflict
from streams.contracts import event_classes

TENANT = uuid.uuid4()
EVENT = uuid.uuid4()
TT = uuid.uuid4()
REG = uuid.uuid4()
USER = uuid.uuid4()
AT = "2026-11-22T10:15:30.123456+00:00"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _headers(event_type: str, event_id: uuid.UUID | None = None) -> dict[str, str]:
    return {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "tenant_id": str(TENANT),
        "occurred_at": AT,
        "schema_version": "1",
    }


def _payloads() -> dict[str, dict]:
    """A valid payload of every counted domain event type (checked against its contract)."""
    base = {"aggregate_id": str(REG), "tenant_id": str(TENANT), "event_id": str(EVENT)}
    payment = {
        **base,
        "payment_id": str(uuid.uuid4()),
        "registration_id": str(REG),
        "user_id": str(USER),
        "provider": "sandbox",
        "purpose": "deposit",
        "currency": "EUR",
        "ticket_type_id": str(TT),
    }
    entry = {**base, "entry_id": str(uuid.uuid4()), "ticket_type_id": str(TT), "user_id": str(USER)}
    return {
        "reservation.created": {
            **base,
            "reservation_id": str(uuid.uuid4()),
            "ticket_type_id": str(TT),
            "user_id": str(USER),
            "quantity": 2,
            "expires_at": AT,
            "from_waitlist": False,
        },
        "registration.created": {
            **base,
            "registration_id": str(REG),
            "ticket_type_id": str(TT),
            "user_id": str(USER),
            "quantity": 3,
            "status": "pending_payment",
            "payment_mode": "full",
            "currency": "EUR",
            "amount_total": 3000,
            "amount_due_now": 3000,
            "reservation_id": None,
        },
        "registration.confirmed": {
            **base,
            "registration_id": str(REG),
            "user_id": str(USER),
            "quantity": 3,
            "ticket_type_id": str(TT),
        },
        "registration.cancelled": {
            **base,
            "registration_id": str(REG),
            "ticket_type_id": str(TT),
            "user_id": str(USER),
            "quantity": 3,
            "reason": "participant",
            "amount_paid": 0,
            "currency": "EUR",
        },
        "payment.completed": {**payment, "amount": 1500},
        "payment.refunded": {
            **payment,
            "refund_id": str(uuid.uuid4()),
            "amount": 500,
            "amount_refunded": 500,
            "payment_amount": 1500,
            "partial": True,
            "reason": "requested",
        },
        "checkin.completed": {
            **base,
            "registration_id": str(REG),
            "ticket_type_id": str(TT),
            "user_id": str(USER),
            "quantity": 3,
            "checked_in_by": str(USER),
            "checked_in_at": "2026-11-22T18:00:00+00:00",
        },
        "waitlist.joined": entry,
        "waitlist.offered": {**entry, "reservation_id": str(uuid.uuid4()), "expires_at": AT},
        "waitlist.left": entry,
    }


EXPECTED = {
    "reservation.created": dict(kind=FactKind.RESERVATION, quantity=2),
    "registration.created": dict(kind=FactKind.REGISTRATION, registration_id=REG, quantity=3),
    "registration.confirmed": dict(kind=FactKind.CONFIRMATION, registration_id=REG, quantity=3),
    "registration.cancelled": dict(kind=FactKind.CANCELLATION, registration_id=REG, quantity=3),
    "payment.completed": dict(
        kind=FactKind.PAYMENT, registration_id=REG, amount=1500, currency="EUR", purpose="deposit"
    ),
    "payment.refunded": dict(
        kind=FactKind.REFUND, registration_id=REG, amount=500, currency="EUR", purpose="deposit"
    ),
    "checkin.completed": dict(
        kind=FactKind.CHECKIN,
        registration_id=REG,
        quantity=3,
        occurred_at=datetime(2026, 11, 22, 18, tzinfo=UTC),
    ),
    "waitlist.joined": dict(kind=FactKind.WAITLIST_JOINED),
    "waitlist.offered": dict(kind=FactKind.WAITLIST_LEFT),
    "waitlist.left": dict(kind=FactKind.WAITLIST_LEFT),
}


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_every_counted_event_type_gives_its_fact(event_type: str) -> None:
    payload = _payloads()[event_type]
    validate_payload(event_type, 1, payload)  # the test's payloads are real ones
    event_id = uuid.uuid4()
    fact = to_fact(event_type, payload, _headers(event_type, event_id))
    expected = Fact(
        **{
            "fact_id": event_id,
            "tenant_id": TENANT,
            "event_id": EVENT,
            "ticket_type_id": TT,
            "occurred_at": datetime.fromisoformat(AT),
            **EXPECTED[event_type],
        }
    )
    assert fact == expected


def test_the_mapping_covers_exactly_the_counted_types() -> None:
    assert set(EXPECTED) == set(DOMAIN_KINDS)
    known = {cls.event_type for cls in event_classes()}
    assert set(DOMAIN_KINDS) <= known  # no typo in a mapped type


@pytest.mark.parametrize(
    "event_type", ["event.published", "payment.created", "payment.failed", "user.registered", ""]
)
def test_other_types_are_ignored(event_type: str) -> None:
    assert to_fact(event_type, {"event_id": str(EVENT)}, _headers(event_type)) is None


def test_records_written_before_ticket_type_id_existed_still_map() -> None:
    payload = dict(_payloads()["payment.completed"])
    del payload["ticket_type_id"]
    validate_payload("payment.completed", 1, payload)  # optional in the v1 contract
    fact = to_fact("payment.completed", payload, _headers("payment.completed"))
    assert fact is not None and fact.ticket_type_id is None and fact.amount == 1500


def test_a_record_without_what_its_fact_needs_is_unreadable() -> None:
    payload = dict(_payloads()["payment.completed"])
    del payload["amount"]
    with pytest.raises(UnreadableRecord):
        to_fact("payment.completed", payload, _headers("payment.completed"))
    headers = _headers("waitlist.joined")
    del headers["tenant_id"]
    payload = dict(_payloads()["waitlist.joined"], tenant_id=None)
    with pytest.raises(UnreadableRecord):
        to_fact("waitlist.joined", payload, headers)


# --- tracked actions ----------------------------------------------------------------------------

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
PUBLISHED = {EVENT: PublishedEvent(EVENT, TENANT, frozenset({TT}))}


def _action(**fields) -> Action:
    return Action(
        **{"type": "page_view", "event_id": EVENT, "visitor_id": "v1", "session_id": "s1", **fields}
    )


def test_a_tracking_record_maps_to_its_fact_and_follows_its_schema() -> None:
    action = _action(
        type="ticket_selected",
        id=uuid.uuid4(),
        ticket_type_id=TT,
        occurred_at=NOW - timedelta(minutes=3),
        referrer="https://www.Example.org/path?q=1",
    )
    record = to_record(action, PUBLISHED[EVENT], NOW, "mobile")
    validate_payload("tracking", 1, record.value)
    assert record.key == str(EVENT) and record.event_type == "tracking.ticket_selected"
    headers = {**_headers(record.event_type, uuid.UUID(record.id)), "occurred_at": NOW.isoformat()}
    fact = to_fact(record.event_type, json.loads(json.dumps(record.value)), headers)
    assert fact == Fact(
        fact_id=uuid.UUID(record.id),
        kind=FactKind.TICKET_SELECTED,
        tenant_id=TENANT,
        event_id=EVENT,
        occurred_at=NOW - timedelta(minutes=3),  # the browser's time, not the header's
        ticket_type_id=TT,
        visitor_id="v1",
        session_id="s1",
        source="example.org",
        device="mobile",
    )


def _fast(event_type: str, value: dict | bytes, headers: dict[str, str]) -> Fact | None:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return tracked_fact(
        event_type,
        raw,
        headers.get("event_id"),
        headers.get("tenant_id"),
        headers.get("occurred_at"),
    )


@pytest.mark.parametrize("kind", ["page_view", "ticket_selected", "checkout_started"])
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"ticket_type_id": TT, "occurred_at": NOW - timedelta(minutes=50), "utm_source": "mail"},
        {
            "occurred_at": datetime(2026, 11, 22, 9, 59),
            "referrer": "https://t.co/x",
            "device": "tablet",
        },
    ],
)
def test_the_fast_path_gives_the_fact_to_fact_gives(kind: str, fields: dict) -> None:
    record = to_record(
        _action(type=kind, id=uuid.uuid4(), **fields), PUBLISHED[EVENT], NOW, "mobile"
    )
    headers = _headers(record.event_type, uuid.UUID(record.id))
    fact = _fast(record.event_type, record.value, headers)
    assert fact is not None and fact == to_fact(record.event_type, record.value, headers)
    assert fact.occurred_at.tzinfo is not None


def test_the_fast_path_reads_what_to_fact_reads_from_the_headers() -> None:
    record = to_record(_action(id=uuid.uuid4()), PUBLISHED[EVENT], NOW, "desktop")
    headers = _headers(record.event_type, uuid.UUID(record.id))
    # no time in the value: the header's; a naive time: UTC; no tenant header: the value's
    for value, heads in [
        ({k: v for k, v in record.value.items() if k != "occurred_at"}, headers),
        ({**record.value, "occurred_at": "2026-11-22T09:30:00"}, headers),
        (record.value, {k: v for k, v in headers.items() if k != "tenant_id"}),
    ]:
        assert _fast(record.event_type, value, heads) == to_fact(record.event_type, value, heads)
    assert _fast("registration.created", record.value, headers) is None  # not a tracked action
    assert _fast("tracking.other", record.value, headers) is None


@pytest.mark.parametrize(
    ("value", "headers"),
    [
        (b"not json", {}),
        ({"visitor_id": "v1", "session_id": "s1"}, {}),  # no event id
        ({"event_id": "not-a-uuid", "visitor_id": "v1", "session_id": "s1"}, {}),
        ({"event_id": str(EVENT), "visitor_id": 7, "session_id": "s1"}, {}),  # a number
        ({"event_id": str(EVENT), "visitor_id": "v1", "session_id": "s1"}, {"event_id": ""}),
        ({"event_id": str(EVENT), "visitor_id": "v1", "session_id": "s1"}, {"tenant_id": ""}),
        (
            {"event_id": str(EVENT), "visitor_id": "v1", "session_id": "s1"},
            {"occurred_at": "", "tenant_id": str(TENANT)},
        ),
        ({"event_id": str(EVENT), "visitor_id": "v1", "session_id": "s1", "occurred_at": "x"}, {}),
    ],
)
def test_the_fast_path_refuses_what_cannot_be_a_fact(value: dict | bytes, headers: dict) -> None:
    heads = {**_headers("tracking.page_view"), **headers}
    with pytest.raises(UnreadableRecord):
        _fast("tracking.page_view", value, heads)
    if isinstance(value, dict):  # the decoded value: one mapping refuses it the same way
        with pytest.raises(UnreadableRecord):
            to_fact("tracking.page_view", value, heads)


def test_the_committed_tracking_schema_is_the_generated_one() -> None:
    committed = json.loads((SCHEMA_DIR / "tracking.v1.json").read_text())
    assert committed == record_schema()
    Draft202012Validator.check_schema(committed)


def test_a_client_id_gives_the_same_record_id_on_retry_and_none_of_another_event() -> None:
    client_id = uuid.uuid4()
    first = record_id(_action(id=client_id))
    assert record_id(_action(id=client_id)) == first
    assert first != client_id  # a client cannot pick a fact id (e.g. a domain event's)
    assert record_id(_action(id=client_id, event_id=uuid.uuid4())) != first
    assert record_id(_action()) != record_id(_action())  # no id: a new one each time


def test_the_batch_check_names_every_bad_index() -> None:
    late = 3600
    actions = [
        _action(),
        _action(event_id=uuid.uuid4()),  # unknown event
        _action(ticket_type_id=uuid.uuid4()),  # not the event's ticket type
        _action(occurred_at=NOW + timedelta(minutes=6)),
        _action(occurred_at=NOW - timedelta(seconds=late + 1)),
        _action(occurred_at=NOW + timedelta(minutes=4), ticket_type_id=TT),
        _action(occurred_at=(NOW - timedelta(minutes=59)).replace(tzinfo=None)),  # naive = UTC
    ]
    problems = check_batch(actions, PUBLISHED, now=NOW, late_s=late)
    assert [(p.index, p.code) for p in problems] == [
        (1, "unknown_event"),
        (2, "unknown_ticket_type"),
        (3, "occurred_at_out_of_range"),
        (4, "occurred_at_out_of_range"),
    ]


class _Loads:
    def __init__(self, events: dict) -> None:
        self.events = events
        self.calls: list[set] = []

    def __call__(self, ids):
        self.calls.append(set(ids))
        return {i: self.events[i] for i in ids if i in self.events}


def test_prepare_rejects_the_whole_batch_or_filters_bots() -> None:
    cache, bots = EventCache(30), BotFilter()
    load = _Loads(PUBLISHED)
    with pytest.raises(Conflict) as caught:
        prepare(
            [_action(), _action(event_id=uuid.uuid4())],
            user_agent=CHROME,
            events=cache,
            load=load,
            bots=bots,
            late_s=3600,
            now=NOW,
        )
    assert caught.value.code == "unknown_event"
    assert caught.value.details["indexes"] == [1]
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    for ua in (googlebot, "", None, "curl/8.4.0"):
        prepared = prepare(
            [_action(), _action()], user_agent=ua, events=cache, load=load, bots=bots,
            late_s=3600, now=NOW,
        )  # fmt: skip
        assert prepared.records == [] and prepared.filtered == 2
    prepared = prepare(
        [_action()], user_agent=CHROME, events=cache, load=load, bots=bots, late_s=3600, now=NOW
    )
    assert prepared.filtered == 0 and prepared.records[0].value["device"] == "desktop"


def test_the_event_cache_asks_again_for_new_ticket_types_and_after_its_ttl() -> None:
    clock = [0.0]
    cache = EventCache(30, clock=lambda: clock[0])
    events = dict(PUBLISHED)
    load = _Loads(events)
    assert cache.lookup([_action()], load)[EVENT].tenant_id == TENANT
    cache.lookup([_action(), _action(ticket_type_id=TT)], load)
    assert len(load.calls) == 1  # remembered
    new_tt = uuid.uuid4()
    events[EVENT] = PublishedEvent(EVENT, TENANT, frozenset({TT, new_tt}))
    assert new_tt in cache.lookup([_action(ticket_type_id=new_tt)], load)[EVENT].ticket_type_ids
    assert len(load.calls) == 2  # a ticket type it did not know: looked again
    unknown = uuid.uuid4()
    cache.lookup([_action(event_id=unknown)], load)
    cache.lookup([_action(event_id=unknown)], load)
    assert len(load.calls) == 4  # unknown events are not remembered
    del events[EVENT]  # unpublished
    assert EVENT in cache.lookup([_action()], load)
    clock[0] = 31
    assert cache.lookup([_action()], load) == {}


@pytest.mark.parametrize(
    ("ua", "device"),
    [
        (CHROME, "desktop"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "mobile",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Mobile Safari/537.36",
            "mobile",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "tablet",
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0 Safari/537.36",
            "tablet",
        ),
        ("", "desktop"),
    ],
)
def test_device_from_the_user_agent(ua: str, device: str) -> None:
    assert device_of(ua) == device


def test_source_is_utm_then_referrer_host_then_direct() -> None:
    assert source_of("Newsletter ", "https://t.co/x") == "newsletter"
    assert source_of(None, "https://www.google.com/search?q=pycon") == "google.com"
    assert source_of("  ", "http://sub.example.org:8080/") == "sub.example.org"
    assert source_of(None, "not a url") == "direct"
    assert source_of(None, "http://[broken") == "direct"
    assert source_of(None, None) == "direct"
    assert len(source_of("x" * 200, None)) == 64


def test_the_mapping_module_names_every_tracking_type() -> None:
    assert {k.value for k in mapping.TRACKING_KINDS.values()} == {
        "page_view",
        "ticket_selected",
        "checkout_started",
    }
