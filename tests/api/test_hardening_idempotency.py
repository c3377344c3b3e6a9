"""Idempotency keys are looked at only for requests the app would run: routing (404, 405) and
authentication (401) answer first, whatever the key has been used for before."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from tests.factories import V1, assert_error

EVENT = {"title": "Keyed", "starts_at": "2030-01-01T10:00:00Z", "ends_at": "2030-01-01T12:00:00Z"}


def _key() -> str:
    return f"hardening-{uuid.uuid4()}"


def _login(client: TestClient, key: str, email: str | None = None):
    """A sign-in of an unknown account (a fresh one each time: failures are throttled)."""
    return client.post(
        f"{V1}/auth/login",
        json={"email": email or f"nobody-{uuid.uuid4().hex}@example.org", "password": "wrong"},
        headers={"X-Idempotency-Key": key},
    )


def _used(client: TestClient, key: str) -> None:
    """Use ``key`` (as this anonymous caller) for a request that is answered and stored."""
    email = f"nobody-{uuid.uuid4().hex}@example.org"
    assert _login(client, key, email).status_code == 401
    assert _login(client, key, email).headers.get("idempotent-replayed") == "true"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "unauthorized"),
        ("Bearer not-a-token", "invalid_token"),
        ("Basic YTpi", "unauthorized"),
    ],
)
def test_a_missing_or_bad_token_is_401_not_a_key_reuse(
    client: TestClient, authorization: str | None, code: str
) -> None:
    key = _key()
    _used(client, key)
    headers = {"X-Idempotency-Key": key}
    if authorization:
        headers["Authorization"] = authorization
    assert_error(client.post(f"{V1}/events", json=EVENT, headers=headers), 401, code)


def test_an_unauthenticated_request_claims_nothing(client: TestClient) -> None:
    """Refused before the key was looked at: the same key then works for the real request."""
    key = _key()
    first = client.post(f"{V1}/events", json=EVENT, headers={"X-Idempotency-Key": key})
    assert_error(first, 401, "unauthorized")
    assert_error(_login(client, key), 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PATCH", f"{V1}/events", 405),
        ("DELETE", f"{V1}/auth/login", 405),
        ("POST", f"{V1}/nowhere", 404),
        ("PUT", "/nowhere", 404),
    ],
)
def test_a_wrong_method_or_path_wins_over_a_key_reuse(
    client: TestClient, method: str, path: str, status: int
) -> None:
    key = _key()
    _used(client, key)
    answer = client.request(method, path, json={"a": 1}, headers={"X-Idempotency-Key": key})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] in ("method_not_allowed", "not_found")


def test_a_wrong_path_wins_over_a_malformed_key(client: TestClient) -> None:
    answer = client.post(f"{V1}/nowhere", headers={"X-Idempotency-Key": ""})
    assert_error(answer, 404, "not_found")


def test_a_route_that_requires_a_key_answers_401_without_a_token(client: TestClient) -> None:
    answer = client.post(
        f"{V1}/payments",
        json={"registration_id": str(uuid.uuid4())},
        headers={"X-Idempotency-Key": _key()},
    )
    assert_error(answer, 401, "unauthorized")


def test_signed_in_keyed_writes_are_still_guarded(client: TestClient, api) -> None:
    user = api.register("keyed")
    key = _key()
    headers = {**user["headers"], "X-Idempotency-Key": key}
    first = client.post(f"{V1}/organization-requests", json={"name": "Keyed"}, headers=headers)
    again = client.post(f"{V1}/organization-requests", json={"name": "Keyed"}, headers=headers)
    other = client.post(f"{V1}/organization-requests", json={"name": "Other"}, headers=headers)
    assert first.status_code in (201, 422), first.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content
    assert_error(other, 422, "idempotency_key_reused")
