"""``aqstream warehouse reconcile``: re-derive the domain facts from the transactional tables,
store the ones the warehouse lacks, and correct the rollups they touch.

The stream is not the record: a topic range lost to retention, a reset consumer group, a lost
broker volume leaves the warehouse short, and nothing else notices. The transactional tables are
the truth. For each business fact they hold (a registration, its confirmation, cancellation and
check-in, a completed payment, a succeeded refund, a seat hold, a waitlist entry joining and
leaving) whose time lies in the range and before ``now - settle``, reconcile finds the fact the
warehouse should hold and stores it through the sink (``warehouse.sink.ingest``) when no stored
fact accounts for it. Then, for every event it added to, ``warehouse.backfill.rebuild_event``
recomputes the rollups absolutely from an hour before the earliest added fact, in the same
transaction (a fact deleted by hand is still counted in its rollups until then).

**Which fact.** While the business fact's outbox row is still there (the relay keeps sent rows
``AQSTREAM_RELAY_RETENTION_S``, 7 days), the fact is rebuilt from it exactly as the worker would
have: the relay's headers (``streams.relay.headers``) and ``domain.analytics.facts.to_fact``,
so it has the event id and time of the live one, and the sink's primary key makes the two one
fact whichever comes first. Once the row is pruned, the fact is derived from the tables with a
deterministic id, ``uuid5(NAMESPACE, "<kind>:<row id>")`` (the registration, check-in, payment,
refund, reservation or waitlist entry), so running reconcile again stores nothing new.

**Whether it is there.** Facts name no outbox row, so a stored fact is matched to a business
fact by what it carries, per event and kind (``_group``): a registration, confirmation,
cancellation or check-in by its registration; a payment by registration and purpose (one live
payment per purpose); refunds as a multiset per registration and amount; seat holds as a
multiset per ticket type and seats, waitlist moves per ticket type. Within a group a stored fact
is taken by the same id first, then by the same time (the tables and the outbox share the
writing transaction's ``now()``: a hold's and an entry's ``created_at``, a cancelled entry's
``updated_at``, an offer's hold's ``created_at``), then by the nearest time: so the count per
group is exact, and the time only decides which one of a group is missing. Stored facts up to
``SLACK`` outside the range take part, so a fact whose time differs from its row's by a few
milliseconds (a confirmation's ``confirmed_at`` is taken after its transaction began) is found.

Not reconciled: tracked actions (page views, ticket selections, checkouts), which exist only in
the tracking topic: their durability is that topic's retention (docs/analytics.md, "Reconcile").

Reads are cross-tenant and done as the migration owner (the transactional tables, the outbox,
the stored facts); writes go through the warehouse's writers' connections, as backfill's do.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from domain.analytics.facts import Fact, FactKind, UnreadableRecord, to_fact
from domain.outbox.records import Row, headers
from warehouse.backfill import BEGINNING, rebuild_event, refresh_aggregates
from warehouse.rollups import EVENT, REVENUE, floor
from warehouse.sink import ingest

SETTLE = timedelta(minutes=5)  # younger business facts may still be on their way: left alone
# How far a stored fact's time may lie from its row's and still be matched; also how much before
# the earliest added fact the rollups are rebuilt (a deleted fact counted there goes with it).
SLACK = timedelta(hours=1)
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://aqstream.dev/warehouse/reconcile")


@dataclass(frozen=True)
class _Source:
    """Where the business facts of one kind are in the tables, and their outbox rows."""

    kind: FactKind
    event_types: tuple[str, ...]  # outbox rows of this kind
    rows: str  # SELECT of the columns in _COLUMNS
    outbox_on: str = ""  # further conditions tying an outbox row o to a row s


_COLUMNS = (
    "tenant_id",
    "event_id",
    "at",  # the table's time of the fact
    "source_id",  # the row it comes from (the derived fact's id is made from it)
    "aggregate_id",  # the outbox rows' aggregate
    "ticket_type_id",
    "registration_id",
    "quantity",
    "amount",
    "currency",
    "purpose",
    "visitor_id",  # holds and registrations: the tracking visitor (attribution)
)


def _rows(tables: str, where: str = "true", **columns: str) -> str:
    defaults = {
        "tenant_id": "r.tenant_id",
        "event_id": "r.event_id",
        "ticket_type_id": "r.ticket_type_id",
        "registration_id": "r.id",
        "quantity": "r.quantity",
        "amount": "0::bigint",
        "currency": "NULL::text",
        "purpose": "NULL::text",
        "visitor_id": "NULL::text",
    }
    values = {**defaults, **columns}
    select = ", ".join(f"{values[name]} AS {name}" for name in _COLUMNS)
    return f"SELECT {select} FROM {tables} WHERE {where}"


_PAID = "p.status IN ('completed', 'partially_refunded', 'refunded')"  # completed, whatever since
_SOURCES = (
    _Source(
        FactKind.RESERVATION,
        ("reservation.created",),
        _rows(
            "reservations r",
            at="r.created_at",
            source_id="r.id",
            aggregate_id="r.id",
            registration_id="NULL::uuid",
            visitor_id="r.visitor_id",
        ),
    ),
    _Source(
        FactKind.REGISTRATION,
        ("registration.created",),
        _rows(
            "registrations r",
            at="r.created_at",
            source_id="r.id",
            aggregate_id="r.id",
            visitor_id="r.visitor_id",
        ),
    ),
    _Source(
        FactKind.CONFIRMATION,
        ("registration.confirmed",),
        _rows(
            "registrations r",
            "r.confirmed_at IS NOT NULL",
            at="r.confirmed_at",
            source_id="r.id",
            aggregate_id="r.id",
        ),
    ),
    _Source(
        FactKind.CANCELLATION,
        ("registration.cancelled",),
        _rows(
            "registrations r",
            "r.cancelled_at IS NOT NULL",
            at="r.cancelled_at",
            source_id="r.id",
            aggregate_id="r.id",
        ),
    ),
    _Source(
        FactKind.CHECKIN,
        ("checkin.completed",),
        _rows(
            "check_ins c JOIN registrations r ON r.id = c.registration_id",
            at="c.created_at",  # = registrations.checked_in_at, the fact's time
            source_id="c.id",
            aggregate_id="r.id",
        ),
    ),
    _Source(
        FactKind.PAYMENT,
        ("payment.completed",),
        _rows(
            "payments p JOIN registrations r ON r.id = p.registration_id",
            _PAID,
            tenant_id="p.tenant_id",
            event_id="p.event_id",
            at="coalesce(p.completed_at, p.updated_at)",
            source_id="p.id",
            aggregate_id="p.id",
            registration_id="p.registration_id",
            quantity="1",
            amount="p.amount",
            currency="p.currency",
            purpose="p.purpose::text",
        ),
    ),
    _Source(
        FactKind.REFUND,
        ("payment.refunded",),
        _rows(
            "refunds f JOIN payments p ON p.id = f.payment_id"
            " JOIN registrations r ON r.id = p.registration_id",
            "f.status = 'succeeded'",
            tenant_id="f.tenant_id",
            event_id="p.event_id",
            at="coalesce(f.succeeded_at, f.updated_at)",
            source_id="f.id",
            aggregate_id="p.id",
            registration_id="p.registration_id",
            quantity="1",
            amount="f.amount",
            currency="p.currency",  # payment.refunded carries the payment's
            purpose="p.purpose::text",
        ),
        outbox_on="o.payload->>'refund_id' = s.source_id::text",
    ),
    _Source(
        FactKind.WAITLIST_JOINED,
        ("waitlist.joined",),
        _rows(
            "waitlist_entries w",
            tenant_id="w.tenant_id",
            event_id="w.event_id",
            at="w.created_at",
            source_id="w.id",
            aggregate_id="w.id",
            ticket_type_id="w.ticket_type_id",
            registration_id="NULL::uuid",
            quantity="1",
        ),
    ),
    _Source(
        FactKind.WAITLIST_LEFT,
        ("waitlist.offered", "waitlist.left"),
        _rows(
            "waitlist_entries w LEFT JOIN reservations v ON v.id = w.reservation_id",
            "w.status <> 'waiting'",
            tenant_id="w.tenant_id",
            event_id="w.event_id",
            # left: the leaving's update; offered (then accepted or expired): the offer's hold
            at="CASE WHEN w.status = 'cancelled' THEN w.updated_at"
            " ELSE coalesce(v.created_at, w.updated_at) END",
            source_id="w.id",
            aggregate_id="w.id",
            ticket_type_id="w.ticket_type_id",
            registration_id="NULL::uuid",
            quantity="1",
        ),
    ),
)
KINDS = tuple(source.kind for source in _SOURCES)

_WITHIN = (
    "s.at >= :lo AND s.at < :hi"
    " AND (CAST(:tenant AS uuid) IS NULL OR s.tenant_id = CAST(:tenant AS uuid))"
)
# An outbox row as the relay reads it to publish (streams.relay._READ), for streams.relay.Row.
_OUTBOX = (
    "o.id::text, o.aggregate_type, o.aggregate_id::text, o.event_type, o.schema_version::text,"
    " coalesce(o.tenant_id::text, ''), o.payload::text, coalesce(o.headers->>'correlation_id', ''),"
    " to_json(o.occurred_at)#>>'{}', extract(epoch FROM o.occurred_at)::float8"
)


def _types(source: _Source) -> str:
    return ", ".join(f"'{t}'" for t in source.event_types)


# Every business fact of the range with its outbox row, if any, by tenant and event. The outbox
# has no index on aggregate_id for sent rows: one hash join per kind over its rows from the
# range on (its ids are UUIDv7, so the primary key bounds them by time).
_CANDIDATES = (
    " UNION ALL ".join(
        f"SELECT s.*, '{s_.kind.value}' AS kind, {_OUTBOX} FROM ({s_.rows}) s"
        f" LEFT JOIN outbox o ON o.aggregate_id = s.aggregate_id"
        f" AND o.event_type IN ({_types(s_)}) AND o.id >= :outbox_from"
        + (f" AND {s_.outbox_on}" if s_.outbox_on else "")
        + f" WHERE {_WITHIN}"
        for s_ in _SOURCES
    )
    + " ORDER BY tenant_id, event_id"
)
_COUNTS = (
    "SELECT tenant_id, kind, count(*) FROM ("
    + " UNION ALL ".join(
        f"SELECT s.tenant_id, '{s_.kind.value}' AS kind FROM ({s_.rows}) s WHERE {_WITHIN}"
        for s_ in _SOURCES
    )
    + ") c GROUP BY tenant_id, kind"
)
_STORED = (
    "SELECT fact_id, kind, occurred_at, ticket_type_id, registration_id, quantity, amount, purpose"
    " FROM warehouse.facts WHERE tenant_id = :tenant AND event_id = :event"
    " AND occurred_at >= :lo AND occurred_at < :hi"
    f" AND kind IN ({', '.join(repr(k.value) for k in KINDS)})"
)
# What the dashboards count of each kind (minute rollups), per tenant: one index range scan of
# (tenant_id, bucket) per organization.
_ROLLED = {
    FactKind.RESERVATION: (EVENT, "reservations"),
    FactKind.REGISTRATION: (EVENT, "registrations"),
    FactKind.CONFIRMATION: (EVENT, "confirmations"),
    FactKind.CANCELLATION: (EVENT, "cancellations"),
    FactKind.CHECKIN: (EVENT, "checkins"),
    FactKind.WAITLIST_JOINED: (EVENT, "waitlist_joined"),
    FactKind.WAITLIST_LEFT: (EVENT, "waitlist_left"),
    FactKind.PAYMENT: (REVENUE, "payment_count"),
    FactKind.REFUND: (REVENUE, "refund_count"),
}


def _rolled_sql() -> str:
    laterals = []
    sums = []
    for i, rollup in enumerate((EVENT, REVENUE)):
        columns = [(k, c) for k, (r, c) in _ROLLED.items() if r is rollup]
        inner = ", ".join(f"sum(m.{c}) AS {c}" for _, c in columns)
        laterals.append(
            f"CROSS JOIN LATERAL (SELECT {inner} FROM {rollup.table('minute')} m"
            f" WHERE m.tenant_id = t.id AND m.bucket >= :lo AND m.bucket < :hi) r{i}"
        )
        sums += [f"coalesce(sum(r{i}.{c}), 0) AS {k.value}" for k, c in columns]
    return (
        f"SELECT {', '.join(sums)} FROM organizations t {' '.join(laterals)}"
        " WHERE CAST(:tenant AS uuid) IS NULL OR t.id = CAST(:tenant AS uuid)"
    )


_ROLLED_SQL = _rolled_sql()


@dataclass
class Counts:
    expected: int = 0  # business facts in the tables
    found: int = 0  # of which the warehouse holds a fact
    added: int = 0  # facts stored now (a dry run: that would be)
    extra: int = 0  # stored facts no business fact accounts for (reported, never removed)


@dataclass
class ReconcileResult:
    counts: dict[tuple[uuid.UUID, FactKind], Counts] = field(default_factory=dict)
    events: int = 0  # events whose rollups were rebuilt
    from_outbox: int = 0  # added facts rebuilt from their outbox rows (the live ids)
    derived: int = 0  # added facts derived from the tables (uuid5 ids)

    @property
    def added(self) -> int:
        return sum(c.added for c in self.counts.values())

    def differing(self) -> list[tuple[uuid.UUID, FactKind, Counts]]:
        """The (tenant, kind) rows where the warehouse and the tables disagree, in order."""
        return [
            (tenant, kind, c)
            for (tenant, kind), c in sorted(self.counts.items(), key=_order)
            if c.found != c.expected or c.extra
        ]

    def rows(self) -> list[tuple[uuid.UUID, FactKind, Counts]]:
        return [(t, k, c) for (t, k), c in sorted(self.counts.items(), key=_order)]


def _order(item: tuple[tuple[uuid.UUID, FactKind], Counts]) -> tuple[str, int]:
    (tenant, kind), _ = item
    return str(tenant), KINDS.index(kind)


@dataclass(frozen=True, slots=True)
class _Candidate:
    at: datetime  # the table's time: the range is judged on it
    fact: Fact  # what reconcile stores when the warehouse lacks it
    from_outbox: bool


@dataclass(frozen=True, slots=True)
class _Stored:
    fact_id: uuid.UUID
    kind: FactKind
    occurred_at: datetime
    group: tuple[Any, ...]


def _group(
    kind: FactKind,
    registration_id: uuid.UUID | None,
    ticket_type_id: uuid.UUID | None,
    quantity: int,
    amount: int,
    purpose: str | None,
) -> tuple[Any, ...]:
    """What a fact of ``kind`` carries that tells business facts of one event apart (see the
    module docstring); facts of one group are told apart by their times only."""
    if kind == FactKind.PAYMENT:
        return kind, registration_id, purpose
    if kind == FactKind.REFUND:
        return kind, registration_id, amount
    if kind in (FactKind.RESERVATION, FactKind.WAITLIST_JOINED, FactKind.WAITLIST_LEFT):
        return kind, ticket_type_id, quantity
    return kind, registration_id


def _fact_group(fact: Fact) -> tuple[Any, ...]:
    return _group(
        fact.kind,
        fact.registration_id,
        fact.ticket_type_id,
        fact.quantity,
        fact.amount,
        fact.purpose,
    )


def _stored(row: Any) -> _Stored:
    kind = FactKind(row.kind)
    group = _group(
        kind, row.registration_id, row.ticket_type_id, row.quantity, row.amount, row.purpose
    )
    return _Stored(row.fact_id, kind, row.occurred_at, group)


def _candidate(row: Any) -> _Candidate:
    kind = FactKind(row.kind)
    derived = Fact(
        fact_id=uuid.uuid5(NAMESPACE, f"{kind.value}:{row.source_id}"),
        kind=kind,
        tenant_id=row.tenant_id,
        event_id=row.event_id,
        occurred_at=row.at,
        ticket_type_id=row.ticket_type_id,
        registration_id=row.registration_id,
        quantity=row.quantity,
        amount=row.amount,
        currency=row.currency,
        purpose=row.purpose,
        visitor_id=row.visitor_id,
    )
    outbox = tuple(row)[len(_COLUMNS) + 1 :]
    if outbox[0] is None:
        return _Candidate(row.at, derived, from_outbox=False)
    record = Row(*outbox)
    try:
        fact = to_fact(
            record.event_type,
            json.loads(record.payload),
            {name: value.decode() for name, value in headers(record)},
        )
    except UnreadableRecord:  # the worker dead-lettered it too: the tables say what it was
        fact = None
    if fact is None:  # still under the live id: a replayed dead letter cannot add it again
        fact = msgspec.structs.replace(derived, fact_id=uuid.UUID(record.id))
    return _Candidate(row.at, fact, from_outbox=True)


def _missing(
    candidates: Sequence[_Candidate], stored: Sequence[_Stored]
) -> tuple[set[int], list[_Stored]]:
    """Pair the stored facts of one group with its business facts: by id, then by the same time,
    then by the nearest time. Answers the indexes of the paired candidates and the stored facts
    left over."""
    paired: set[int] = set()
    by_id = {c.fact.fact_id: i for i, c in enumerate(candidates)}
    rest: list[_Stored] = []
    for s in stored:
        i = by_id.get(s.fact_id)
        if i is not None and i not in paired:
            paired.add(i)
        else:
            rest.append(s)
    at_time: dict[datetime, list[int]] = defaultdict(list)
    for i, c in enumerate(candidates):
        if i not in paired:
            at_time[c.fact.occurred_at].append(i)
    later: list[_Stored] = []
    for s in rest:
        same = at_time.get(s.occurred_at)
        if same:
            paired.add(same.pop())
        else:
            later.append(s)
    open_ = [i for i in range(len(candidates)) if i not in paired]
    extra: list[_Stored] = []
    for s in later:
        if not open_:
            extra.append(s)
            continue
        nearest = min(
            range(len(open_)),
            key=lambda k: abs(candidates[open_[k]].fact.occurred_at - s.occurred_at),
        )
        paired.add(open_.pop(nearest))
    return paired, extra


def expected_counts(
    owner: Engine,
    *,
    start: datetime,
    end: datetime,
    tenant_id: uuid.UUID | None = None,
) -> dict[tuple[uuid.UUID, FactKind], int]:
    """How many business facts of each kind the tables hold per tenant in ``[start, end)``
    (counts only: what reconcile will look at, and the tables' side of the jobs' check)."""
    with owner.connect() as conn:
        rows = conn.execute(text(_COUNTS), {"lo": start, "hi": end, "tenant": tenant_id}).all()
    return {(tenant, FactKind(kind)): int(n) for tenant, kind, n in rows}


def window(
    now: datetime,
    start: datetime | None,
    end: datetime | None,
    settle: timedelta = SETTLE,
) -> tuple[datetime, datetime]:
    """The range reconcile judges: ``[start, end)``, ending at ``now - settle`` at the latest."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    settled = now - settle
    return start or BEGINNING, min(end, settled) if end is not None else settled


