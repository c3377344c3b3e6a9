"""The plan of a simulation: a pure function of the seed and the scenario (organizers, events,
ticket types, one ``VisitPlan`` per visitor, the flash sales)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

UNIQUE_VIEW_WINDOW = timedelta(minutes=30)

# --- the scenario model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where visitors come from and how far each stage keeps them (source-dependent drop-off)."""

    name: str
    weight: int
    utm_source: str | None
    referrer: str | None
    select: float  # page view -> ticket selected
    checkout: float  # ticket selected -> checkout started
    reserve: float  # checkout started -> seats held
    register: float  # held -> registered
    pay: float  # registered -> paid (paid tickets)


SOURCES: tuple[Source, ...] = (
    Source("telegram", 30, "telegram", "https://t.me/s/aqstream_events", 0.55, 0.7, 0.8, 0.9, 0.9),
    Source("google", 25, "google", "https://www.google.com/", 0.35, 0.55, 0.7, 0.85, 0.8),
    Source("vk", 15, "vk", "https://vk.com/feed", 0.3, 0.5, 0.65, 0.8, 0.75),
    Source("newsletter", 10, "newsletter", None, 0.65, 0.75, 0.85, 0.9, 0.95),
    Source("direct", 20, None, None, 0.45, 0.6, 0.75, 0.85, 0.85),
)
DEVICES = (("desktop", 50), ("mobile", 42), ("tablet", 8))
ORGANIZATION_KINDS = ("Meetups", "Tech Community", "Culture Club", "Events")
FIRST_NAMES = ("Anna", "Ivan", "Maria", "Dmitry", "Elena", "Giorgi", "Laura", "Marek", "Nina",
               "Oskar", "Sofia", "Timur", "Vera", "Lukas", "Ana", "Arman")  # fmt: skip
LAST_NAMES = ("Petrova", "Berzins", "Costa", "Ivanov", "Kalnina", "Mamedov", "Novak", "Silva",
              "Horvat", "Sorokina", "Weber", "Abashidze", "Lind", "Garcia", "Popescu", "Kim")  # fmt: skip


def person_name(index: int) -> str:
    """A plausible name for simulated person ``index`` (the same index, the same name)."""
    return f"{FIRST_NAMES[index % len(FIRST_NAMES)]} {LAST_NAMES[index * 7 // 3 % len(LAST_NAMES)]}"


CURRENCIES = ("EUR", "RUB")


@dataclass(frozen=True)
class Scenario:
    name: str
    organizers: int
    events_per_organizer: tuple[int, int]  # inclusive range
    participants: int  # accounts made up front (more join when they are all used for an event)
    visitors: int  # visits of a finite run (the live mode goes on past it)
    flash_buyers: int  # concurrent buyers of each flash sale (0: none)
    flash_capacity: int
    payment_failure: float  # share of first payments planned to fail
    revisit: float  # share of visitors who saw the page once before, 32-55 minutes earlier
    flash_every: int = 0  # live mode: another flash sale every this many visits (0: one only)


SCENARIOS: dict[str, Scenario] = {
    "tiny": Scenario("tiny", 1, (2, 2), 4, 12, 6, 2, 0.2, 0.3),
    "small": Scenario("small", 2, (2, 2), 10, 40, 10, 4, 0.15, 0.25),
    "demo": Scenario("demo", 3, (2, 3), 30, 300, 16, 6, 0.1, 0.2, flash_every=240),
    "large": Scenario("large", 5, (3, 4), 120, 3000, 40, 15, 0.08, 0.2, flash_every=600),
}


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketTypePlan:
    key: str
    name: str
    capacity: int
    price_amount: int  # minor units; 0 is free
    currency: str
    deposit_percent: int | None = None
    flash: bool = False


@dataclass(frozen=True)
class EventPlan:
    key: str
    organizer: int
    title: str
    days_ahead: int
    size: str  # small | medium | large
    popularity: int  # weight among events when visitors pick one
    ticket_types: tuple[TicketTypePlan, ...]


@dataclass(frozen=True)
class OrganizerPlan:
    index: int
    name: str
    slug: str
    email: str


