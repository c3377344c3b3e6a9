"""`aqstream simulate`: deterministic traffic through the real HTTP API of a running platform.

Three parts:

- **The plan** (``build_plan``, ``visits``): a pure function of the seed and the scenario.
  Organizers, their events and ticket types (sizes, prices, currencies, deposits), the
  participant accounts, and one ``VisitPlan`` per visitor: source, device, page views and their
  times, how far down the funnel they go, how they pay, whether they cancel, get refunded or
  check in; the flash sales. ``random.Random`` seeded per visit, so visit ``n`` is the same
  whether 10 or 10,000 visits are asked for, and the live mode can go on forever.
- **The driver** (``Simulation``): carries a plan out against ``--api`` with httpx, as
  participants (real accounts, signed up once and reused), organizers (refunds, check-ins) and
  anonymous browsers (``POST /analytics/track``). Every write carries an ``X-Idempotency-Key``
  so a retry after a lost answer is harmless; 429/503 wait for ``Retry-After``; an expired
  token is renewed. In live mode a failed visit is logged and the next one goes on.
- **The totals** (``Ledger``): what the platform answered, never what the database holds:
  the registrations, payments, refunds and waitlist entries the generator made, read back from
  the API at the end, plus the tracked actions it sent (and their unique views by the 30-minute
  rule, computable because it chose the times).

The plan states intentions; the platform decides outcomes. A payment planned to fail fails only
where the sandbox can be scripted (``script_outcome``, e.g. in tests); against a running
platform the sandbox's own ``AQSTREAM_PAYMENT_SANDBOX_FAILURE_RATE`` decides. The totals follow
the answers either way.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

log = structlog.get_logger("aqstream.simulate")

V1 = "/api/v1"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
UNIQUE_VIEW_WINDOW = timedelta(minutes=30)
PASSWORD = "simulated traffic, not a secret"  # every generated account's (they are test data)

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
    themes = ("PyData", "Design Systems", "Rust", "Product", "Data Engineering", "Jazz", "Chess")
    places = ("Berlin", "Kazan", "Lisbon", "Tbilisi", "Yerevan", "Riga", "Belgrade")
    for o in range(sc.organizers):
        place = places[(o + rng.randrange(len(places))) % len(places)]
        organizers.append(
            OrganizerPlan(
                o,
                f"{place} Meetups (sim {seed})",
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
                    f"{rng.choice(themes)} {place} #{e + 1} (sim {seed})",
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


# --- talking to the API ---------------------------------------------------------------------------


class Stopped(Exception):
    """The run was asked to stop (Ctrl-C) while waiting."""


class Unexpected(Exception):
    """The API answered something the generator did not plan for."""

    def __init__(self, what: str, response: httpx.Response) -> None:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:300]
        super().__init__(f"{what}: {response.status_code} {body}")
        self.status = response.status_code
        self.code = body.get("error", {}).get("code") if isinstance(body, dict) else None


def error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


@dataclass(eq=False)
class Account:
    email: str
    display_name: str
    password: str = PASSWORD
    user_id: str | None = None
    token: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def address_of(email: str) -> str:
    """A simulated person's address: stable per e-mail, in 198.18.0.0/15 (RFC 2544's range for
    benchmarks, never a real host)."""
    n = int.from_bytes(hashlib.sha256(email.encode()).digest()[:4], "big") % (2 * 65536)
    return f"198.{18 + n // 65536}.{n // 256 % 256}.{n % 256}"


class Http:
    """httpx with the manners of a patient client: rate limits and overload (429, 503, ...)
    wait for ``Retry-After``, lost connections are retried with backoff (an API restart), an
    expired access token is renewed by signing in again; writes carry an idempotency key that
    their retries repeat."""

    RETRY = frozenset({429, 502, 503, 504})

    def __init__(
        self,
        base_url: str,
        stop: threading.Event,
        *,
        max_wait_s: float = 120.0,
        client_secret: bytes | None = None,
    ):
        self.stop = stop
        self.max_wait_s = max_wait_s
        # With the platform's client secret (AQSTREAM_DASHBOARDS_CLIENT_SECRET), each simulated
        # person calls from an address of their own, signed as the dashboards sign a browser's:
        # the API's per-address limits then count them apart, as they would real people.
        self.client_secret = client_secret
        if client_secret is not None:
            from dashboards.session import client_signature  # the one signing the API checks

            self._sign = client_signature
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(30.0, connect=5.0),
            headers={"User-Agent": BROWSER_UA},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def close(self) -> None:
        self.client.close()

    def wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped()

    def call(
        self,
        method: str,
        path: str,
        *,
        account: Account | None = None,
        json: Any = None,
        write: bool | None = None,
        person: Account | None = None,
    ) -> httpx.Response:
        """``person``: who calls, when the call is not authenticated as them (signing up)."""
        write = method != "GET" if write is None else write
        person = person or account
        key = uuid.uuid4().hex if write else None
        deadline = time.monotonic() + self.max_wait_s
        renewed = False
        attempt = 0
        while True:
            if self.stop.is_set():
                raise Stopped()
            headers = {}
            if account is not None:
                headers["Authorization"] = f"Bearer {self.token(account)}"
            if key:
                headers["X-Idempotency-Key"] = key
            if person is not None and self.client_secret is not None:
                address = address_of(person.email)
                headers["X-AqStream-Client-IP"] = address
                headers["X-AqStream-Client-Signature"] = self._sign(
                    self.client_secret, address, int(time.time())
                )
            attempt += 1
            try:
                response = self.client.request(method, V1 + path, json=json, headers=headers)
            except httpx.TransportError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("api_unreachable", path=path, error=str(exc) or type(exc).__name__)
                self.wait(min(0.2 * 2**attempt, 5.0))
                continue
            if response.status_code == 401 and account is not None and not renewed:
                renewed = True
                with account.lock:
                    account.token = None
                continue
            busy = error_code(response) == "idempotency_in_progress"
            if (response.status_code in self.RETRY or busy) and time.monotonic() < deadline:
                retry_after = response.headers.get("Retry-After", "")
                pause = float(retry_after) if retry_after.isdigit() else 0.2 * 2**attempt
                self.wait(min(max(pause, 0.05), 30.0))
                continue
            return response

    def token(self, account: Account) -> str:
        with account.lock:
            if account.token is None:
                self._sign_in(account)
            assert account.token is not None
            return account.token

    def _sign_in(self, account: Account) -> None:
        """Sign up, or sign in when the account exists (accounts are reused across runs)."""
        body = {"email": account.email, "password": account.password}
        response = self.call(
            "POST", "/auth/register", json={**body, "display_name": account.display_name},
            write=False, person=account,
        )  # fmt: skip
        if response.status_code == 409:
            response = self.call("POST", "/auth/login", json=body, write=False, person=account)
        if response.status_code not in (200, 201):
            raise Unexpected(f"sign-in of {account.email}", response)
        data = response.json()
        account.token = data["access_token"]
        account.user_id = data["user"]["id"]


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
        self.holds: list[tuple[str, str]] = []  # (event id, ticket type id) of holds made
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
        for event_id, tt in holds:
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


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# --- the driver -----------------------------------------------------------------------------------

TERMINAL_PAYMENT = frozenset({"completed", "failed", "partially_refunded", "refunded"})


class Simulation:
    """Carries a plan out against the API at ``api_url`` (its base, e.g. http://127.0.0.1:8000).

    ``admin``: a platform administrator's account (approves organization requests); without
    one, a generated account is signed up and ``grant_admin(email)`` makes it one (the CLI does
    what ``aqstream admin grant`` does). ``script_outcome(outcome)`` is called right before each
    payment is made, where the sandbox can be told the outcome (tests).
    """

    def __init__(
        self,
        plan: Plan,
        api_url: str,
        *,
        admin: Account | None = None,
        grant_admin: Callable[[str], None] | None = None,
        script_outcome: Callable[[str], None] | None = None,
        concurrency: int = 8,
        progress: bool = True,
        payment_wait_s: float = 60.0,
        offer_wait_s: float = 10.0,
        max_wait_s: float = 120.0,
        run_id: str | None = None,
        client_secret: SecretStr | None = None,
    ) -> None:
        self.plan = plan
        self.stop = threading.Event()
        secret = client_secret.get_secret_value().encode() if client_secret else None
        self.http = Http(api_url, self.stop, max_wait_s=max_wait_s, client_secret=secret)
        self.admin = admin
        self.grant_admin = grant_admin
        self.script_outcome = script_outcome
        self.concurrency = concurrency
        self.progress = progress
        self.payment_wait_s = payment_wait_s
        self.offer_wait_s = offer_wait_s
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"aqstream-simulate:{self.run_id}")
        self.ledger = Ledger()
        self.organizers: dict[int, Account] = {}
        self.organizations: dict[int, str] = {}
        self.events: dict[str, dict[str, Any]] = {}  # key -> {"id", "organizer", "types"}
        self._participants: dict[int, Account] = {}
        self._participants_lock = threading.Lock()
        self._pay_lock = threading.Lock()
        self._entries: dict[tuple[str, str], dict[str, Any]] = {}  # (e-mail, ticket type)
        self._leave_route: tuple[str, str] | bool | None = False  # False: not looked up yet
        self._openapi: dict[str, Any] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def close(self) -> None:
        self.http.close()

    # --- setup ------------------------------------------------------------------------------
    def setup(self, *, sign_in_all: bool = True) -> None:
        """Organizers and their organizations (reused by slug), this run's events with their
        ticket types, published; the participant accounts (reused by e-mail), all of them now,
        or (``sign_in_all=False``, the live mode) each when its first visit needs it: sign-ups
        are rate limited per IP, and the traffic should not wait for all of them."""
        from tqdm import tqdm

        accounts = self.plan.participants if sign_in_all else 0
        steps = len(self.plan.organizers) + len(self.plan.events) + accounts
        with tqdm(total=steps, desc="setup", unit="step", disable=not self.progress) as bar:
            for o in self.plan.organizers:
                self.organizations[o.index] = self._organization(o)
                bar.update()
            for e in self.plan.events:
                self.events[e.key] = self._event(e)
                bar.update()
            with ThreadPoolExecutor(self.concurrency) as pool:
                for _ in pool.map(self._signed_in, range(accounts)):
                    bar.update()

    def _signed_in(self, index: int) -> Account:
        account = self.participant(index)
        self.http.token(account)
        return account

    def participant(self, index: int) -> Account:
        with self._participants_lock:
            if index not in self._participants:
                p = self.plan
                self._participants[index] = Account(
                    f"sim-{p.seed}-{p.scenario}-participant-{index}@example.org",
                    f"Participant {index} (sim {p.seed})",
                )
            return self._participants[index]

    def _admin(self) -> Account:
        if self.admin is None:
            account = Account(f"sim-{self.plan.seed}-admin@example.org", "Simulation admin")
            self.http.token(account)
            if self.grant_admin is None:
                raise RuntimeError(
                    "approving organizations needs a platform administrator: pass admin "
                    "credentials (--admin-email/--admin-password)"
                )
            self.grant_admin(account.email)
            self.admin = account
        return self.admin

    def _organization(self, o: OrganizerPlan) -> str:
        owner = self.organizers[o.index] = Account(o.email, f"Organizer {o.index}")
        mine = self._ok(self.http.call("GET", "/organizations", account=owner), "my organizations")
        for org in mine:
            if org["slug"] == o.slug:
                return org["id"]
        requests = self._ok(
            self.http.call("GET", "/organization-requests", account=owner), "my requests"
        )
        request = next((r for r in requests if r["slug"] == o.slug), None)
        if request is None or request["status"] == "rejected":
            request = self._ok(
                self.http.call(
                    "POST", "/organization-requests", account=owner,
                    json={"name": o.name, "slug": o.slug},
                ),
                "organization request",
            )  # fmt: skip
        if request["status"] == "pending":
            self._ok(
                self.http.call(
                    "POST", f"/organization-requests/{request['id']}/approve", account=self._admin()
                ),
                "approval",
            )
        org = self._ok(
            self.http.call(
                "POST", "/organizations", account=owner, json={"request_id": request["id"]}
            ),
            "organization",
        )
        return org["id"]

    def _event(self, e: EventPlan) -> dict[str, Any]:
        owner = self.organizers[e.organizer]
        day = datetime.now(UTC).replace(hour=17, minute=0, second=0, microsecond=0)
        starts = day + timedelta(days=e.days_ahead)
        event = self._ok(
            self.http.call(
                "POST",
                "/events",
                account=owner,
                json={
                    "organization_id": self.organizations[e.organizer],
                    "title": f"{e.title} [{self.run_id}]",
                    "starts_at": starts.isoformat(),
                    "ends_at": (starts + timedelta(hours=3)).isoformat(),
                    "venue": "Simulated venue",
                },
            ),
            "event",
        )
        types = {}
        for t in e.ticket_types:
            body: dict[str, Any] = {
                "name": t.name,
                "capacity": t.capacity,
                "price_amount": t.price_amount,
                "currency": t.currency,
            }
            if t.deposit_percent:
                body["deposit_percent"] = t.deposit_percent
            created = self._ok(
                self.http.call(
                    "POST", f"/events/{event['id']}/ticket-types", account=owner, json=body
                ),
                "ticket type",
            )
            types[t.key] = created["id"]
        self._ok(self.http.call("POST", f"/events/{event['id']}/publish", account=owner), "publish")
        return {
            "id": event["id"],
            "organizer": e.organizer,
            "organization_id": self.organizations[e.organizer],
            "title": event["title"],
            "types": types,
        }

    @staticmethod
    def _ok(response: httpx.Response, what: str) -> Any:
        if response.status_code not in (200, 201, 202):
            raise Unexpected(what, response)
        return response.json() if response.content else None

    # --- tracking ---------------------------------------------------------------------------
    def track(self, actions: list[Tracked], ids: list[str], sessions: list[str]) -> None:
        """POST /analytics/track, one batch of at most 100 (idempotent ``ids``, one session id
        per action); referrer and utm_source come from the action's source."""
        source_of = {s.name: s for s in SOURCES}
        body = []
        for action, action_id, session in zip(actions, ids, sessions, strict=True):
            source = source_of.get(action.source)
            body.append(
                {
                    "id": action_id,
                    "type": action.type,
                    "event_id": action.event,
                    "ticket_type_id": action.ticket_type,
                    "visitor_id": action.visitor,
                    "session_id": session,
                    "occurred_at": action.occurred_at.isoformat(),
                    "referrer": source.referrer if source else None,
                    "utm_source": source.utm_source if source else None,
                    "device": action.device,
                }
            )
        if not self._has_route("/analytics/track"):
            self.ledger.count("tracking_unavailable", len(actions))
            return
        answer = self._ok(
            self.http.call("POST", "/analytics/track", json={"events": body}), "track"
        )
        with self.ledger.lock:
            self.ledger.tracked.extend(actions)
            self.ledger.track_filtered += int(answer.get("filtered", 0))

    def _action_id(self, *parts: object) -> str:
        return str(uuid.uuid5(self.namespace, ":".join(map(str, parts))))

    # --- a visit ----------------------------------------------------------------------------
    def visit(self, v: VisitPlan) -> None:
        """One visitor's journey, as planned, as far as the platform lets it go."""
        event = self.events[v.event]
        tt_id = event["types"][v.ticket_type]
        now = datetime.now(UTC)
        visitor = f"{self.run_id}-{v.visitor}"
        steps: list[tuple[str, int, str | None]] = [("page_view", s, None) for s in v.views]
        if v.selected_at is not None:
            steps.append(("ticket_selected", v.selected_at, tt_id))
        if v.checkout_at is not None:
            steps.append(("checkout_started", v.checkout_at, tt_id))
        actions: list[Tracked] = []
        ids: list[str] = []
        sessions: list[str] = []
        newest = min(v.views)
        for k, (kind, ago, ticket_type) in enumerate(steps):
            action_id = self._action_id(v.n, k)
            # A revisit (an earlier view 30+ minutes before the others) was another session.
            sessions.append(f"{self.run_id}-{v.session}-{0 if ago - newest > 1800 else 1}")
            ids.append(action_id)
            actions.append(
                Tracked(
                    kind,
                    event["id"],
                    ticket_type,
                    visitor,
                    v.source,
                    now - timedelta(seconds=ago),
                    v.device,
                )
            )
        self.track(actions, ids, sessions)
        with self.ledger.lock:
            self.ledger.visits += 1
        if v.participant is None:
            return
        account = self.participant(v.participant)
        reservation = None
        if v.via_hold:
            response = self.http.call(
                "POST", f"/events/{event['id']}/reservations", account=account,
                json={"ticket_type_id": tt_id},
            )  # fmt: skip
            if response.status_code == 409:
                self._sold_out(response, event["id"], tt_id, account)
                return
            reservation = self._ok(response, "reservation")
            with self.ledger.lock:
                self.ledger.holds.append((event["id"], tt_id))
            if v.stage == "reserved":  # second thoughts: the hold goes back
                self._ok(
                    self.http.call(
                        "POST", f"/reservations/{reservation['id']}/cancel", account=account
                    ),
                    "hold given back",
                )
                return
        registration = self.register(
            event["id"], tt_id, account, v.source, reservation, v.payment_mode
        )
        if registration is None:
            return
        if v.stage == "registered" or registration["amount_due_now"] == 0:
            if v.cancel:
                self.cancel(registration["id"], account)
                return
        else:
            first = self.pay(registration["id"], account, v.payments[0])
            if first is None or first["status"] != "completed":
                return
            for outcome in v.remainder:
                paid = self.pay(registration["id"], account, outcome)
                if paid is None or paid["status"] == "completed":
                    break
            if v.refund:
                self.refund(first, event["organizer"], partial=v.refund == "partial")
        if v.check_in:
            self.check_in(registration["id"], event["organizer"], f"{self.run_id}-{v.n}")

    def register(
        self,
        event_id: str,
        tt_id: str,
        account: Account,
        source: str,
        reservation: dict[str, Any] | None = None,
        payment_mode: str | None = None,
    ) -> dict[str, Any] | None:
        body: dict[str, Any] = (
            {"reservation_id": reservation["id"]} if reservation else {"ticket_type_id": tt_id}
        )
        if payment_mode:
            body["payment_mode"] = payment_mode
        response = self.http.call(
            "POST", f"/events/{event_id}/registrations", account=account, json=body
        )
        if response.status_code == 409 and reservation is None:
            self._sold_out(response, event_id, tt_id, account)
            return None
        registration = self._ok(response, "registration")
        with self.ledger.lock:
            self.ledger.registrations[registration["id"]] = Registration(
                registration["id"], event_id, tt_id, account, source, dict(registration)
            )
        return registration

    def _sold_out(self, response: httpx.Response, event_id: str, tt_id: str, account: Account):
        """A 409 on taking a seat: sold out (or a waitlist ahead) means joining the waitlist."""
        code = error_code(response)
        self.ledger.count(code or "conflict")
        if code != "sold_out":
            if code in ("already_registered", "event_full", "registration_closed"):
                return None
            raise Unexpected("seat", response)
        joined = self.http.call(
            "POST", f"/events/{event_id}/waitlist", account=account,
            json={"ticket_type_id": tt_id},
        )  # fmt: skip
        if joined.status_code == 409:  # a seat came free, or already waiting
            self.ledger.count(f"waitlist_{error_code(joined)}")
            return None
        entry = self._ok(joined, "waitlist")
        with self.ledger.lock:
            self.ledger.waitlist[entry["id"]] = (event_id, tt_id)
            self._entries[(account.email, tt_id)] = entry
        return entry

    def cancel(self, registration_id: str, account: Account) -> None:
        self._ok(
            self.http.call("POST", f"/registrations/{registration_id}/cancel", account=account),
            "cancellation",
        )

    def pay(self, registration_id: str, account: Account, outcome: str) -> dict[str, Any] | None:
        """Pay what the registration owes now; answers the payment once settled (None when
        nothing is due)."""
        with self._pay_lock:  # the scripted outcome goes to this payment
            if self.script_outcome is not None:
                self.script_outcome(outcome)
            response = self.http.call(
                "POST", "/payments", account=account, json={"registration_id": registration_id}
            )
        if response.status_code == 409:
            self.ledger.count(f"payment_{error_code(response)}")
            return None
        payment = self._ok(response, "payment")
        return self._settled(payment["id"], account)

    def _settled(self, payment_id: str, account: Account) -> dict[str, Any]:
        deadline = time.monotonic() + self.payment_wait_s
        while True:
            payment = self._ok(
                self.http.call("GET", f"/payments/{payment_id}", account=account), "payment"
            )
            pending = [r for r in payment["refunds"] if r["status"] in ("requested", "pending")]
            if payment["status"] in TERMINAL_PAYMENT and not pending:
                return payment
            if time.monotonic() > deadline:
                self.ledger.count("payment_unsettled")
                return payment
            self.http.wait(0.2)

    def refund(self, payment: dict[str, Any], organizer: int, *, partial: bool) -> None:
        owner = self.organizers[organizer]
        body = {"amount": max(1, payment["amount"] // 2)} if partial else None
        response = self.http.call(
            "POST", f"/payments/{payment['id']}/refund", account=owner, json=body
        )
        if response.status_code == 409:
            self.ledger.count(f"refund_{error_code(response)}")
            return
        self._ok(response, "refund")
        self._settled(payment["id"], owner)

    def check_in(self, registration_id: str, organizer: int, nonce: str) -> None:
        response = self.http.call(
            "POST", f"/registrations/{registration_id}/check-in",
            account=self.organizers[organizer], json={"nonce": nonce},
        )  # fmt: skip
        if response.status_code == 409:  # not confirmed (a payment failed), or cancelled
            self.ledger.count(f"check_in_{error_code(response)}")
            return
        self._ok(response, "check-in")

    # --- the flash sale -----------------------------------------------------------------------
    def flash_sale(self, fs: FlashSalePlan) -> None:
        """Every buyer at once on a small ticket type: some get a seat, the rest 409 sold_out
        and join the waitlist; some winners cancel (the sweeper offers their seats to the
        waitlist, and the offers are taken), some of the waiting leave."""
        event = self.events[fs.event]
        if fs.new_ticket_type is not None and fs.ticket_type not in event["types"]:
            t = fs.new_ticket_type
            created = self._ok(
                self.http.call(
                    "POST", f"/events/{event['id']}/ticket-types",
                    account=self.organizers[event["organizer"]],
                    json={"name": t.name, "capacity": t.capacity, "price_amount": t.price_amount,
                          "currency": t.currency},
                ),
                "flash ticket type",
            )  # fmt: skip
            event["types"][fs.ticket_type] = created["id"]
        tt_id = event["types"][fs.ticket_type]
        buyers = [self.participant(b) for b in fs.buyers]
        for account in buyers:  # signed in beforehand: the burst is registrations only
            self.http.token(account)
        now = datetime.now(UTC)
        actions, ids, sessions = [], [], []
        for b in fs.buyers:
            visitor = f"{self.run_id}-flash-{b}"
            for k, (kind, ago) in enumerate(
                (("page_view", 90), ("ticket_selected", 40), ("checkout_started", 20))
            ):
                ticket_type = None if kind == "page_view" else tt_id
                at = now - timedelta(seconds=ago)
                actions.append(
                    Tracked(kind, event["id"], ticket_type, visitor, "telegram", at, "mobile")
                )
                ids.append(self._action_id("flash", fs.ticket_type, b, k))
                sessions.append(f"{visitor}-s")
        for start in range(0, len(actions), 99):
            end = start + 99
            self.track(actions[start:end], ids[start:end], sessions[start:end])
        gate = threading.Barrier(len(buyers))

        def buy(account: Account) -> dict[str, Any] | None:
            gate.wait(timeout=60)
            return self.register(event["id"], tt_id, account, "telegram")

        with ThreadPoolExecutor(len(buyers)) as pool:
            results = list(pool.map(buy, buyers))
        winners = {b: r for b, r in zip(fs.buyers, results, strict=True) if r is not None}
        log.info("flash_sale", buyers=len(buyers), seats=len(winners))
        for b, registration in winners.items():
            if registration["amount_due_now"]:
                self.pay(registration["id"], self.participant(b), "succeeded")
        freed = 0
        for b in sorted(winners)[: fs.cancellers]:  # who won the race is the platform's say
            self.cancel(winners[b]["id"], self.participant(b))
            freed += 1
        for b in fs.leavers:
            entry = self._entries.get((self.participant(b).email, tt_id))
            if entry is not None:
                self.leave_waitlist(event["id"], entry, self.participant(b))
        if freed:
            self._take_offers(event, tt_id, fs, freed)

    def _take_offers(self, event: dict[str, Any], tt_id: str, fs: FlashSalePlan, n: int) -> None:
        """Freed seats are offered by the sweeper (``aqstream jobs``) as holds; the offered
        participants register with them. Without a sweeper nothing is offered: waited for
        ``offer_wait_s``, then the run goes on."""
        by_user = {self.participant(b).user_id: self.participant(b) for b in fs.buyers}
        taken: set[str] = set()
        deadline = time.monotonic() + self.offer_wait_s
        while len(taken) < n and time.monotonic() < deadline:
            entries = self._ok(
                self.http.call(
                    "GET", f"/events/{event['id']}/waitlist",
                    account=self.organizers[event["organizer"]],
                ),
                "waitlist",
            )  # fmt: skip
            for entry in entries:
                account = by_user.get(entry["user_id"])
                if entry["status"] != "offered" or entry["id"] in taken or account is None:
                    continue
                taken.add(entry["id"])
                registration = self.register(
                    event["id"], tt_id, account, "telegram", {"id": entry["reservation_id"]}
                )
                if registration and registration["amount_due_now"]:
                    self.pay(registration["id"], account, "succeeded")
            self.http.wait(0.5)
        self.ledger.count("waitlist_offers_taken", len(taken))

    def leave_waitlist(self, event_id: str, entry: dict[str, Any], account: Account) -> None:
        """Leave through the API's route for it, found in its OpenAPI document (a platform
        without one keeps the entry: counted as ``waitlist_leave_unavailable``)."""
        if self._leave_route is False:
            self._leave_route = self._find_leave_route()
        if not self._leave_route:
            self.ledger.count("waitlist_leave_unavailable")
            return
        method, template = self._leave_route
        path = template.format(event_id=event_id, entry_id=entry["id"], id=entry["id"])
        response = self.http.call(method.upper(), path, account=account)
        if response.status_code == 409:  # offered meanwhile, or gone
            self.ledger.count(f"waitlist_leave_{error_code(response)}")
            return
        self._ok(response, "leaving the waitlist") if response.status_code != 204 else None

    def _paths(self) -> dict[str, Any]:
        """The API's OpenAPI paths (once): what this platform offers."""
        if self._openapi is None:
            response = self.http.client.get("/openapi.json")
            self._openapi = response.json().get("paths", {}) if response.status_code == 200 else {}
        return self._openapi

    def _has_route(self, path: str) -> bool:
        return V1 + path in self._paths()

    def _find_leave_route(self) -> tuple[str, str] | None:
        for path, operations in self._paths().items():
            if "waitlist" not in path or not path.rstrip("/").endswith(("_id}", "/leave")):
                continue
            if "delete" in operations:
                return "delete", path.removeprefix(V1)
            if "post" in operations and path.endswith("/leave"):
                return "post", path.removeprefix(V1)
        return None

    # --- running ------------------------------------------------------------------------------
    def run(
        self,
        visits: int | None = None,
        *,
        rate: float | None = None,
        duration: float | None = None,
        flash: bool = True,
    ) -> None:
        """Flash sales, then visits: ``visits`` of them (``None``: until ``duration`` or a stop),
        ``rate`` per second (``None``: as fast as ``concurrency`` allows). A visit that fails is
        logged and counted; the next one goes on."""
        from tqdm import tqdm

        if flash:
            for fs in self.plan.flash_sales:
                self._guarded(self.flash_sale, fs)
        started = time.monotonic()
        in_flight = threading.Semaphore(self.concurrency * 2)
        self._pool = pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="visit")
        with tqdm(total=visits, desc="visits", unit="visit", disable=not self.progress) as bar:

            def done(_: object) -> None:
                in_flight.release()
                bar.update()

            for v in self.plan.stream(visits):
                if isinstance(v, FlashSalePlan):  # a burst beside the steady visits
                    pool.submit(self._guarded, self.flash_sale, v)
                    continue
                if duration is not None and time.monotonic() - started >= duration:
                    break
                if rate:
                    self.http.wait(max(0.0, started + v.n / rate - time.monotonic()))
                while not in_flight.acquire(timeout=0.2):
                    if self.stop.is_set():
                        raise Stopped()
                if self.stop.is_set():
                    raise Stopped()
                pool.submit(self._guarded, self.visit, v).add_done_callback(done)
            pool.shutdown(wait=True)

    def halt(self) -> None:
        """Stop launching visits and end those in flight at their next request (Ctrl-C); the
        simulation can then still ``settle`` and read its totals back."""
        self.stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.stop.clear()

    def _guarded(self, step: Callable[[Any], None], arg: Any) -> None:
        try:
            step(arg)
        except Stopped:
            pass
        except (Unexpected, httpx.HTTPError) as exc:  # the platform's answer, or its absence
            self.ledger.count("visit_failed")
            log.warning("visit_failed", step=step.__name__, n=getattr(arg, "n", None),
                        error=str(exc)[:500])  # fmt: skip
        except Exception:  # a bug of the generator's own: counted, logged with its traceback
            self.ledger.count("visit_failed")
            log.exception("visit_failed", step=step.__name__, n=getattr(arg, "n", None))

    def observe(self) -> None:
        """Read back every registration (with its payments and refunds) and every waitlist
        entry the run made: the totals are what the API answers now."""
        from tqdm import tqdm

        with self.ledger.lock:
            registrations = list(self.ledger.registrations.values())
            waitlisted = {event for event, _ in self.ledger.waitlist.values()}

        def read(r: Registration) -> None:
            r.state = self._ok(
                self.http.call("GET", f"/registrations/{r.id}", account=r.account), "registration"
            )
            r.payments = self._ok(
                self.http.call("GET", f"/registrations/{r.id}/payments", account=r.account),
                "payments",
            )

        with (
            ThreadPoolExecutor(self.concurrency) as pool,
            tqdm(total=len(registrations), desc="totals", disable=not self.progress) as bar,
        ):
            for _ in pool.map(read, registrations):
                bar.update()
        organizer_of = {e["id"]: e["organizer"] for e in self.events.values()}
        for event_id in waitlisted:
            entries = self._ok(
                self.http.call(
                    "GET", f"/events/{event_id}/waitlist",
                    account=self.organizers[organizer_of[event_id]],
                ),
                "waitlist",
            )  # fmt: skip
            with self.ledger.lock:
                for entry in entries:
                    if entry["id"] in self.ledger.waitlist:
                        self.ledger.waitlist_state[entry["id"]] = entry

    def settle(self, timeout_s: float = 60.0) -> None:
        """Wait until no payment or refund of the run is still in flight (the sandbox reports
        asynchronously), then ``observe``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.observe()
            with self.ledger.lock:
                busy = [
                    p
                    for r in self.ledger.registrations.values()
                    for p in r.payments
                    if p["status"] in ("pending", "processing")
                    or any(f["status"] in ("requested", "pending") for f in p["refunds"])
                ]
            if not busy or time.monotonic() > deadline:
                if busy:
                    self.ledger.count("unsettled_at_end", len(busy))
                return
            self.http.wait(0.5)

    def totals(self) -> dict[str, Any]:
        names = {
            e["id"]: {"key": key, "title": e["title"], "organization_id": e["organization_id"]}
            for key, e in self.events.items()
        }
        totals = self.ledger.totals(names)
        type_names = {tt_id: key for e in self.events.values() for key, tt_id in e["types"].items()}
        for event in totals["events"].values():
            for tt_id, counters in event["ticket_types"].items():
                counters["key"] = type_names.get(tt_id)
        totals.update(seed=self.plan.seed, scenario=self.plan.scenario, run_id=self.run_id)
        return totals


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
        rows.append((event.get("key", "?"), *(str(event[k]) for _, k in columns)))
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
    if totals["outcomes"]:
        lines.append(
            "answers: " + ", ".join(f"{k} {v}" for k, v in sorted(totals["outcomes"].items()))
        )
    return "\n".join(lines)