def reconcile(
    owner: Engine,
    warehouse: Engine,
    *,
    now: datetime,
    tenant_id: uuid.UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    settle: timedelta = SETTLE,
    dry_run: bool = False,
    progress: Callable[[uuid.UUID, uuid.UUID, int], None] | None = None,
) -> ReconcileResult:
    """Store the domain facts the warehouse lacks for the business facts of ``[start, end)``
    (every tenant, or ``tenant_id``) older than ``now - settle``, and rebuild the rollups of the
    events they belong to; one transaction per event, on ``warehouse`` (warehouse.engine), the
    reads as ``owner``. ``progress(tenant, event, n)`` is called after each event with the number
    of its business facts in the range. ``dry_run``: change nothing, report what would be added."""
    lo, hi = window(now, start, end, settle)
    result = ReconcileResult()
    if lo >= hi:
        return result
    params = {
        "lo": lo - SLACK,
        "hi": hi + SLACK,
        "tenant": tenant_id,
        "outbox_from": _uuid7_floor(lo - 2 * SLACK),
    }
    earliest: datetime | None = None
    with owner.connect() as reading, owner.connect() as looking:
        reading.execute(text("SET LOCAL timezone = 'UTC'"))  # the relay's occurred_at text
        rows = reading.execution_options(stream_results=True, yield_per=2000).execute(
            text(_CANDIDATES), params
        )
        for (tenant, event), group in itertools.groupby(rows, lambda r: (r.tenant_id, r.event_id)):
            seen, since = _event(looking, warehouse, tenant, event, group, lo, hi, dry_run, result)
            if since is not None and (earliest is None or since < earliest):
                earliest = since
            if progress:
                progress(tenant, event, seen)
        flavor = looking.execute(text("SELECT warehouse.flavor()")).scalar_one()
    if earliest is not None and flavor == "timescale":
        dsn = owner.url.set(drivername="postgresql").render_as_string(hide_password=False)
        refresh_aggregates(dsn, earliest)
    return result


