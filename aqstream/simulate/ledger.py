"""What the generator knows: everything it did and what the API answered (``Ledger``), summed
up as totals, and their plain-text ``summary``."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aqstream.simulate.client import Account
from aqstream.simulate.plan import UNIQUE_VIEW_WINDOW

# --- what the generator knows ---------------------------------------------------------------------


@dataclass
class Registration:
    id: str
    event: str  # event id
    ticket_type: str
    account: Account
    source: str
    state: dict[str, Any] = field(default_factory=dict)  # the last GET /registrations/{id}
    payments: list[dict[str, Any]] = field(default_factory=list)  # the last GET .../payments
    visitor: str | None = None  # the tracking visitor id it was made with


@dataclass
class Tracked:
    type: str
    event: str
    ticket_type: str | None
    visitor: str
    source: str
    occurred_at: datetime
    device: str | None = None


class Ledger:
    """Everything the generator did and what the API answered; ``totals()`` sums it up."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tracked: list[Tracked] = []
        self.track_filtered = 0
        # (event id, ticket type id, visitor id, when the API answered) of holds made
        self.holds: list[tuple[str, str, str | None, datetime]] = []
        self.registrations: dict[str, Registration] = {}
        self.waitlist: dict[str, tuple[str, str]] = {}  # entry id -> (event id, ticket type id)
        self.waitlist_state: dict[str, dict[str, Any]] = {}  # entry id -> organizer's view
        self.outcomes: dict[str, int] = defaultdict(int)  # sold_out, visit_failed, ...
        self.visits = 0

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.outcomes[what] += n

    def totals(self, names: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Per event (and per ticket type, per source), and over all events."""
        names = names or {}
        with self.lock:
            tracked = list(self.tracked)
            registrations = list(self.registrations.values())
            holds = list(self.holds)
            entries = {k: (v, self.waitlist_state.get(k, {})) for k, v in self.waitlist.items()}
        events: dict[str, dict[str, Any]] = {}

        def bucket(event_id: str) -> dict[str, Any]:
            if event_id not in events:
                events[event_id] = {**names.get(event_id, {}), **_counters()}
                events[event_id]["ticket_types"] = defaultdict(_counters)
                events[event_id]["sources"] = defaultdict(_counters)
                events[event_id]["devices"] = defaultdict(_counters)
            return events[event_id]

        views: dict[tuple[str, str], list[Tracked]] = defaultdict(list)
        for t in tracked:
            kind = {"page_view": "page_views"}.get(t.type, t.type)
            e = bucket(t.event)
            for c in (e, e["sources"][t.source], e["devices"][t.device or "unknown"]) + (
                (e["ticket_types"][t.ticket_type],) if t.ticket_type else ()
            ):
                c[kind] += 1
            if t.type == "page_view":
                views[(t.event, t.visitor)].append(t)
        # Uniqueness belongs to the view (no view of the same visitor and event in the 30
        # minutes before it), so it is counted under that view's own source and device.
        for (event_id, _), seen in views.items():
            e = bucket(event_id)
            previous = None
            for t in sorted(seen, key=lambda t: t.occurred_at):
                if previous is None or t.occurred_at - previous > UNIQUE_VIEW_WINDOW:
                    for c in (e, e["sources"][t.source], e["devices"][t.device or "unknown"]):
                        c["unique_views"] += 1
                previous = t.occurred_at
        for event_id, tt, _, _ in holds:
            for c in _both(bucket(event_id), tt):
                c["reservations"] += 1
        for (event_id, tt), state in entries.values():
            for c in _both(bucket(event_id), tt):
                c["waitlist_joined"] += 1
                if state.get("status", "waiting") != "waiting":
                    c["waitlist_left"] += 1
                if state.get("reservation_id"):
                    c["reservations"] += 1  # the offer: a hold the sweeper made
        for r in registrations:
            e = bucket(r.event)
            seats = int(r.state.get("quantity", 1))
            for c in (*_both(e, r.ticket_type), e["sources"][r.source]):
                c["registrations"] += 1
                c["seats"] += seats
                c["confirmations"] += bool(r.state.get("confirmed_at"))
                c["cancellations"] += bool(r.state.get("cancelled_at"))
                c["check_ins"] += bool(r.state.get("checked_in_at"))
            for p in r.payments:
                for c in _both(e, r.ticket_type):
                    _add_payment(c, p)
        overall = _counters()
        for e in events.values():
            for k, v in e.items():
                if isinstance(v, int):
                    overall[k] += v
            _merge_money(overall, e)
        for e in events.values():
            e["ticket_types"] = {k: _plain(v) for k, v in e["ticket_types"].items()}
            e["sources"] = {k: _plain(v) for k, v in e["sources"].items()}
            e["devices"] = {k: _plain(v) for k, v in e["devices"].items()}
        steps = [Step(event_id, visitor, at, STAGES.index("reservation"))
                 for event_id, _, visitor, at in holds]  # fmt: skip
        later: dict[str, Later] = {}
        for r in registrations:
            at = datetime.fromisoformat(r.state["created_at"])
            steps.append(Step(r.event, r.visitor, at, STAGES.index("registration"), r.id))
            later[r.id] = Later.of(bool(r.state.get("checked_in_at")), r.payments)
        for t in tracked:
            if t.type in STAGES:
                steps.append(Step(t.event, t.visitor, t.occurred_at, STAGES.index(t.type)))
        for event_id, journey in journeys(tracked, steps, later).items():
            bucket(event_id)["journeys"] = journey
        for e in events.values():
            e.setdefault("journeys", _no_journeys())
        overall["journeys"] = _sum_journeys(e.get("journeys") for e in events.values())
        return {
            "events": {k: _plain(v) for k, v in events.items()},
            "all": _plain(overall),
            "outcomes": dict(self.outcomes),
            "visits": self.visits,
            "tracking_filtered": self.track_filtered,
        }


COUNTERS = (
    "page_views",
    "unique_views",
    "ticket_selected",
    "checkout_started",
    "reservations",
    "registrations",
    "seats",
    "confirmations",
    "cancellations",
    "check_ins",
    "waitlist_joined",
    "waitlist_left",
    "payments_failed",
)


def _counters() -> dict[str, Any]:
    c: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
    c["payments"] = defaultdict(lambda: defaultdict(lambda: {"count": 0, "amount": 0}))
    c["refunds"] = defaultdict(lambda: defaultdict(lambda: {"count": 0, "amount": 0}))
    return c


def _both(event: dict[str, Any], ticket_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return event, event["ticket_types"][ticket_type]


PAID = frozenset({"completed", "partially_refunded", "refunded"})


def _add_payment(c: dict[str, Any], p: dict[str, Any]) -> None:
    if p["status"] in PAID:
        slot = c["payments"][p["currency"]][p["purpose"]]
        slot["count"] += 1
        slot["amount"] += p["amount"]
    elif p["status"] == "failed":
        c["payments_failed"] += 1
    for refund in p.get("refunds", []):
        if refund["status"] == "succeeded":
            slot = c["refunds"][refund["currency"]][p["purpose"]]
            slot["count"] += 1
            slot["amount"] += refund["amount"]


def _merge_money(into: dict[str, Any], src: dict[str, Any]) -> None:
    for kind in ("payments", "refunds"):
        for currency, purposes in src[kind].items():
            for purpose, slot in purposes.items():
                into[kind][currency][purpose]["count"] += slot["count"]
                into[kind][currency][purpose]["amount"] += slot["amount"]


# --- visits, their funnel and first-touch sources ----------------------------------------------

# The dashboard's funnel (docs/analytics.md, "Funnel and attribution"): a visit's stage is the
# furthest one credited to it, and each stage counts the visits that reached it or a later one.
STAGES = ("view", "ticket_selected", "checkout_started", "reservation", "registration",
          "payment", "checkin")  # fmt: skip
ATTRIBUTION_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Step:
    """Something a visitor did after viewing (a tracked action, a hold, a registration):
    ``stage`` indexes ``STAGES``; ``registration``: the registration's id."""

    event: str
    visitor: str | None
    at: datetime
    stage: int
    registration: str | None = None


@dataclass(frozen=True)
class Later:
    """What a registration went on to: its furthest stage (registration, payment: a first
    payment, or checkin) and its payments' gross per currency (any purpose)."""

    stage: int
    gross: Mapping[str, int]

    @classmethod
    def of(cls, checked_in: bool, payments: Iterable[Mapping[str, Any]]) -> Later:
        paid = [p for p in payments if p["status"] in PAID]
        stage = "checkin" if checked_in else "registration"
        if not checked_in and any(p["purpose"] in ("full", "deposit") for p in paid):
            stage = "payment"
        gross: dict[str, int] = defaultdict(int)
        for p in paid:
            gross[p["currency"]] += p["amount"]
        return cls(STAGES.index(stage), dict(gross))


def journeys(
    views: Iterable[Tracked], steps: Iterable[Step], later: Mapping[str, Later]
) -> dict[str, dict[str, Any]]:
    """Per event: visits (a visitor's page view with none of theirs in the 30 minutes before;
    its source is that view's), the funnel (visits that reached each stage or a later one),
    converted visits, the registrations credited to no visit, and per source the visits,
    converted visits, credited registrations and their payments' gross. A step belongs to its
    visitor's latest visit that started at or before it, within ``ATTRIBUTION_WINDOW``; a
    registration's payments and check-in to the registration's visit. Written from the
    definitions in docs/analytics.md, apart from the warehouse's SQL, so that each checks the
    other."""
    seen: dict[tuple[str, str], list[Tracked]] = defaultdict(list)
    for t in views:
        if t.type == "page_view":
            seen[(t.event, t.visitor)].append(t)
    visits: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for key, mine in seen.items():
        previous = None
        for t in sorted(mine, key=lambda t: t.occurred_at):
            if previous is None or t.occurred_at - previous > UNIQUE_VIEW_WINDOW:
                visits[key].append({"at": t.occurred_at, "source": t.source, "stage": 0,
                                    "registrations": 0, "gross": defaultdict(int)})  # fmt: skip
            previous = t.occurred_at
    out: dict[str, dict[str, Any]] = defaultdict(_no_journeys)
    for step in steps:
        mine = visits.get((step.event, step.visitor), []) if step.visitor else []
        visit = max((v for v in mine if v["at"] <= step.at), key=lambda v: v["at"], default=None)
        if visit is None or step.at >= visit["at"] + ATTRIBUTION_WINDOW:
            if step.registration is not None:
                out[step.event]["registrations_without_visit"] += 1
            continue
        visit["stage"] = max(visit["stage"], step.stage)
        if step.registration is not None:
            visit["registrations"] += 1
            after = later.get(step.registration)
            if after is not None:
                visit["stage"] = max(visit["stage"], after.stage)
                for currency, gross in after.gross.items():
                    visit["gross"][currency] += gross
    for (event_id, _), mine in visits.items():
        entry = out[event_id]
        for v in mine:
            source = entry["sources"].setdefault(v["source"], _no_journeys(sources=False))
            for into in (entry, source):
                into["visits"] += 1
                into["converted_visits"] += v["registrations"] > 0
                into["registrations"] += v["registrations"]
                for currency, gross in v["gross"].items():
                    into["revenue"][currency] = into["revenue"].get(currency, 0) + gross
            for i, _ in enumerate(STAGES):
                entry["funnel"][i] += v["stage"] >= i
    return dict(out)


def _no_journeys(sources: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {"visits": 0, "converted_visits": 0, "registrations": 0,
                              "revenue": {}}  # fmt: skip
    if sources:
        values |= {"funnel": [0] * len(STAGES), "registrations_without_visit": 0, "sources": {}}
    return values


def _sum_journeys(entries: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    total = _no_journeys()
    for entry in entries:
        if entry is None:
            continue
        for k in ("visits", "converted_visits", "registrations", "registrations_without_visit"):
            total[k] += entry[k]
        total["funnel"] = [a + b for a, b in zip(total["funnel"], entry["funnel"], strict=True)]
        for currency, gross in entry["revenue"].items():
            total["revenue"][currency] = total["revenue"].get(currency, 0) + gross
    return total


def conversion(journey: Mapping[str, Any]) -> float | None:
    """Converted visits / visits, as the dashboard rounds it (None without a visit)."""
    visits = journey["visits"]
    return round(journey["converted_visits"] / visits, 6) if visits > 0 else None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --- the summary ----------------------------------------------------------------------------------


def summary(totals: dict[str, Any]) -> str:
    """A plain-text table: one row per event, then money by currency and purpose."""
    columns = (
        ("views", "page_views"),
        ("unique", "unique_views"),
        ("selected", "ticket_selected"),
        ("checkout", "checkout_started"),
        ("holds", "reservations"),
        ("regs", "registrations"),
        ("confirmed", "confirmations"),
        ("cancelled", "cancellations"),
        ("check-ins", "check_ins"),
        ("waitlist+", "waitlist_joined"),
        ("waitlist-", "waitlist_left"),
        ("pay failed", "payments_failed"),
    )
    rows = [("event", *(c for c, _ in columns))]
    for event in totals["events"].values():
        name = event.get("title") or event.get("key", "?")  # as the dashboards name it
        rows.append((name[:32], *(str(event[k]) for _, k in columns)))
    rows.append(("all", *(str(totals["all"][k]) for _, k in columns)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"seed {totals['seed']}, scenario {totals['scenario']}, run {totals['run_id']}: "
        f"{totals['visits']} visits",
    ]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                               enumerate(zip(row, widths, strict=True))))  # fmt: skip
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    for kind in ("payments", "refunds"):
        for currency, purposes in sorted(totals["all"][kind].items()):
            for purpose, slot in sorted(purposes.items()):
                lines.append(
                    f"{kind:<8} {currency} {purpose:<9} {slot['count']:>5} x  "
                    f"{slot['amount'] / 100:,.2f}"
                )
    journey = totals["all"]["journeys"]
    rate = conversion(journey)
    lines.append(
        f"visits {journey['visits']}, converted {journey['converted_visits']}"
        f" ({'-' if rate is None else f'{rate:.1%}'}), registrations without a visit "
        f"{journey['registrations_without_visit']}; funnel "
        + " > ".join(f"{s} {n}" for s, n in zip(STAGES, journey["funnel"], strict=True))
    )
    if totals["outcomes"]:
        lines.append(
            "answers: " + ", ".join(f"{k} {v}" for k, v in sorted(totals["outcomes"].items()))
        )
    return "\n".join(lines)
