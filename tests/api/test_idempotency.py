"""X-Idempotency-Key: replays, conflicts, scoping and failure modes, against the real Redis."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.app import create_app
from api.errors import ApiError
from api.middleware.idempotency import IdempotencyKey, install_idempotency
from core.settings import Settings

TTL_S = 120


class Item(BaseModel):
    tag: str
    note: str = ""


def _add_routes(app: FastAPI) -> None:
    calls: Counter[str] = Counter()
    gates: dict[str, tuple[threading.Event, threading.Event]] = {}
    app.state.calls, app.state.gates = calls, gates

    @app.post("/t/items", status_code=201)
    def create_item(item: Item) -> JSONResponse:
        calls[item.tag] += 1
        created = str(uuid.uuid4())
        return JSONResponse(
            {"id": created, "tag": item.tag, "run": calls[item.tag]},
            status_code=201,
            headers={"Location": f"/t/items/{created}", "X-Per-Exchange": created},
        )

    @app.post("/t/reject")
    def reject(item: Item) -> None:
        calls[item.tag] += 1
        raise ApiError(409, "conflict", f"taken ({calls[item.tag]})")

    @app.post("/t/tokens")
    def issue_token(item: Item) -> JSONResponse:
        calls[item.tag] += 1
        return JSONResponse({"token": str(uuid.uuid4())}, headers={"Cache-Control": "no-store"})

    @app.post("/t/flaky", status_code=201)
    def flaky(item: Item) -> dict[str, int]:
        calls[item.tag] += 1
        if calls[item.tag] == 1:
            raise ApiError(503, "unavailable", "try again")
        if calls[item.tag] == 2:
            raise RuntimeError("boom")
        return {"run": calls[item.tag]}

    @app.post("/t/slow", status_code=201)
    def slow(item: Item) -> dict[str, str]:
        started, release = gates[item.tag]
        calls[item.tag] += 1
        started.set()
        release.wait(10)
        return {"tag": item.tag}

    @app.post("/t/upload", status_code=201)
    async def upload(request: Request) -> dict[str, object]:
        body = await request.body()
        calls["upload"] += 1
        return {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}

    @app.post("/t/payments", status_code=201)
    def pay(item: Item, key: IdempotencyKey) -> dict[str, str]:
        calls[item.tag] += 1
        return {"key": key}

    @app.get("/t/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}


def _app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    _add_routes(app)
    install_idempotency(app, settings)
    install_idempotency(app, settings)  # a second call changes nothing
    return app


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return _app(
        settings.model_copy(
            # Bodies of a few MiB are fingerprinted here: above the API's 1 MiB default limit.
            update={
                "idempotency_ttl_s": TTL_S,
                "rate_limit_enabled": False,
                "api_max_body_bytes": 8 * 1024 * 1024,
            }
        )
    )


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _key() -> dict[str, str]:
    return {"X-Idempotency-Key": f"test-{uuid.uuid4()}"}


def _tag() -> str:
    return uuid.uuid4().hex


def _bearer(app: FastAPI) -> dict[str, str]:
    token, _ = app.state.aq.tokens.issue(uuid.uuid4())
    return {"Authorization": f"Bearer {token}"}


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_a_retry_replays_the_first_response_and_the_handler_runs_once(
    app: FastAPI, client: TestClient
) -> None:
    key, tag = _key(), _tag()
    first = client.post("/t/items", json={"tag": tag}, headers=key)
    again = client.post("/t/items", json={"tag": tag}, headers=key)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert "x-per-exchange" not in again.headers  # only a known subset of headers is kept
    assert app.state.calls[tag] == 1


def test_requests_without_a_key_are_untouched(app: FastAPI, client: TestClient) -> None:
    tag = _tag()
    first = client.post("/t/items", json={"tag": tag})
    second = client.post("/t/items", json={"tag": tag})
    assert (first.json()["run"], second.json()["run"]) == (1, 2)
    assert app.state.calls[tag] == 2


def test_the_same_key_with_another_body_or_path_is_422(app: FastAPI, client: TestClient) -> None:
    key, tag = _key(), _tag()
    assert client.post("/t/items", json={"tag": tag}, headers=key).status_code == 201

    other_body = client.post("/t/items", json={"tag": tag, "note": "x"}, headers=key)
    other_path = client.post("/t/reject", json={"tag": tag}, headers=key)

    for response in (other_body, other_path):
        assert response.status_code == 422
        assert _error(response)["code"] == "idempotency_key_reused"
    assert app.state.calls[tag] == 1


def test_a_duplicate_while_the_first_is_running_is_409(app: FastAPI, client: TestClient) -> None:
    key, tag = _key(), _tag()
    started, release = threading.Event(), threading.Event()
    app.state.gates[tag] = (started, release)
    results = {}

    def first() -> None:
        results["first"] = client.post("/t/slow", json={"tag": tag}, headers=key)

    worker = threading.Thread(target=first)
    worker.start()
    try:
        assert started.wait(10), "the first request never reached the handler"
        duplicate = client.post("/t/slow", json={"tag": tag}, headers=key)
        redis_key = _redis_key("ip:testclient", key)
        assert 0 < app.state.aq.redis.ttl(redis_key) <= 60  # the claim is a short lock
    finally:
        release.set()
        worker.join(10)

    assert duplicate.status_code == 409
    assert _error(duplicate)["code"] == "idempotency_in_progress"
    assert duplicate.headers["retry-after"] == "1"
    assert results["first"].status_code == 201
    replay = client.post("/t/slow", json={"tag": tag}, headers=key)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert app.state.calls[tag] == 1


def test_keys_are_scoped_per_user(app: FastAPI, client: TestClient) -> None:
    key, tag = _key(), _tag()
    alice, bob = _bearer(app), _bearer(app)

    as_alice = client.post("/t/items", json={"tag": tag}, headers={**key, **alice})
    as_bob = client.post("/t/items", json={"tag": tag}, headers={**key, **bob})
    anonymous = client.post("/t/items", json={"tag": tag}, headers=key)
    alice_again = client.post("/t/items", json={"tag": tag}, headers={**key, **alice})

    assert [r.json()["run"] for r in (as_alice, as_bob, anonymous)] == [1, 2, 3]
    assert alice_again.content == as_alice.content
    assert alice_again.headers["idempotent-replayed"] == "true"
    assert app.state.calls[tag] == 3


def test_5xx_is_not_stored_so_a_retry_runs_again(app: FastAPI, client: TestClient) -> None:
    key, tag = _key(), _tag()
    statuses = [client.post("/t/flaky", json={"tag": tag}, headers=key) for _ in range(4)]

    assert [r.status_code for r in statuses] == [503, 500, 201, 201]
    assert _error(statuses[1])["code"] == "internal_error"
    assert "idempotent-replayed" not in statuses[2].headers
    assert statuses[3].headers["idempotent-replayed"] == "true"
    assert statuses[3].json() == {"run": 3}
    assert app.state.calls[tag] == 3


def test_4xx_is_stored_and_replayed(app: FastAPI, client: TestClient) -> None:
    key, tag = _key(), _tag()
    first = client.post("/t/reject", json={"tag": tag}, headers=key)
    again = client.post("/t/reject", json={"tag": tag}, headers=key)

    assert first.status_code == again.status_code == 409
    assert _error(again) == {"code": "conflict", "message": "taken (1)", "details": None}
    assert again.headers["idempotent-replayed"] == "true"
    assert app.state.calls[tag] == 1


def test_no_store_responses_are_not_kept(app: FastAPI, client: TestClient) -> None:
    key, tag = _key(), _tag()
    first = client.post("/t/tokens", json={"tag": tag}, headers=key)
    again = client.post("/t/tokens", json={"tag": tag}, headers=key)

    assert first.status_code == again.status_code == 200
    assert first.json() != again.json()
    assert "idempotent-replayed" not in again.headers
    assert app.state.calls[tag] == 2
    assert not app.state.aq.redis.exists(_redis_key("ip:testclient", key))


def test_a_stored_response_lives_for_the_configured_ttl(app: FastAPI, client: TestClient) -> None:
    key = _key()
    assert client.post("/t/items", json={"tag": _tag()}, headers=key).status_code == 201
    ttl = app.state.aq.redis.ttl(_redis_key("ip:testclient", key))
    assert TTL_S - 10 < ttl <= TTL_S


@pytest.mark.parametrize(
    "value", ["", "x" * 256, "bad\x7fkey"], ids=["empty", "too-long", "unprintable"]
)
def test_an_invalid_key_is_400(app: FastAPI, client: TestClient, value: str) -> None:
    tag = _tag()
    response = client.post("/t/items", json={"tag": tag}, headers={"X-Idempotency-Key": value})
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_idempotency_key"
    assert app.state.calls[tag] == 0


def test_two_key_headers_are_400(client: TestClient) -> None:
    response = client.post(
        "/t/items",
        json={"tag": _tag()},
        headers=[("X-Idempotency-Key", "a-key"), ("X-Idempotency-Key", "b-key")],
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_idempotency_key"


def test_a_key_on_a_read_is_ignored(client: TestClient) -> None:
    response = client.get("/t/ping", headers={"X-Idempotency-Key": ""})
    assert response.status_code == 200


def test_large_bodies_are_fingerprinted_whole_and_reach_the_app_intact(
    app: FastAPI, client: TestClient
) -> None:
    key = _key()
    body = os.urandom(3 * 1024 * 1024 + 17)  # past the in-memory spool: streamed to a file
    before = app.state.calls["upload"]

    first = client.post("/t/upload", content=body, headers=key)
    again = client.post("/t/upload", content=body, headers=key)
    changed = client.post("/t/upload", content=body[:-1] + b"\x00", headers=key)

    assert first.status_code == 201
    assert first.json() == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    assert again.headers["idempotent-replayed"] == "true"
    assert changed.status_code == 422
    assert app.state.calls["upload"] == before + 1


def test_routes_can_require_a_key(app: FastAPI, client: TestClient) -> None:
    key, tag = _key(), _tag()
    missing = client.post("/t/payments", json={"tag": tag})
    assert missing.status_code == 400
    assert _error(missing) == {
        "code": "idempotency_key_required",
        "message": "This operation requires an X-Idempotency-Key",
        "details": None,
    }

    paid = client.post("/t/payments", json={"tag": tag}, headers=key)
    again = client.post("/t/payments", json={"tag": tag}, headers=key)
    assert paid.status_code == again.status_code == 201
    assert paid.json() == {"key": key["X-Idempotency-Key"]}
    assert again.headers["idempotent-replayed"] == "true"
    assert app.state.calls[tag] == 1


def test_a_required_key_without_the_middleware_is_a_server_error(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"rate_limit_enabled": False}))
    _add_routes(app)
    # Take the middleware out (the stack is built on the first request) to simulate a mis-wiring.
    app.user_middleware = [
        m for m in app.user_middleware if m.cls.__name__ != "IdempotencyMiddleware"
    ]
    with TestClient(app, raise_server_exceptions=False) as unguarded:
        response = unguarded.post("/t/payments", json={"tag": _tag()}, headers=_key())
    assert response.status_code == 500
    assert app.state.calls == Counter()


def test_without_redis_a_keyed_write_is_refused_and_others_pass(settings: Settings) -> None:
    from aqstream.stack.servers import free_port

    broken = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "rate_limit_enabled": False}
    )
    app = _app(broken)
    with TestClient(app) as offline:
        keyed = offline.post("/t/items", json={"tag": _tag()}, headers=_key())
        plain = offline.post("/t/items", json={"tag": _tag()})
    assert keyed.status_code == 503
    assert _error(keyed)["code"] == "idempotency_unavailable"
    assert plain.status_code == 201
    assert sum(app.state.calls.values()) == 1


def _redis_key(owner: str, key: dict[str, str]) -> str:
    digest = hashlib.sha256(key["X-Idempotency-Key"].encode()).hexdigest()
    return f"aq:idem:{owner}:{digest}"
