"""The driver: ``Simulation`` carries a plan out against the API of a running platform."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from pydantic import SecretStr

from aqstream.simulate.client import (
    V1,
    Account,
    Http,
    Stopped,
    Unexpected,
    error_code,
    telegram_id,
)
from aqstream.simulate.ledger import Ledger, Registration, Tracked
from aqstream.simulate.plan import (
    SOURCES,
    EventPlan,
    FlashSalePlan,
    OrganizerPlan,
    Plan,
    VisitPlan,
    person_name,
)

log = structlog.get_logger("aqstream.simulate")

# --- the driver -----------------------------------------------------------------------------------

TERMINAL_PAYMENT = frozenset({"completed", "failed", "partially_refunded", "refunded"})


class Simulation:
    """Carries a plan out against the API at ``api_url`` (its base, e.g. http://127.0.0.1:8000).

    ``admin``: a platform administrator's account (approves organization requests); without
    one, a generated account is signed up and ``grant_admin(email)`` makes it one (the CLI does
    what ``aqstream admin grant`` does). ``script_outcome(outcome)`` is called right before each
    payment is made, where the sandbox can be told the outcome (tests). With the platform's
    ``telegram_bot_token`` (only where the Bot API is a local stand-in: `aqstream demo
    --telegram`), every ``telegram_every``-th participant signs up with Telegram instead of an
    e-mail address, so their notifications go by Telegram. With the platform's
    ``verification_key`` (domain/identity/email_verification.py), participants who sign up by
    e-mail confirm their address as the e-mailed link does; without it, paid tickets are refused
    to them (``email_not_verified``).
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
        telegram_bot_token: SecretStr | None = None,
        telegram_every: int = 4,
        verification_key: bytes | None = None,
    ) -> None:
        self.plan = plan
        self.stop = threading.Event()
        secret = client_secret.get_secret_value().encode() if client_secret else None
        self.http = Http(
            api_url, self.stop, max_wait_s=max_wait_s, client_secret=secret,
            telegram_bot_token=telegram_bot_token, verification_key=verification_key,
        )  # fmt: skip
        self.telegram_every = telegram_every if telegram_bot_token is not None else 0
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
        self.events: dict[str, dict[str, Any]] = {}  # key -> {"id", "published_at", "types", ...}
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
                email = f"sim-{p.seed}-{p.scenario}-participant-{index}@example.org"
                telegram = self.telegram_every and index % self.telegram_every == 0
                self._participants[index] = Account(
                    email, person_name(index), telegram_id=telegram_id(email) if telegram else None
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
        owner = self.organizers[o.index] = Account(o.email, person_name(1000 + o.index))
        mine = self._all("/organizations", owner, "my organizations")
        for org in mine:
            if org["slug"] == o.slug:
                return org["id"]
        requests = self._all("/organization-requests", owner, "my requests")
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
                    "title": e.title,
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
        published = self._ok(
            self.http.call("POST", f"/events/{event['id']}/publish", account=owner), "publish"
        )
        return {
            "id": event["id"],
            "published_at": datetime.fromisoformat(published["published_at"]),
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

    def _all(self, path: str, account: Account, what: str) -> list[dict[str, Any]]:
        """Every item of a paged list, page after page (``next_cursor``)."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 100}
        while True:
            page = self._ok(
                self.http.call("GET", f"{path}?{urlencode(query)}", account=account), what
            )
            items += page["items"]
            if page["next_cursor"] is None:
                return items
            query["cursor"] = page["next_cursor"]

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
        # A planned journey reaches up to an hour back; nobody saw the page before it was
        # published (the "whole event" views start there): earlier steps happen at publication.
        earliest = event["published_at"]
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
                    max(now - timedelta(seconds=ago), earliest),
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
            # the page gives the hold the visitor id it tracks with (docs/tracking.md)
            response = self.http.call(
                "POST", f"/events/{event['id']}/reservations", account=account,
                json={"ticket_type_id": tt_id, "visitor_id": visitor},
            )  # fmt: skip
            if response.status_code == 409:
                self._sold_out(response, event["id"], tt_id, account)
                return
            reservation = self._ok(response, "reservation")
            with self.ledger.lock:
                self.ledger.holds.append((event["id"], tt_id, visitor, datetime.now(UTC)))
            if v.stage == "reserved":  # second thoughts: the hold goes back
                self._ok(
                    self.http.call(
                        "POST", f"/reservations/{reservation['id']}/cancel", account=account
                    ),
                    "hold given back",
                )
                return
        registration = self.register(
            event["id"], tt_id, account, v.source, reservation, v.payment_mode, visitor=visitor
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
        *,
        visitor: str,
    ) -> dict[str, Any] | None:
        """Register (from ``reservation``, else directly) as the tracked ``visitor``: the page
        sends the visitor id it tracks with, so the warehouse credits the registration to the
        visitor's visit and its source (a hold's visitor would carry over; the page says it
        again, as it must for a hold the sweeper made from the waitlist)."""
        body: dict[str, Any] = (
            {"reservation_id": reservation["id"]} if reservation else {"ticket_type_id": tt_id}
        )
        body["visitor_id"] = visitor
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
                registration["id"], event_id, tt_id, account, source, dict(registration),
                visitor=visitor,
            )  # fmt: skip
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
            visitor = self._flash_visitor(b)
            for k, (kind, ago) in enumerate(
                (("page_view", 90), ("ticket_selected", 40), ("checkout_started", 20))
            ):
                ticket_type = None if kind == "page_view" else tt_id
                at = max(now - timedelta(seconds=ago), event["published_at"])
                actions.append(
                    Tracked(kind, event["id"], ticket_type, visitor, "telegram", at, "mobile")
                )
                ids.append(self._action_id("flash", fs.ticket_type, b, k))
                sessions.append(f"{visitor}-s")
        for start in range(0, len(actions), 99):
            end = start + 99
            self.track(actions[start:end], ids[start:end], sessions[start:end])
        gate = threading.Barrier(len(buyers))

        def buy(b: int) -> dict[str, Any] | None:
            gate.wait(timeout=60)
            return self.register(
                event["id"], tt_id, self.participant(b), "telegram",
                visitor=self._flash_visitor(b),
            )  # fmt: skip

        with ThreadPoolExecutor(len(buyers)) as pool:
            results = list(pool.map(buy, fs.buyers))
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

    def _flash_visitor(self, buyer: int) -> str:
        """The visitor id a flash sale's buyer tracks with (the same browser for every sale)."""
        return f"{self.run_id}-flash-{buyer}"

    def _take_offers(self, event: dict[str, Any], tt_id: str, fs: FlashSalePlan, n: int) -> None:
        """Freed seats are offered by the sweeper (``aqstream jobs``) as holds; the offered
        participants register with them. Without a sweeper nothing is offered: waited for
        ``offer_wait_s``, then the run goes on."""
        by_user = {self.participant(b).user_id: b for b in fs.buyers}
        taken: set[str] = set()
        deadline = time.monotonic() + self.offer_wait_s
        while len(taken) < n and time.monotonic() < deadline:
            entries = self._all(
                f"/events/{event['id']}/waitlist", self.organizers[event["organizer"]], "waitlist"
            )
            for entry in entries:
                b = by_user.get(entry["user_id"])
                if entry["status"] != "offered" or entry["id"] in taken or b is None:
                    continue
                taken.add(entry["id"])
                account = self.participant(b)
                registration = self.register(
                    event["id"], tt_id, account, "telegram", {"id": entry["reservation_id"]},
                    visitor=self._flash_visitor(b),
                )  # fmt: skip
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
            )["items"]  # answered whole: a registration has few payments

        with (
            ThreadPoolExecutor(self.concurrency) as pool,
            tqdm(total=len(registrations), desc="totals", disable=not self.progress) as bar,
        ):
            for _ in pool.map(read, registrations):
                bar.update()
        organizer_of = {e["id"]: e["organizer"] for e in self.events.values()}
        for event_id in waitlisted:
            entries = self._all(
                f"/events/{event_id}/waitlist", self.organizers[organizer_of[event_id]], "waitlist"
            )
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