def _event(
    looking: Any,
    warehouse: Engine,
    tenant: uuid.UUID,
    event: uuid.UUID,
    rows: Iterable[Any],
    lo: datetime,
    hi: datetime,
    dry_run: bool,
    result: ReconcileResult,
) -> tuple[int, datetime | None]:
    """One event: match, report, store what is missing and rebuild its rollups. Answers the
    number of its business facts in the range and the time its rollups were rebuilt from (None
    when nothing was)."""
    by_source: dict[tuple[str, Any], _Candidate] = {}
    for row in rows:  # an aggregate with two matching outbox rows (never expected): the first
        by_source.setdefault((row.kind, row.source_id), _candidate(row))
    candidates = list(by_source.values())
    stored = [
        _stored(s)
        for s in looking.execute(
            text(_STORED),
            {"tenant": tenant, "event": event, "lo": lo - SLACK, "hi": hi + SLACK},
        )
    ]
    by_group: dict[tuple[Any, ...], tuple[list[_Candidate], list[_Stored]]] = defaultdict(
        lambda: ([], [])
    )
    for c in candidates:
        by_group[_fact_group(c.fact)][0].append(c)
    for s in stored:
        by_group[s.group][1].append(s)
    missing: list[_Candidate] = []
    seen = 0
    for group_candidates, group_stored in by_group.values():
        paired, extra = _missing(group_candidates, group_stored)
        for i, c in enumerate(group_candidates):
            if not lo <= c.at < hi:
                continue  # context for the matching only: outside the range, or not settled
            seen += 1
            counts = result.counts.setdefault((tenant, c.fact.kind), Counts())
            counts.expected += 1
            if i in paired:
                counts.found += 1
            else:
                missing.append(c)
        for s in extra:
            if lo <= s.occurred_at < hi:
                result.counts.setdefault((tenant, s.kind), Counts()).extra += 1
    if not missing:
        return seen, None
    since = min(c.fact.occurred_at for c in missing) - SLACK
    by_kind: dict[FactKind, list[_Candidate]] = defaultdict(list)
    for c in missing:
        by_kind[c.fact.kind].append(c)
    if dry_run:
        for kind, facts in by_kind.items():
            result.counts[(tenant, kind)].added += len(facts)
        return seen, None
    with Session(warehouse) as session, session.begin():
        for kind, facts in by_kind.items():
            stored_now = ingest(session, [c.fact for c in facts]).stored
            result.counts[(tenant, kind)].added += stored_now
        rebuild_event(session, tenant, event, since)
    result.events += 1
    result.from_outbox += sum(c.from_outbox for c in missing)
    result.derived += sum(not c.from_outbox for c in missing)
    return seen, since


