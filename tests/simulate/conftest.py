"""Fixtures of the generator's tests: the API served over real HTTP (uvicorn in a thread) with
its payment workers on, so the sandbox reports outcomes by webhook as on a running platform, and
a sweeper thread, as `aqstream jobs` runs (it offers freed seats to waitlists)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from aqstream.simulate import Account
from aqstream.stack.servers import free_port
from core.settings import Settings
from domain.registration.sweeper import sweep_once
from tests.live import served


@dataclass
class Platform:
    url: str
    app: object
    settings: Settings

    @property
    def sandbox(self):
        return self.app.state.payments.providers.get("sandbox")

    @property
    def sessions(self):
        return self.app.state.aq.sessionmaker


def platform_settings(settings: Settings, port: int, **overrides) -> Settings:
    return settings.model_copy(
        update={
            "api_port": port,
            "payment_workers": True,
            "payment_sandbox_delay_s": 0.3,
            "payment_sandbox_webhook_url": f"http://127.0.0.1:{port}/api/v1/webhooks/sandbox",
            **overrides,
        }
    )


@pytest.fixture(scope="module")
def platform(settings: Settings) -> Iterator[Platform]:
    """The API on a free port, payment workers on, a sweeper every 0.3 s."""
    from api.app import create_app

    port = free_port()
    app_settings = platform_settings(settings, port)
    app = create_app(app_settings)
    with served(app, port=port) as url:
        stop = threading.Event()
        platform = Platform(url, app, app_settings)

        def sweep() -> None:
            while not stop.wait(0.3):
                sweep_once(platform.sessions, payment_timeout_s=app_settings.payment_timeout_s)

        sweeper = threading.Thread(target=sweep, name="sweeper", daemon=True)
        sweeper.start()
        try:
            yield platform
        finally:
            stop.set()
            sweeper.join(timeout=10)


@pytest.fixture(scope="module")
def admin_account(settings: Settings, platform: Platform) -> Account:
    """A platform administrator, made the operator's way (what `aqstream admin grant` does)."""
    import uuid

    import httpx
    from sqlalchemy import create_engine, pool, text

    email = f"sim-admin-{uuid.uuid4().hex[:8]}@example.org"
    account = Account(email, "Admin")
    response = httpx.post(
        f"{platform.url}/api/v1/auth/register",
        json={"email": email, "password": account.password},
    )
    assert response.status_code == 201, response.text
    engine = create_engine(settings.owner_url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET is_platform_admin = true WHERE email = :e"), {"e": email}
        )
    engine.dispose()
    return account


def verification_key(settings: Settings) -> bytes:
    """The platform's e-mail verification key: simulated people confirm their addresses with it,
    as the e-mailed link does (a paid ticket needs a confirmed address)."""
    from domain.identity.email_verification import signing_key

    return signing_key(settings.ticket_signing_key.get_secret_value())
