"""Timestamped HMAC-SHA256 webhook signatures, the scheme Stripe documents for its
``Stripe-Signature`` header and the sandbox uses too:

    <header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]

Several ``v1`` values may be present (the sender signs with each of its current secrets while
one rotates); one match suffices. Other schemes (``v0``) are ignored. A timestamp further than
``tolerance_s`` from now is refused, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from domain.payment.providers.base import SignatureError

SCHEME = "v1"


def compute(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header(secrets: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts on ``body`` (one ``v1`` per secret)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    return ",".join([f"t={timestamp}", *(f"{SCHEME}={compute(k, timestamp, body)}" for k in keys)])


def verify(
    value: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance_s: int,
    now: float | None = None,
) -> int:
    """Check ``value`` (the header) against ``body``; answer its timestamp or raise
    ``SignatureError``."""
    if not value:
        raise SignatureError("missing", "no signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(val)
            except ValueError:
                raise SignatureError("malformed", "the timestamp is not an integer") from None
        elif key == SCHEME:
            signatures.append(val)
    if timestamp is None:
        raise SignatureError("malformed", "no timestamp in the signature header")
    if not signatures:
        raise SignatureError("malformed", f"no {SCHEME} signature in the signature header")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("stale", f"the timestamp is {int(now - timestamp)} s off")
    for secret in secrets:
        expected = compute(secret, timestamp, body)
        if any(hmac.compare_digest(expected, s) for s in signatures):
            return timestamp
    raise SignatureError("mismatch", "no signature matches the body")