def _uuid7_floor(moment: datetime) -> uuid.UUID:
    """The smallest UUIDv7 of ``moment``'s millisecond (outbox ids are UUIDv7)."""
    return uuid.UUID(int=max(0, int(moment.timestamp() * 1000)) << 80)


# --- the jobs' count check -----------------------------------------------------------------------


@dataclass(frozen=True)
class CountCheck:
    """Per kind, business facts in the tables minus those the minute rollups count, over
    ``[start, end)``; only the kinds that differ."""

    start: datetime
    end: datetime
    differences: dict[FactKind, int]


def count_check(
    owner: Engine,
    *,
    now: datetime,
    over: timedelta = timedelta(days=1),
    settle: timedelta = SETTLE,
    tenant_id: uuid.UUID | None = None,
) -> CountCheck:
    """The cheap check ``aqstream jobs`` runs: counts per kind in the tables against what the
    dashboards count, over the ``over`` before ``now - settle`` (minute-aligned, as the rollups'
    buckets are). No fact is read or derived; a positive difference means the dashboards are
    short (facts lost, or the stream more than ``settle`` behind), ``reconcile`` repairs it."""
    end = floor(now - settle, "minute")
    start = floor(end - over, "minute")
    tables: dict[FactKind, int] = defaultdict(int)
    for (_, kind), n in expected_counts(owner, start=start, end=end, tenant_id=tenant_id).items():
        tables[kind] += n
    with owner.connect() as conn:
        rolled = (
            conn.execute(text(_ROLLED_SQL), {"lo": start, "hi": end, "tenant": tenant_id})
            .mappings()
            .one()
        )
    differences = {k: tables[k] - int(rolled[k.value]) for k in KINDS}
    return CountCheck(start, end, {k: d for k, d in differences.items() if d})
