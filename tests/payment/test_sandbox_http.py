"""The sandbox as the demo runs it: the API's payment workers deliver the sandbox's signed
webhooks to its own POST /webhooks/sandbox over real HTTP, and submit requested refunds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from aqstream.stack.servers import free_port
from core.settings import Settings
from tests.live import served
from tests.payment.conftest import Shop


@pytest.fixture(scope="module")
def live_api(settings: Settings) -> Iterator[str]:
    """A uvicorn server with the payment workers on, its sandbox confirming in 0.2 s."""
    from api.app import create_app

    port = free_port()
    app = create_app(
        settings.model_copy(
            update={
                "api_port": port,
                "payment_workers": True,
                "payment_sandbox_delay_s": 0.2,
            }
        )
    )
    with served(app, port=port) as url:
        yield url


def _until(check, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_the_sandbox_confirms_and_refunds_over_http(
    live_api: str, client: TestClient, api, admin: dict
) -> None:
    shop = Shop(client, api, admin)
    user, registration = shop.buyer()
    with httpx.Client(base_url=f"{live_api}/api/v1", timeout=10) as http:
        created = http.post(
            "/payments",
            json={"registration_id": registration["id"]},
            headers={**user["headers"], "X-Idempotency-Key": uuid.uuid4().hex},
        )
        assert created.status_code == 201, created.text
        payment = created.json()
        assert payment["checkout_url"].startswith(live_api)
        page = http.get(payment["checkout_url"])
        assert page.status_code == 200 and payment["provider_reference"] in page.text

        def status() -> str | None:
            body = http.get(f"/payments/{payment['id']}", headers=user["headers"]).json()
            return body["status"] if body["status"] not in ("pending", "processing") else None

        assert _until(status) == "completed"
        registration = http.get(
            f"/registrations/{registration['id']}", headers=user["headers"]
        ).json()
        assert (registration["status"], registration["amount_paid"]) == ("confirmed", 5000)

        refunded = http.post(
            f"/payments/{payment['id']}/refund",
            json={"amount": 500},
            headers={**shop.owner["headers"], "X-Idempotency-Key": uuid.uuid4().hex},
        )
        assert refunded.status_code == 201, refunded.text
        assert _until(
            lambda: (
                http.get(f"/payments/{payment['id']}", headers=user["headers"]).json()[
                    "amount_refunded"
                ]
                == 500
            )
        )
