"""Rate limits per user and per client IP, counted in Redis with the ``limits`` library.

Sliding window counter: two counters per key (this window and the last, weighted by how much of
the last still overlaps), so memory stays constant per caller and a burst at a window edge cannot
double the rate. The middleware counts all of a request's limits in one Redis round trip (one Lua
script, the library's algorithm and keys, over an asyncio client: no thread-pool hop); the
routes' own limits use the library directly. An authenticated request counts against its user and its IP, an anonymous one
against its IP; credential endpoints add a tight per-IP limit against password guessing.
If Redis fails, requests pass (availability over strictness), except on credential endpoints:
those answer 503 ``auth_unavailable`` before anything is checked, as an unlimited sign-in would
be an unlimited password oracle; see docs/api-rules.md.

The dashboards call the API for every browser from their own address; they forward each
browser's address signed with a secret shared with the API (``ForwardedClientMiddleware``), and
only a valid signature makes the API count a request against the forwarded address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import math
import time
from dataclasses import dataclass

import anyio
import redis
import redis.asyncio
from fastapi import FastAPI
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.middleware import caller_of
from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)

KEY_PREFIX = "aq:rl"
EXEMPT_PATHS = frozenset(
    {"/health", "/ready", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
CREDENTIAL_PATHS = (
    "/auth/login",
    "/auth/register",
    "/auth/telegram",
    "/auth/refresh",
    "/auth/password-reset",
    "/auth/password-reset/confirm",
)
# After a Redis failure, skip it for a moment instead of paying its timeout on every request.
FAILURE_BACKOFF_S = 5.0
# Without Redis, credential endpoints answer this 503 (here and in api/identity/router.py).
AUTH_UNAVAILABLE_CODE = "auth_unavailable"
AUTH_UNAVAILABLE_MESSAGE = "Signing in is unavailable right now; retry shortly"
AUTH_UNAVAILABLE_RETRY_AFTER_S = math.ceil(FAILURE_BACKOFF_S)


def make_limiter(client: redis.Redis) -> SlidingWindowCounterRateLimiter:
    """The one limiter of the app, over its Redis pool; built at start-up (api/state.py) and
    shared by the middleware and the routes' own limits (scoped by their first key part)."""
    storage = RedisStorage(
        "redis://", connection_pool=client.connection_pool, key_prefix=KEY_PREFIX
    )
    return SlidingWindowCounterRateLimiter(storage)


@dataclass(frozen=True)
class RateLimits:
    user: RateLimitItem
    ip: RateLimitItem
    auth: RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """Parse the limit strings ("600/minute"); a bad one fails at start-up, not per request."""
        return cls(
            user=parse(settings.rate_limit_user),
            ip=parse(settings.rate_limit_ip),
            auth=parse(settings.rate_limit_auth),
        )


@dataclass(frozen=True)
class _Check:
    scope: str  # "auth" | "user" | "ip": also the first part of the Redis key
    item: RateLimitItem
    subject: str


@dataclass(frozen=True)
class _Verdict:
    allowed: bool
    check: _Check
    remaining: int
    reset_at: float


# The limits library's sliding window counter (its acquire_sliding_window.lua and
# sliding_window.lua), over every limit of a request in one call. KEYS: each limit's previous and
# current window keys; ARGV: each limit's amount and expiry in seconds. The limits are taken in
# order and the first that refuses stops the rest (a refused request counts against no later
# limit). Returns the refusing limit's position (0: none refused), then the window of the refusing
# limit, or of every limit, read after counting: previous count and ms to live, current count and
# ms to live.
_HIT_ALL = """
local function shift(previous, current, expiry)
    local ttl = tonumber(redis.call('pttl', current))
    if ttl > 0 and ttl < expiry then
        redis.call('rename', current, previous)
        redis.call('set', current, 0, 'PX', ttl + expiry)
    end
end
local function window(previous, current)
    return {
        tonumber(redis.call('get', previous)) or 0, tonumber(redis.call('pttl', previous)),
        tonumber(redis.call('get', current)) or 0, tonumber(redis.call('pttl', current)),
    }
end
local n = #KEYS / 2
for i = 1, n do
    local previous, current = KEYS[2 * i - 1], KEYS[2 * i]
    local limit = tonumber(ARGV[2 * i - 1])
    local expiry = tonumber(ARGV[2 * i]) * 1000
    local allowed = limit >= 1
    if allowed then
        shift(previous, current, expiry)
        local w = window(previous, current)
        local weighted = math.floor(w[1] * math.max(w[2], 0) / expiry) + w[3]
        if weighted + 1 > limit then
            allowed = false
        elseif redis.call('exists', current) == 1 then
            redis.call('incrby', current, 1)
        else
            redis.call('set', current, 1, 'PX', expiry * 2)
        end
    end
    if not allowed then
        shift(previous, current, expiry)
        local w = window(previous, current)
        return {i, w[1], w[2], w[3], w[4]}
    end
end
local out = {0}
for i = 1, n do
    local previous, current = KEYS[2 * i - 1], KEYS[2 * i]
    shift(previous, current, tonumber(ARGV[2 * i]) * 1000)
    for _, v in ipairs(window(previous, current)) do
        out[#out + 1] = v
    end
end
return out
"""


