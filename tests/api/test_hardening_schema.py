"""Partial updates (PUT /events/{id}, PUT /events/{id}/ticket-types/{id}) say in OpenAPI what the
server does: a field left out is unchanged; null is allowed exactly where it clears a value, and
refused where the value is required."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aqstream.settings import PROJECT_ROOT
from tests.factories import V1, Organizer

# Fields whose value is required: null is refused (422). Every other field may be null.
NOT_NULL = {
    "EventUpdate": {
        "title",
        "starts_at",
        "ends_at",
        "timezone",
        "visibility",
        "participants_visibility",
        "hold_minutes",
        "max_holds_per_account",
        "max_held_seats_per_account",
        "refund_deposit_on_default",
    },
    "TicketTypeUpdate": {
        "name",
        "price_amount",
        "currency",
        "capacity",
        "max_per_order",
        "is_active",
    },
}


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_nullable(o) for o in schema.get("anyOf", []))


def _schemas(client: TestClient) -> dict[str, dict[str, Any]]:
    return client.app.openapi()["components"]["schemas"]


@pytest.mark.parametrize("name", sorted(NOT_NULL))
def test_the_schema_allows_null_only_where_the_server_does(client: TestClient, name: str) -> None:
    committed = json.loads((PROJECT_ROOT / "docs" / "openapi.json").read_text())
    for schemas in (_schemas(client), committed["components"]["schemas"]):
        schema = schemas[name]
        assert "required" not in schema  # every field may be left out: unchanged
        nullable = {field for field, prop in schema["properties"].items() if _nullable(prop)}
        assert nullable == set(schema["properties"]) - NOT_NULL[name]
        for field in NOT_NULL[name]:
            assert "default" not in schema["properties"][field], field  # not "null if left out"


@pytest.fixture(scope="module")
def organizer(client: TestClient, api, admin) -> Organizer:
    return Organizer(client, api, admin)


def test_the_server_agrees_about_events(client: TestClient, organizer: Organizer) -> None:
    event = organizer.event()
    for field, prop in _schemas(client)["EventUpdate"]["properties"].items():
        answer = client.put(
            f"{V1}/events/{event['id']}", json={field: None}, headers=organizer.owner["headers"]
        )
        expected = 200 if _nullable(prop) else 422
        assert answer.status_code == expected, (field, answer.text)
        if expected == 200:
            assert answer.json()[field] is None, field
    unchanged = client.put(
        f"{V1}/events/{event['id']}", json={}, headers=organizer.owner["headers"]
    )
    assert unchanged.status_code == 200 and unchanged.json()["title"] == event["title"]


def test_the_server_agrees_about_ticket_types(client: TestClient, organizer: Organizer) -> None:
    event = organizer.event()
    ticket = organizer.ticket_type(event["id"])
    url = f"{V1}/events/{event['id']}/ticket-types/{ticket['id']}"
    for field, prop in _schemas(client)["TicketTypeUpdate"]["properties"].items():
        answer = client.put(url, json={field: None}, headers=organizer.owner["headers"])
        expected = 200 if _nullable(prop) else 422
        assert answer.status_code == expected, (field, answer.text)
        if expected == 200:
            assert answer.json()[field] is None, field
