"""Domain errors are answered by one handler from one table (api/errors.py ``DOMAIN_STATUS``):
status, code and headers per error, with no router in between. No I/O."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from domain.errors import DomainError, InvalidState, NotFound, Unauthenticated, ValidationFailed
from domain.exports.errors import TooManyExports, TooManyRowsForXlsx
from domain.identity.throttle import AccountThrottled
from domain.media.errors import (
    FileTooLarge,
    ImageTooLarge,
    InvalidImage,
    StorageUnavailable,
    UnsupportedFileType,
)
from domain.pagination import InvalidCursor
from domain.payment.errors import (
    ProviderRejected,
    ProviderUnavailable,
    UnknownPayment,
    UnknownProvider,
    WebhookRejected,
)

CASES: list[tuple[DomainError, int, dict[str, str]]] = [
    (NotFound("gone"), 404, {}),
    (UnknownProvider("no such provider"), 404, {}),
    (InvalidState("no", details={"status": "x"}), 409, {}),
    (UnknownPayment("later"), 409, {}),
    (Unauthenticated("who?"), 401, {"www-authenticate": 'Bearer realm="aqstream"'}),
    (ValidationFailed("bad"), 422, {}),
    (TooManyRowsForXlsx("too many rows"), 422, {}),
    (InvalidCursor(), 422, {}),
    (FileTooLarge("big"), 413, {}),
    (ImageTooLarge("huge"), 413, {}),
    (UnsupportedFileType("what"), 415, {}),
    (InvalidImage("broken"), 415, {}),
    (AccountThrottled(7), 429, {"retry-after": "7"}),
    (TooManyExports("two already"), 429, {"retry-after": "10"}),
    (ProviderRejected("refused"), 502, {}),
    (ProviderUnavailable("down"), 503, {"retry-after": "5"}),
    (StorageUnavailable("down"), 503, {"retry-after": "1"}),
    (WebhookRejected("bad signature"), 400, {}),
    (DomainError("unlisted"), 400, {}),
]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{index}")
    def raise_(index: int) -> None:
        raise CASES[index][0]

    return TestClient(app)


@pytest.mark.parametrize(
    ("index", "status", "headers"),
    [(i, status, headers) for i, (_, status, headers) in enumerate(CASES)],
    ids=[type(exc).__name__ for exc, _, _ in CASES],
)
def test_a_domain_error_is_answered_from_the_table(
    client: TestClient, index: int, status: int, headers: dict[str, str]
) -> None:
    exc = CASES[index][0]
    response = client.get(f"/raise/{index}")
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": exc.code, "message": exc.message, "details": exc.details}
    }
    for name in ("retry-after", "www-authenticate"):
        assert response.headers.get(name) == headers.get(name)
