"""Talking to the API as a patient client: retries, ``Retry-After``, token renewal, idempotency
keys, and the simulated people's accounts."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
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
PASSWORD = "simulated traffic, not a secret"  # every generated account's (they are test data)

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
    """``email`` names the simulated person (their address, their key); with a ``telegram_id``
    they sign up with Telegram instead, and the account has no e-mail address."""

    email: str
    display_name: str
    password: str = PASSWORD
    user_id: str | None = None
    token: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    telegram_id: int | None = None


def telegram_id(email: str) -> int:
    """A simulated person's Telegram user id: stable per e-mail."""
    return 5_000_000_000 + int.from_bytes(hashlib.sha256(email.encode()).digest()[:4], "big")


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
        telegram_bot_token: SecretStr | None = None,
        verification_key: bytes | None = None,
    ):
        self.stop = stop
        self.max_wait_s = max_wait_s
        # With the platform's client secret (AQSTREAM_DASHBOARDS_CLIENT_SECRET), each simulated
        # person calls from an address of their own, signed as the dashboards sign a browser's:
        # the API's per-address limits then count them apart, as they would real people.
        self.client_secret = client_secret
        self.telegram_bot_token = telegram_bot_token
        # With the platform's e-mail verification key, a person signed up by e-mail confirms the
        # address as if they had opened the e-mailed link (a paid ticket needs it).
        self.verification_key = verification_key
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
        if account.telegram_id is not None:
            self._sign_in_with_telegram(account)
            return
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
        if data["user"].get("email_verified_at") is None and self.verification_key is not None:
            self._confirm_email(account, data["user"]["email"])

    def _confirm_email(self, account: Account, email: str) -> None:
        """Open the verification link the platform e-mailed (its token, made with the platform's
        key as the notifications agent makes it)."""
        from domain.identity.email_verification import token_for

        assert self.verification_key is not None and account.user_id is not None
        expires = datetime.now(UTC) + timedelta(hours=1)
        token = token_for(self.verification_key, uuid.UUID(account.user_id), email, expires)
        response = self.call(
            "POST", "/auth/email-verification/confirm", json={"token": token},
            write=False, person=account,
        )  # fmt: skip
        if response.status_code != 204:  # another platform's key: paid tickets are refused
            log.warning("email_not_confirmed", email=email, status=response.status_code)

    def _sign_in_with_telegram(self, account: Account) -> None:
        """POST /auth/telegram with the Login Widget's data, signed as Telegram signs it (the
        bot token is the local stand-in's, so the generator can play Telegram's part)."""
        from domain.identity.telegram import sign

        assert self.telegram_bot_token is not None
        first, _, last = account.display_name.partition(" ")
        fields: dict[str, Any] = {
            "id": account.telegram_id, "first_name": first, "last_name": last or None,
            "username": account.email.partition("@")[0].replace("-", "_")[:32],
            "auth_date": int(time.time()),
        }  # fmt: skip
        fields = {k: v for k, v in fields.items() if v is not None}
        fields["hash"] = sign(fields, self.telegram_bot_token.get_secret_value())
        response = self.call("POST", "/auth/telegram", json=fields, write=False, person=account)
        if response.status_code != 200:
            raise Unexpected(f"Telegram sign-in of {account.email}", response)
        data = response.json()
        account.token = data["access_token"]
        account.user_id = data["user"]["id"]