@dataclass(frozen=True)
class VisitPlan:
    """One visitor's journey. Times are seconds before the moment the visit is carried out."""

    n: int
    visitor: str
    session: str
    source: str
    device: str
    event: str  # EventPlan.key
    ticket_type: str  # TicketTypePlan.key they look at
    views: tuple[int, ...]  # page views, oldest first
    selected_at: int | None
    checkout_at: int | None
    stage: str  # view | selected | checkout | reserved | registered | paid
    participant: int | None  # the account, from checkout on
    via_hold: bool  # hold seats first (else register directly)
    payment_mode: str | None  # full | deposit (paid tickets)
    payments: tuple[str, ...]  # planned outcomes of the first payment's attempts
    remainder: tuple[str, ...]  # planned outcomes of the remainder's attempts (deposit)
    cancel: bool  # the participant cancels (free ticket, or before paying)
    refund: str | None  # the organizer refunds: full | partial
    check_in: bool


@dataclass(frozen=True)
class FlashSalePlan:
    event: str
    ticket_type: str
    buyers: tuple[int, ...]  # participants, all at once
    cancellers: int  # how many of those who got a seat cancel (freeing it for the waitlist)
    leavers: tuple[int, ...]  # of those waitlisted: leave the waitlist (where the API allows)
    new_ticket_type: TicketTypePlan | None = None  # a later burst's, added to a published event


