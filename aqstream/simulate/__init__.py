"""`aqstream simulate`: deterministic traffic through the real HTTP API of a running platform.

Three parts, a module each (and ``client``, the HTTP client they talk through):

- **The plan** (``plan``: ``build_plan``, ``visits``): a pure function of the seed and the
  scenario. Organizers, their events and ticket types (sizes, prices, currencies, deposits), the
  participant accounts, and one ``VisitPlan`` per visitor: source, device, page views and their
  times, how far down the funnel they go, how they pay, whether they cancel, get refunded or
  check in; the flash sales. ``random.Random`` seeded per visit, so visit ``n`` is the same
  whether 10 or 10,000 visits are asked for, and the live mode can go on forever.
- **The driver** (``simulation``: ``Simulation``): carries a plan out against ``--api`` with
  httpx, as participants (real accounts, signed up once and reused), organizers (refunds,
  check-ins) and anonymous browsers (``POST /analytics/track``). Every write carries an
  ``X-Idempotency-Key`` so a retry after a lost answer is harmless; 429/503 wait for
  ``Retry-After``; an expired token is renewed. In live mode a failed visit is logged and the
  next one goes on.
- **The totals** (``ledger``: ``Ledger``, ``summary``): what the platform answered, never what
  the database holds: the registrations, payments, refunds and waitlist entries the generator
  made, read back from the API at the end, plus the tracked actions it sent (and their unique
  views by the 30-minute rule, computable because it chose the times), and the funnel of visits
  with their first-touch sources (``journeys``): each simulated visitor gives its holds and
  registrations the visitor id it tracks with, as a browser's page does.

The plan states intentions; the platform decides outcomes. A payment planned to fail fails only
where the sandbox can be scripted (``script_outcome``, e.g. in tests); against a running
platform the sandbox's own ``AQSTREAM_PAYMENT_SANDBOX_FAILURE_RATE`` decides. The totals follow
the answers either way.
"""

from aqstream.simulate.client import (
    BROWSER_UA,
    PASSWORD,
    V1,
    Account,
    Http,
    Stopped,
    Unexpected,
    address_of,
    error_code,
)
from aqstream.simulate.ledger import (
    ATTRIBUTION_WINDOW,
    COUNTERS,
    PAID,
    STAGES,
    Later,
    Ledger,
    Registration,
    Step,
    Tracked,
    conversion,
    journeys,
    summary,
)
from aqstream.simulate.plan import (
    CURRENCIES,
    DEVICES,
    SCENARIOS,
    SOURCES,
    UNIQUE_VIEW_WINDOW,
    EventPlan,
    FlashSalePlan,
    OrganizerPlan,
    Plan,
    Scenario,
    Source,
    TicketTypePlan,
    VisitPlan,
    _flash_sale,
    build_plan,
    unique_views,
)
from aqstream.simulate.simulation import TERMINAL_PAYMENT, Simulation

__all__ = [
    "ATTRIBUTION_WINDOW",
    "BROWSER_UA",
    "COUNTERS",
    "CURRENCIES",
    "DEVICES",
    "PAID",
    "PASSWORD",
    "SCENARIOS",
    "SOURCES",
    "STAGES",
    "TERMINAL_PAYMENT",
    "UNIQUE_VIEW_WINDOW",
    "V1",
    "Account",
    "EventPlan",
    "FlashSalePlan",
    "Http",
    "Later",
    "Ledger",
    "OrganizerPlan",
    "Plan",
    "Registration",
    "Scenario",
    "Simulation",
    "Source",
    "Step",
    "Stopped",
    "TicketTypePlan",
    "Tracked",
    "Unexpected",
    "VisitPlan",
    "_flash_sale",
    "address_of",
    "build_plan",
    "conversion",
    "error_code",
    "journeys",
    "summary",
    "unique_views",
]
