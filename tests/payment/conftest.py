"""A shop for the payment tests: an organization selling a paid event, and its participants."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.factories import Organizer, registered, sandbox


class Shop(Organizer):
    """An organization with a published event selling two ticket types: ``full`` (50.00 EUR,
    paid at once) and ``deposit`` (100.00 EUR, 25.00 of it as a deposit)."""

    def __init__(self, client: TestClient, api, admin: dict, **event_fields) -> None:
        super().__init__(client, api, admin)
        self.event_body = self.event(**event_fields)
        self.full = self.ticket_type(self.event_body["id"], capacity=50, price_amount=5000)
        self.deposit = self.ticket_type(
            self.event_body["id"], name="Deposit", capacity=50, price_amount=10000,
            deposit_amount=2500,
        )  # fmt: skip
        self.publish(self.event_body["id"])

    @property
    def event_id(self) -> str:
        return self.event_body["id"]

    def buyer(self, ticket: str = "full", **body) -> tuple[dict, dict]:
        """A new participant registered for one ticket (``ticket``: full or deposit)."""
        user = self.api.register("buyer")
        tt = self.full if ticket == "full" else self.deposit
        mode = {"payment_mode": "deposit"} if ticket == "deposit" else {}
        registration = registered(
            self.client, self.event_id, user, ticket_type_id=tt["id"], **mode, **body
        )
        return user, registration


@pytest.fixture
def shop(client: TestClient, api, admin: dict) -> Shop:
    return Shop(client, api, admin)


@pytest.fixture(autouse=True)
def _empty_sandbox_queue(client: TestClient):
    """Each test starts and ends with no webhook of another test still queued."""
    box = sandbox(client)
    box.deliver_all(lambda body, headers: 200)
    yield
    box.deliver_all(lambda body, headers: 200)


def count_rows(engine: Engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()