@dataclass(frozen=True)
class Plan:
    seed: int
    scenario: str
    organizers: tuple[OrganizerPlan, ...]
    events: tuple[EventPlan, ...]
    participants: int
    flash_sales: tuple[FlashSalePlan, ...]

    def as_dict(self, visits: int | None = None) -> dict[str, Any]:
        """The plan as plain data (with the first ``visits`` visits): what "same plan" compares."""
        data = asdict(self)
        data["visits"] = [asdict(v) for v in self.visits(visits or 0)]
        return data

    def event(self, key: str) -> EventPlan:
        return next(e for e in self.events if e.key == key)

    def visits(self, count: int | None = None) -> Iterator[VisitPlan]:
        """Visits in order; ``None``: forever."""
        for item in self.stream(count):
            if isinstance(item, VisitPlan):
                yield item

    def stream(self, count: int | None = None) -> Iterator[VisitPlan | FlashSalePlan]:
        """Visits in order, ``count`` of them or (``None``, the live mode) forever, with another
        flash sale every ``flash_every`` visits in the live mode. A converting visitor's (and a
        buyer's) account is one not yet used for that event, picked at random from the pool;
        the pool grows when every one has been."""
        every = SCENARIOS[self.scenario].flash_every if count is None else 0
        used: dict[str, set[int]] = defaultdict(set)
        for fs in self.flash_sales:
            used[fs.event].update(fs.buyers)
        n = 0
        while count is None or n < count:
            if every and n and n % every == 0:
                yield _flash_sale(self, n // every, used)
            yield _visit(self, n, used)
            n += 1


def _pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _ticket_types(rng: random.Random, key: str, size: str, currency: str) -> list[TicketTypePlan]:
    """A mix per event: free, paid in full, paid with a deposit, in the event's currency."""
    price_unit = 100 if currency == "EUR" else 10_000  # 1 EUR; 100 RUB
    capacity = {"small": rng.randint(8, 15), "medium": rng.randint(30, 60)}.get(
        size, rng.randint(150, 400)
    )
    types = []
    if rng.random() < 0.6:
        types.append(TicketTypePlan(f"{key}-free", "Community", capacity, 0, currency))
    price = rng.choice((15, 25, 40, 60)) * price_unit
    types.append(TicketTypePlan(f"{key}-std", "Standard", capacity, price, currency))
    if rng.random() < 0.7:
        types.append(
            TicketTypePlan(
                f"{key}-vip",
                "VIP (deposit)",
                max(3, capacity // 4),
                price * 4,
                currency,
                deposit_percent=rng.choice((20, 30, 50)),
            )
        )
    return types


def build_plan(seed: int, scenario: str | Scenario = "small") -> Plan:
    """The plan of ``seed``: the same seed, the same plan."""
    sc = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    rng = random.Random(f"aqstream-simulate:{seed}:{sc.name}")
    organizers = []
    events: list[EventPlan] = []
    # Titles as real events carry them (what makes each run's events unique is their ids)
    themes = ("PyData", "Design Systems Meetup", "Rust Meetup", "Product Talks",
              "Data Engineering Meetup", "Jazz Night", "Chess Evening")  # fmt: skip
    places = ("Berlin", "Kazan", "Lisbon", "Tbilisi", "Yerevan", "Riga", "Belgrade")
    for o in range(sc.organizers):
        place = places[(o + rng.randrange(len(places))) % len(places)]
        organizers.append(
            OrganizerPlan(
                o,
                f"{place} {ORGANIZATION_KINDS[o % len(ORGANIZATION_KINDS)]}",
                f"sim-{seed}-{sc.name}-org-{o}",
                f"sim-{seed}-{sc.name}-organizer-{o}@example.org",
            )
        )
        currency = CURRENCIES[o % len(CURRENCIES)]
        for e in range(rng.randint(*sc.events_per_organizer)):
            key = f"o{o}e{e}"
            size = rng.choice(("small", "medium", "medium", "large"))
            types = _ticket_types(rng, key, size, currency)
            events.append(
                EventPlan(
                    key,
                    o,
                    f"{rng.choice(themes)} {place} #{e + 1}",
                    rng.randint(7, 90),
                    size,
                    {"small": 2, "medium": 3, "large": 5}[size],
                    tuple(types),
                )
            )
    flash_sales = []
    if sc.flash_buyers:
        host = events[rng.randrange(len(events))]
        flash = TicketTypePlan(
            f"{host.key}-flash",
            "Flash sale",
            sc.flash_capacity,
            0
            if rng.random() < 0.5
            else (1000 if host.ticket_types[0].currency == "EUR" else 50_000),
            host.ticket_types[0].currency,
            flash=True,
        )
        events[events.index(host)] = host = EventPlan(
            host.key,
            host.organizer,
            host.title,
            host.days_ahead,
            host.size,
            host.popularity,
            (*host.ticket_types, flash),
        )
        buyers = tuple(range(sc.flash_buyers))
        cancellers = max(1, sum(rng.random() < 0.4 for _ in range(sc.flash_capacity)))
        waiting = buyers[sc.flash_capacity :]
        leavers = tuple(b for b in waiting if rng.random() < 0.3)
        flash_sales.append(FlashSalePlan(host.key, flash.key, buyers, cancellers, leavers))
    return Plan(
        seed,
        sc.name,
        tuple(organizers),
        tuple(events),
        max(sc.participants, sc.flash_buyers),
        tuple(flash_sales),
    )


def _account(rng: random.Random, plan: Plan, taken: set[int]) -> int:
    """An account not yet used for the event whose ``taken`` set this is (now it is)."""
    free = [i for i in range(plan.participants) if i not in taken]
    account = rng.choice(free) if free else max(taken) + 1
    taken.add(account)
    return account


def _flash_sale(plan: Plan, r: int, used: dict[str, set[int]]) -> FlashSalePlan:
    """The live mode's ``r``-th further flash sale: a new small ticket type on an event."""
    sc = SCENARIOS[plan.scenario]
    rng = random.Random(f"aqstream-simulate:{plan.seed}:{plan.scenario}:flash:{r}")
    event = rng.choice(plan.events)
    currency = event.ticket_types[0].currency
    price = 0 if rng.random() < 0.5 else (1000 if currency == "EUR" else 50_000)
    ticket = TicketTypePlan(
        f"{event.key}-flash-{r}", f"Flash sale #{r + 1}", sc.flash_capacity, price, currency,
        flash=True,
    )  # fmt: skip
    buyers = tuple(_account(rng, plan, used[event.key]) for _ in range(sc.flash_buyers))
    first = buyers[: sc.flash_capacity]
    cancellers = max(1, sum(rng.random() < 0.4 for _ in first))
    leavers = tuple(b for b in buyers[sc.flash_capacity :] if rng.random() < 0.3)
    return FlashSalePlan(event.key, ticket.key, buyers, cancellers, leavers, ticket)


def _visit(plan: Plan, n: int, used: dict[str, set[int]]) -> VisitPlan:
    sc = SCENARIOS[plan.scenario]
    rng = random.Random(f"aqstream-simulate:{plan.seed}:{plan.scenario}:visit:{n}")
    source = _pick(rng, tuple((s, s.weight) for s in SOURCES))
    event = _pick(rng, tuple((e, e.popularity) for e in plan.events))
    sellable = [t for t in event.ticket_types if not t.flash]
    tt = rng.choice(sellable)
    # Page views: one to three close together (within 10 min), sometimes an earlier visit
    # 32-55 min before: more than 30 min apart, so it is a second unique view under any reading
    # of the 30-minute rule.
    last = rng.randint(60, 600)
    views = sorted({last + rng.randint(0, 600) for _ in range(rng.choice((1, 1, 2, 3)))} | {last})
    if rng.random() < sc.revisit:
        # inside the hour the tracking API accepts (the others are at most 20 minutes old)
        views.append(views[-1] + rng.randint(32 * 60, 55 * 60 - views[-1]))
    views = tuple(sorted(views, reverse=True))
    stage = "view"
    selected_at = checkout_at = None
    for name, p in (
        ("selected", source.select),
        ("checkout", source.checkout),
        ("reserved", source.reserve),
        ("registered", source.register),
        ("paid", source.pay),
    ):
        if rng.random() >= p:
            break
        stage = name
    if stage != "view":
        selected_at = rng.randint(30, last - 10) if last > 40 else last
    if stage not in ("view", "selected"):
        checkout_at = rng.randint(5, selected_at)
    participant = None
    if stage not in ("view", "selected", "checkout"):
        participant = _account(rng, plan, used[event.key])
    paid = tt.price_amount > 0
    payment_mode = None
    payments: tuple[str, ...] = ()
    remainder: tuple[str, ...] = ()
    if paid:
        payment_mode = "deposit" if tt.deposit_percent and rng.random() < 0.6 else "full"
        if stage == "paid":
            payments = ("failed",) if rng.random() < sc.payment_failure else ("succeeded",)
            if payment_mode == "deposit" and payments == ("succeeded",):
                roll = rng.random()
                remainder = (
                    ("succeeded",) if roll < 0.6 else ("failed", "succeeded") if roll < 0.75 else ()
                )
    settled = stage in ("registered", "paid") and (not paid or payments == ("succeeded",))
    cancel = False
    refund = None
    if stage in ("registered", "paid"):
        if not paid:
            cancel = settled and rng.random() < 0.12
        elif stage == "registered":
            cancel = rng.random() < 0.5  # changed their mind before paying
        elif settled and rng.random() < 0.2:
            refund = "full" if rng.random() < 0.5 else "partial"
    check_in = settled and not cancel and refund != "full" and rng.random() < 0.5
    return VisitPlan(
        n=n,
        visitor=f"v{n}",
        session=f"s{n}",
        source=source.name,
        device=_pick(rng, DEVICES),
        event=event.key,
        ticket_type=tt.key,
        views=views,
        selected_at=selected_at,
        checkout_at=checkout_at,
        stage=stage,
        participant=participant,
        via_hold=rng.random() < 0.7 or stage == "reserved",  # "reserved": held, then given back
        payment_mode=payment_mode,
        payments=payments,
        remainder=remainder,
        cancel=cancel,
        refund=refund,
        check_in=check_in,
    )


def unique_views(times: list[datetime]) -> int:
    """Unique views of one visitor on one event: a view more than 30 minutes after that
    visitor's previous view of the event starts a new one (the plan keeps a visit's views within
    10 minutes and revisits 32+ minutes before them, so a rule anchored at the first view agrees)."""
    count = 0
    previous = None
    for at in sorted(times):
        if previous is None or at - previous > UNIQUE_VIEW_WINDOW:
            count += 1
        previous = at
    return count
