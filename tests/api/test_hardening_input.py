"""Input the API refuses before any of it reaches PostgreSQL or memory: text PostgreSQL cannot
hold in the request target and headers, bodies over their route's limit (declared or streamed),
and webhook bodies nested too deeply to parse."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.media.upload import FORM_OVERHEAD
from aqstream.stack.servers import free_port
from core.settings import Settings
from tests.factories import V1, assert_error, sandbox
from tests.live import served
from tests.payment.stripe_standin import stripe_signature

MiB = 1024 * 1024


# --- text PostgreSQL cannot hold -------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        f"{V1}/events?q=%00",
        f"{V1}/events?q=a%00b&limit=5",
        f"{V1}/events?%00=1",
        f"{V1}/events?cursor=%00",
        f"{V1}/events/%00",
        f"{V1}/sandbox/checkout/%00",
        "/sandbox/checkout/a%00b",
        f"{V1}/events?q=%ED%A0%80",  # an encoded surrogate: not UTF-8 text
        f"{V1}/events?q=%FF",
        "/sandbox/checkout/%C3",
    ],
)
def test_a_request_target_with_text_postgresql_cannot_hold_is_a_400(
    client: TestClient, target: str
) -> None:
    answer = client.get(target)
    error = assert_error(answer, 400, "invalid_characters")
    assert error["details"]["in"] in ("query", "path")


def test_a_nul_in_a_header_is_a_400(client: TestClient) -> None:
    answer = client.get(f"{V1}/events", headers={"X-Forwarded-Host": "a\x00b"})
    error = assert_error(answer, 400, "invalid_characters")
    assert error["details"] == {"in": "header", "name": "x-forwarded-host"}


def test_a_nul_in_the_bearer_token_is_a_400_not_a_500(client: TestClient) -> None:
    answer = client.get(f"{V1}/users/me", headers={"Authorization": "Bearer a\x00b"})
    assert_error(answer, 400, "invalid_characters")


def test_ordinary_text_passes(client: TestClient) -> None:
    answer = client.get(f"{V1}/events", params={"q": "Grüße, 🎉 & more", "limit": 5})
    assert answer.status_code == 200, answer.text


# --- body sizes ---------------------------------------------------------------------------------


def test_a_json_body_over_the_limit_is_a_413(client: TestClient, settings: Settings) -> None:
    assert settings.api_max_body_bytes == MiB
    body = b'{"email": "a@example.org", "password": "' + b"x" * MiB + b'"}'
    answer = client.post(
        f"{V1}/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    error = assert_error(answer, 413, "payload_too_large")
    assert error["details"] == {"limit_bytes": MiB}


def test_a_body_at_the_limit_is_read(client: TestClient) -> None:
    body = b'{"email": "a@example.org", "password": "' + b"x" * (MiB - 100) + b'"}'
    answer = client.post(
        f"{V1}/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text  # read and validated: the password is too long


def test_a_keyed_body_over_the_limit_is_refused_before_idempotency(client: TestClient) -> None:
    answer = client.post(
        f"{V1}/auth/login",
        content=b"x" * (MiB + 1),
        headers={"Content-Type": "application/json", "X-Idempotency-Key": uuid.uuid4().hex},
    )
    assert_error(answer, 413, "payload_too_large")


def test_uploads_have_their_own_limit(client: TestClient, settings: Settings) -> None:
    """2 MiB is over the JSON limit but within the upload's: the upload route answers (401)."""
    answer = client.post(
        f"{V1}/media/upload",
        content=b"x" * (2 * MiB),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_error(answer, 401, "unauthorized")
    budget = max(settings.media_image_max_bytes, settings.media_document_max_bytes) + FORM_OVERHEAD
    over = client.post(
        f"{V1}/media/upload",
        content=b"x" * (budget + 1),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    error = assert_error(over, 413, "payload_too_large")
    assert error["details"] == {"limit_bytes": budget}


@pytest.fixture(scope="module")
def live_port(settings: Settings, client: TestClient) -> Iterator[int]:
    # The session's app started first: Prometheus counts the requests of the first app started
    # in a process (the metrics of any later one are duplicates, and dropped).
    from api.app import create_app

    port = free_port()
    with served(create_app(settings), port=port):
        yield port


def _read_response(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """Status line, headers and body (by Content-Length) of one response."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return status.encode(), headers, body


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    live_port: int,
) -> None:
    head = (
        f"POST {V1}/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {120 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live_port)) as sock:
        sock.sendall(head)  # and not one byte of the 120 MiB announced
        status, headers, body = _read_response(sock)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_a_chunked_body_is_counted_as_it_streams_in(live_port: int) -> None:
    """No Content-Length: the refusal comes once the limit is passed, not at the end (the rest of
    the 120 MiB is never sent)."""
    head = (
        f"POST {V1}/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"x" * (64 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", live_port)) as sock:
        sock.sendall(head)
        for _ in range(MiB // len(chunk) + 1):  # just over 1 MiB
            sock.sendall(frame)
        status, _headers, body = _read_response(sock)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["error"] == {
        "code": "payload_too_large",
        "message": f"The request body exceeds the limit of {MiB} bytes",
        "details": {"limit_bytes": MiB},
    }


def test_a_chunked_body_within_the_limit_is_read(live_port: int) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"email": "nobody@example.org", '
        yield b'"password": "wrong password"}'

    with httpx.Client(base_url=f"http://127.0.0.1:{live_port}") as http:
        answer = http.post(
            f"{V1}/auth/login", content=body(), headers={"Content-Type": "application/json"}
        )
    assert answer.request.headers.get("transfer-encoding") == "chunked"
    assert answer.status_code == 401, answer.text


# --- webhooks -----------------------------------------------------------------------------------


STRIPE_SECRET = "whsec_hardening"


@pytest.fixture(scope="module")
def stripe_client(settings: Settings, client: TestClient) -> Iterator[TestClient]:
    """The API with Stripe enabled: only its webhooks are used (nothing calls Stripe)."""
    from api.app import create_app

    app = create_app(
        settings.model_copy(
            update={
                "payment_providers": "stripe,sandbox",
                "stripe_secret_key": SecretStr("sk_test_hardening"),
                "stripe_webhook_secret": SecretStr(STRIPE_SECRET),
                "stripe_api_base": "http://127.0.0.1:9",
            }
        )
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("provider", ["sandbox", "stripe"])
def test_a_signed_webhook_nested_too_deeply_is_a_400_logged_once(
    stripe_client: TestClient, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = b'{"id": "evt_deep", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    if provider == "stripe":
        headers = {"Stripe-Signature": stripe_signature(STRIPE_SECRET, body)}
    else:
        headers = sandbox(stripe_client).sign(body)
    with caplog.at_level(logging.INFO):
        answer = stripe_client.post(f"{V1}/webhooks/{provider}", content=body, headers=headers)
    assert_error(answer, 400, "invalid_webhook")
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(logged) == 1, [r.msg for r in logged]
    assert logged[0].msg["event"] == "webhook_malformed" and not logged[0].exc_info
    assert logged[0].msg["provider"] == provider


def test_an_unsigned_deep_webhook_fails_its_signature_first(client: TestClient) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    answer = client.post(f"{V1}/webhooks/sandbox", content=body)
    assert_error(answer, 400, "invalid_signature")