def window_keys(item: RateLimitItem, scope: str, subject: str) -> tuple[str, str]:
    """The previous and current window keys the limits library's Redis storage (made by
    ``make_limiter``) uses for ``item`` and these identifiers."""
    current = f"{KEY_PREFIX}:{{{item.key_for(scope, subject)}}}"
    return f"{current}/-1", current


class LimitCounter:
    """Counts a request against all its limits in one round trip (the ``_HIT_ALL`` script).

    On the event loop it was made on (the app's, at start-up) it uses the asyncio client, with no
    thread-pool hop; an asyncio connection belongs to one loop, so on any other loop (a test
    client without lifespan runs each request on a loop of its own) it sends the same script with
    the blocking client from a worker thread."""

    def __init__(self, client: redis.asyncio.Redis, blocking: redis.Redis) -> None:
        self._client = client
        self._blocking = blocking
        self._sha = hashlib.sha1(_HIT_ALL.encode()).hexdigest()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def _ours(self) -> bool:
        return self._loop is not None and asyncio.get_running_loop() is self._loop

    async def aclose(self) -> None:
        """Close the asyncio client's connections (on its loop; elsewhere it made none)."""
        if self._ours():
            await self._client.aclose()

    async def _run(self, keys: list[str], args: list[int]) -> list[int]:
        # EVALSHA, loading the script once if the server lacks it (as redis-py's Script does,
        # without its per-call pipeline type check: a tenth of this middleware's CPU time).
        if not self._ours():
            return await anyio.to_thread.run_sync(self._run_blocking, keys, args)
        try:
            reply = await self._client.evalsha(self._sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await self._client.script_load(_HIT_ALL)
            reply = await self._client.evalsha(self._sha, len(keys), *keys, *args)
        return [int(v) for v in reply]

    def _run_blocking(self, keys: list[str], args: list[int]) -> list[int]:
        try:
            reply = self._blocking.evalsha(self._sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._blocking.script_load(_HIT_ALL)
            reply = self._blocking.evalsha(self._sha, len(keys), *keys, *args)
        return [int(v) for v in reply]

    async def hit_all(self, checks: list[_Check]) -> _Verdict:
        """Count the request against every limit; the refusing limit, else the closest to it."""
        keys: list[str] = []
        args: list[int] = []
        for check in checks:
            keys += window_keys(check.item, check.scope, check.subject)
            args += (check.item.amount, check.item.get_expiry())
        reply = await self._run(keys, args)
        if reply[0]:
            check = checks[reply[0] - 1]
            return _Verdict(False, check, 0, _stats(check.item, *reply[1:5])[1])
        verdicts = []
        for i, check in enumerate(checks):
            remaining, reset_at = _stats(check.item, *reply[1 + 4 * i : 5 + 4 * i])
            verdicts.append(_Verdict(True, check, remaining, reset_at))
        return min(verdicts, key=lambda v: v.remaining)


def _stats(
    item: RateLimitItem, previous: int, previous_ms: int, current: int, current_ms: int
) -> tuple[int, float]:
    """Remaining hits and reset time of a window, as the library's ``get_window_stats``."""
    expiry = item.get_expiry()
    previous_s, current_s = max(0, previous_ms) / 1000, max(0, current_ms) / 1000
    remaining = max(0, item.amount - math.floor(previous * previous_s / expiry + current))
    now = time.time()
    if not (previous or current):
        return remaining, now
    previous_reset_in = previous_s % (expiry / previous) if previous else math.inf
    current_reset_in = current_s % expiry if current else math.inf
    return remaining, now + min(previous_reset_in, current_reset_in)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits
        self._skip_until = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        if time.monotonic() < self._skip_until:
            await self._without_limits(scope, receive, send)
            return
        checks = self._checks(scope)
        try:
            verdict = await scope["app"].state.aq.limit_counter.hit_all(checks)
        except redis.RedisError as exc:
            self._skip_until = time.monotonic() + FAILURE_BACKOFF_S
            log.warning("rate_limit_unavailable", error=str(exc))
            await self._without_limits(scope, receive, send)
            return

        headers = {
            "X-RateLimit-Limit": str(verdict.check.item.amount),
            "X-RateLimit-Remaining": str(max(verdict.remaining, 0)),
        }
        if not verdict.allowed:
            retry_after = max(1, math.ceil(verdict.reset_at - time.time()))
            response = error_response(
                429,
                "rate_limited",
                f"Too many requests; retry in {retry_after} s",
                details={"scope": verdict.check.scope, "retry_after_s": retry_after},
                headers={**headers, "Retry-After": str(retry_after)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _without_limits(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Redis is away: pass, but refuse credential endpoints (fail closed)."""
        if not _credential(scope["path"]):
            await self.app(scope, receive, send)
            return
        response = error_response(
            503,
            AUTH_UNAVAILABLE_CODE,
            AUTH_UNAVAILABLE_MESSAGE,
            headers={"Retry-After": str(AUTH_UNAVAILABLE_RETRY_AFTER_S)},
        )
        await response(scope, receive, send)

    def _checks(self, scope: Scope) -> list[_Check]:
        """Credentials, user, IP: a request refused by one limit is not counted by the later ones."""
        caller = caller_of(scope)
        checks = []
        if _credential(scope["path"]):
            checks.append(_Check("auth", self.limits.auth, caller.ip))
        if caller.user_id:
            checks.append(_Check("user", self.limits.user, caller.user_id))
        checks.append(_Check("ip", self.limits.ip, caller.ip))
        return checks


CLIENT_IP_HEADER = b"x-aqstream-client-ip"
CLIENT_SIGNATURE_HEADER = b"x-aqstream-client-signature"
# A signature older (or newer) than this is refused: a captured pair of headers is not reusable.
SIGNATURE_MAX_AGE_S = 60


def client_signature(secret: bytes, address: str, stamp: int) -> str:
    """``<unix time>:<hex HMAC-SHA256(secret, "<unix time>:<address>")>``, as the dashboards
    sign (dashboards/session.py)."""
    mac = hmac.new(secret, f"{stamp}:{address}".encode(), hashlib.sha256).hexdigest()
    return f"{stamp}:{mac}"


def forwarded_client(scope: Scope, secret: bytes, now: float | None = None) -> str | None:
    """The browser address the dashboards forwarded, if they signed it with ``secret`` within
    the last minute; else None (the request then counts against its TCP peer)."""
    headers = dict(scope.get("headers") or ())
    address = headers.get(CLIENT_IP_HEADER, b"").decode("latin-1").strip()
    signature = headers.get(CLIENT_SIGNATURE_HEADER, b"").decode("latin-1").strip()
    if not address or not signature:
        return None
    stamp, _, _ = signature.partition(":")
    try:
        ipaddress.ip_address(address)
        age = (now if now is not None else time.time()) - int(stamp)
    except ValueError:
        return None
    if abs(age) > SIGNATURE_MAX_AGE_S:
        return None
    expected = client_signature(secret, address, int(stamp))
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    return address


class ForwardedClientMiddleware:
    """Make the signed browser address the request's client, for every limit and throttle after
    it; unsigned, badly signed or stale claims are ignored (never a plain X-Forwarded-For)."""

    def __init__(self, app: ASGIApp, *, secret: bytes) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            address = forwarded_client(scope, self.secret)
            if address is not None:
                scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)


def _credential(path: str) -> bool:
    return path.rstrip("/").endswith(CREDENTIAL_PATHS)


def _exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path.startswith("/docs/")


def install_rate_limiting(app: FastAPI, settings: Settings) -> None:
    """Add the rate limits unless disabled, and outside them the dashboards' forwarded browser
    addresses when a secret is configured; a second call is a no-op."""
    ours = (RateLimitMiddleware, ForwardedClientMiddleware)
    if any(m.cls in ours for m in app.user_middleware):
        return
    if settings.rate_limit_enabled:
        app.add_middleware(RateLimitMiddleware, limits=RateLimits.from_settings(settings))
    if settings.dashboards_client_secret is not None:
        secret = settings.dashboards_client_secret.get_secret_value().encode()
        app.add_middleware(ForwardedClientMiddleware, secret=secret)
