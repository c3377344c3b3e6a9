"""Partial updates (PUT /events/{id}, PUT /events/{id}/ticket-types/{id}) say in OpenAPI what the
server does: a field left out is unchanged; null is allowed exactly where it clears a value, and
refused where the value is required."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.settings import PROJECT_ROOT
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


URLS = {
    "https://example.org/a?b=c#d": True,
    "https://ü.example/ä": True,
    "https://a b": False,
    "https://a\x1cb": False,  # a control character: not white space to ECMAScript
    "https://a\x85b": False,  # NEL: white space to pydantic's regex, not to ECMAScript's \s
    "https://a\ufeffb": False,  # BOM: white space to ECMAScript's \s, not to pydantic's
    "ftp://example.org": False,
}


def test_online_url_pattern_means_the_same_to_clients_and_server(
    client: TestClient, organizer: Organizer
) -> None:
    """Found by schemathesis: "\\s" in the pattern differs between ECMAScript (the schema) and
    pydantic's Rust regex (the server), so a schema-valid URL was refused."""
    event = organizer.event()
    pattern = _schemas(client)["EventUpdate"]["properties"]["online_url"]["anyOf"][0]["pattern"]
    assert "\\s" not in pattern  # engine-dependent classes only
    for url, valid in URLS.items():
        assert bool(re.fullmatch(pattern, url)) is valid, url
        answer = client.put(
            f"{V1}/events/{event['id']}",
            json={"online_url": url},
            headers=organizer.owner["headers"],
        )
        assert answer.status_code == (200 if valid else 422), (url, answer.text)
