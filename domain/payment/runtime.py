"""What a process needs to take payments: its providers and, where enabled, the background work
that talks to them (built at start-up, closed at shutdown).

The workers thread hands requested refunds to providers (``jobs.submit_requested_refunds``)
and delivers the sandbox's due webhooks over HTTP to its webhook URL, as a real provider's
servers would. Tests leave it off and drive both themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from sqlalchemy.orm import Session, sessionmaker

from domain.payment.jobs import submit_requested_refunds
from domain.payment.providers import Providers, build_providers
from domain.payment.providers.sandbox import SandboxProvider

log = structlog.get_logger(__name__)


class PaymentWorkers:
    """A daemon thread: every ``interval_s``, submit requested refunds and deliver due sandbox
    webhooks. Failures are logged and retried on the next round."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        providers: Providers,
        *,
        interval_s: float = 1.0,
        http_timeout_s: float = 10.0,
        headers: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.providers = providers
        self.interval_s = interval_s
        self.headers = headers
        self._http = httpx.Client(timeout=http_timeout_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="payment-workers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._http.close()

    def run_once(self) -> None:
        submit_requested_refunds(self.sessions, self.providers, headers=self.headers)
        for provider in self.providers:
            if isinstance(provider, SandboxProvider) and provider.webhook_url:
                provider.deliver_due(self._sender(provider.webhook_url))

    def _sender(self, url: str) -> Callable[[bytes, dict[str, str]], int]:
        def send(body: bytes, headers: dict[str, str]) -> int:
            try:
                return self._http.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError as exc:
                log.warning("sandbox_delivery_failed", url=url, error=str(exc))
                return 0

        return send

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("payment_workers_round_failed")
            self._stop.wait(self.interval_s)


@dataclass
class PaymentRuntime:
    providers: Providers
    workers: PaymentWorkers | None = None

    @classmethod
    def start(
        cls,
        settings: Any,
        sessions: sessionmaker[Session],
        *,
        headers: Callable[[], dict[str, str]] | None = None,
    ) -> PaymentRuntime:
        """Build the enabled providers; start the workers if ``payment_workers_enabled``."""
        providers = build_providers(settings)
        workers = None
        if settings.payment_workers_enabled and providers.names:
            workers = PaymentWorkers(
                sessions,
                providers,
                http_timeout_s=settings.payment_provider_timeout_s,
                headers=headers,
            )
            workers.start()
        log.info("payments_ready", providers=providers.names, workers=workers is not None)
        return cls(providers, workers)

    def close(self) -> None:
        if self.workers is not None:
            self.workers.stop()
        self.providers.close()
