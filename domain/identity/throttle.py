"""Per-account sign-in throttling, counted in Redis: after a few wrong passwords for one account,
from whatever addresses, each further attempt waits, the wait doubling with every failure up to
a cap (the OWASP Authentication Cheat Sheet's "exponential lockout" rather than a lockout an
attacker could keep up for free). The per-address limits of the rate limit middleware cannot
see an attack spread over many addresses; this counts per account.

- An attempt is counted *before* its password is checked (atomically, in one script), so
  concurrent guesses cannot all slip through the free ones; a success resets the count.
- While an account waits, attempts are refused unchecked and uncounted: the wait ends on time
  whatever an attacker keeps sending.
- An address the account signed in from recently is remembered and keeps a count of its own, so
  failures from elsewhere do not lock the user out where they usually sign in.
- Unknown e-mails are throttled alike, so a refusal does not tell whether an account exists.

Keys (the account is the SHA-256 of its normalised e-mail, never the e-mail itself):
``aq:signin:{<account>}:fails`` / ``:lock`` per account, ``…:fails:<address>`` / ``…:lock:<address>``
for a known address, and ``…:known`` (a sorted set of addresses by last sign-in).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import redis

from core.settings import Settings
from domain.errors import DomainError

_PREFIX = "aq:signin"
MAX_KNOWN_ADDRESSES = 20

# KEYS: account fails, account lock, known addresses, address fails, address lock.
# ARGV: address, free failures, base ms, cap ms, window s, oldest known score (or -1: off).
# Returns {milliseconds still to wait (0: admitted and counted), 1 if the address is known}.
_ADMIT = """
local fails, lock, known = KEYS[1], KEYS[2], 0
local oldest = tonumber(ARGV[6])
if oldest >= 0 then
  local seen = redis.call('ZSCORE', KEYS[3], ARGV[1])
  if seen and tonumber(seen) >= oldest then
    fails, lock, known = KEYS[4], KEYS[5], 1
  end
end
local wait = redis.call('PTTL', lock)
if wait > 0 then return {wait, known} end
local n = redis.call('INCR', fails)
redis.call('EXPIRE', fails, ARGV[5])
local free = tonumber(ARGV[2])
if n >= free then
  local ms = math.min(tonumber(ARGV[3]) * 2 ^ (n - free), tonumber(ARGV[4]))
  redis.call('SET', lock, '1', 'PX', math.max(1, math.floor(ms)))
end
return {0, known}
"""


class AccountThrottled(DomainError):
    """Too many failed sign-ins for this account: retry after ``retry_after_s``."""

    code = "rate_limited"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"Too many failed sign-ins for this account; retry in {retry_after_s} s",
            details={"scope": "account", "retry_after_s": retry_after_s},
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 5
    base_s: float = 2.0
    max_s: float = 300.0
    window_s: int = 3600
    known_address_ttl_s: int = 30 * 86_400

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            free_failures=settings.login_throttle_free_failures,
            base_s=settings.login_throttle_base_s,
            max_s=settings.login_throttle_max_s,
            window_s=settings.login_throttle_window_s,
            known_address_ttl_s=settings.login_known_address_ttl_s,
        )


@dataclass(frozen=True)
class Attempt:
    account: str  # the hashed account
    address: str
    known: bool


def _account(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


class SignInThrottle:
    def __init__(self, client: redis.Redis, policy: ThrottlePolicy) -> None:
        self.client = client
        self.policy = policy
        self._admit = client.register_script(_ADMIT)

    def _keys(self, account: str, address: str) -> list[str]:
        base = f"{_PREFIX}:{{{account}}}"
        return [
            f"{base}:fails",
            f"{base}:lock",
            f"{base}:known",
            f"{base}:fails:{address}",
            f"{base}:lock:{address}",
        ]

    def admit(self, identity: str, address: str) -> Attempt:
        """Count an attempt at ``identity`` (a normalised e-mail) from ``address`` before its
        password is checked; raise ``AccountThrottled`` while the account must wait."""
        account = _account(identity)
        policy = self.policy
        oldest = time.time() - policy.known_address_ttl_s if policy.known_address_ttl_s else -1
        wait_ms, known = self._admit(
            keys=self._keys(account, address),
            args=[
                address,
                policy.free_failures,
                int(policy.base_s * 1000),
                int(policy.max_s * 1000),
                policy.window_s,
                oldest,
            ],
        )
        if wait_ms > 0:
            raise AccountThrottled(max(1, math.ceil(wait_ms / 1000)))
        return Attempt(account, address, bool(known))

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: reset the count the attempt was counted against, and
        remember the address."""
        fails, lock, known, address_fails, address_lock = self._keys(
            attempt.account, attempt.address
        )
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(*((address_fails, address_lock) if attempt.known else (fails, lock)))
        ttl = self.policy.known_address_ttl_s
        if ttl:
            now = time.time()
            pipe.zadd(known, {attempt.address: now})
            pipe.zremrangebyscore(known, "-inf", now - ttl)
            pipe.zremrangebyrank(known, 0, -(MAX_KNOWN_ADDRESSES + 1))
            pipe.expire(known, ttl)
        pipe.execute()
