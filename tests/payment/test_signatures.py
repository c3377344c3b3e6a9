"""Webhook signatures (the timestamped HMAC scheme both providers use) and the sandbox's: valid,
tampered body, stale timestamp, wrong secret; a rejected delivery is a 400 that changes nothing."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from domain.payment.models import PaymentStatus
from domain.payment.providers import signing
from domain.payment.providers.base import PaymentFact, SignatureError
from domain.payment.providers.sandbox import SIGNATURE_HEADER, SandboxProvider
from tests.factories import V1, assert_error, outbox_rows, paying, payment_now, sandbox
from tests.payment.conftest import Shop, count_rows

BODY = b'{"id": "evt_1", "type": "payment.succeeded"}'


def test_a_valid_signature_verifies_and_answers_its_timestamp() -> None:
    now = int(time.time())
    header = signing.header("s3cret", BODY, now)
    assert signing.verify(header, BODY, ["s3cret"], tolerance_s=300) == now


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered body", "mismatch"),
        ("wrong secret", "mismatch"),
        ("stale timestamp", "stale"),
        ("timestamp from the future", "stale"),
        ("no header", "missing"),
        ("no timestamp", "malformed"),
        ("timestamp not a number", "malformed"),
        ("no v1 signature", "malformed"),
    ],
)
def test_bad_signatures_are_refused_with_a_reason(case: str, reason: str) -> None:
    now = int(time.time())
    good = signing.header("s3cret", BODY, now)
    header, body = {
        "tampered body": (good, BODY + b" "),
        "wrong secret": (signing.header("other", BODY, now), BODY),
        "stale timestamp": (signing.header("s3cret", BODY, now - 301), BODY),
        "timestamp from the future": (signing.header("s3cret", BODY, now + 301), BODY),
        "no header": (None, BODY),
        "no timestamp": (good.split(",", 1)[1], BODY),
        "timestamp not a number": (good.replace(f"t={now}", "t=yesterday"), BODY),
        "no v1 signature": (f"t={now},v0=abc", BODY),
    }[case]
    with pytest.raises(SignatureError) as raised:
        signing.verify(header, body, ["s3cret"], tolerance_s=300)
    assert raised.value.reason == reason


def test_any_v1_may_match_any_current_secret() -> None:
    """While a secret rotates the sender signs with both, and the receiver accepts both."""
    now = int(time.time())
    both = signing.header(["old", "new"], BODY, now)
    assert both.count("v1=") == 2
    assert signing.verify(both, BODY, ["new"], tolerance_s=300) == now
    assert signing.verify(signing.header("old", BODY, now), BODY, ["new", "old"], tolerance_s=60)
    assert signing.verify(f"{both},v0=legacy,x=ignored", BODY, ["old"], tolerance_s=60)


def test_the_tolerance_is_inclusive_at_its_edge() -> None:
    now = 1_700_000_000
    header = signing.header("k", BODY, now - 300)
    assert signing.verify(header, BODY, ["k"], tolerance_s=300, now=now) == now - 300
    with pytest.raises(SignatureError):
        signing.verify(header, BODY, ["k"], tolerance_s=299, now=now)


def test_the_sandbox_reads_what_it_signed() -> None:
    box = SandboxProvider(secret="sbx", tolerance_s=300)
    body = json.dumps(
        {
            "id": "evt_sbx_1",
            "type": "payment.succeeded",
            "data": {"object": {"id": "sbx_pay_1", "amount": 700, "currency": "EUR"}},
        }
    ).encode()
    fact = box.parse_webhook(box.sign(body), body)
    assert fact == PaymentFact(
        event_id="evt_sbx_1",
        payment_reference="sbx_pay_1",
        status=PaymentStatus.COMPLETED,
        amount=700,
        currency="EUR",
    )
    other = SandboxProvider(secret="not-sbx", tolerance_s=300)
    with pytest.raises(SignatureError):
        other.parse_webhook(box.sign(body), body)


# --- over HTTP: a rejected delivery changes nothing ---------------------------------------------


def _cases(box: SandboxProvider, body: bytes) -> dict[str, tuple[bytes, dict[str, str], str]]:
    now = int(time.time())
    good = box.sign(body)
    return {
        "tampered body": (body.replace(b'"amount": 5000', b'"amount": 5'), good, "mismatch"),
        "stale timestamp": (body, box.sign(body, timestamp=now - 3600), "stale"),
        "wrong secret": (
            body,
            {SIGNATURE_HEADER: signing.header("guessed-secret", body, now)},
            "mismatch",
        ),
        "unsigned": (body, {"Content-Type": "application/json"}, "missing"),
    }


def test_rejected_sandbox_webhooks_change_nothing(
    client: TestClient, shop: Shop, owner_engine: Engine
) -> None:
    user, registration = shop.buyer()
    payment = paying(client, registration["id"], user)
    box = sandbox(client)
    deliveries = box.pending()
    succeeded = next(d for d in deliveries if d.type == "payment.succeeded")
    inbox_before = count_rows(owner_engine, "SELECT count(*) FROM inbox")
    for name, (body, headers, reason) in _cases(box, succeeded.body).items():
        response = client.post(f"{V1}/webhooks/sandbox", content=body, headers=headers)
        error = assert_error(response, 400, "invalid_signature")
        assert error["details"] == {"reason": reason}, name
    assert count_rows(owner_engine, "SELECT count(*) FROM inbox") == inbox_before
    assert payment_now(client, payment["id"], user)["status"] == "pending"
    assert outbox_rows(owner_engine, payment["id"], "payment.completed") == []
    # The genuine delivery still applies afterwards.
    response = client.post(
        f"{V1}/webhooks/sandbox", content=succeeded.body, headers=box.sign(succeeded.body)
    )
    assert response.json() == {"received": True, "outcome": "applied"}
    assert payment_now(client, payment["id"], user)["status"] == "completed"


def test_unreadable_and_unknown_webhooks(client: TestClient) -> None:
    box = sandbox(client)
    garbage = b'{"no": "event"}'
    assert_error(
        client.post(f"{V1}/webhooks/sandbox", content=garbage, headers=box.sign(garbage)),
        400,
        "invalid_webhook",
    )
    other = b'{"id": "evt_sbx_x", "type": "account.updated", "data": {"object": {}}}'
    ignored = client.post(f"{V1}/webhooks/sandbox", content=other, headers=box.sign(other))
    assert ignored.json() == {"received": True, "outcome": "ignored"}
    error = assert_error(
        client.post(f"{V1}/webhooks/stripe", content=other, headers=box.sign(other)),
        404,
        "unknown_provider",
    )
    assert error["details"] == {"enabled": ["sandbox"]}
    assert_error(client.post(f"{V1}/webhooks/Bad-Name!", content=other), 422, "validation_error")
