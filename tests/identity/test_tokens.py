"""Access tokens (JWT: attacks, key rotation, JWKS) and refresh tokens (rotation, reuse, logout)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from api.app import create_app
from core.resources import make_redis
from core.settings import Settings
from domain.errors import Unauthenticated
from domain.identity.tokens import SigningKey, TokenService

ME = "/api/v1/users/me"
HS_SECRET = "k1-" + "s" * 40


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64json(obj: dict) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _unb64json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _hs256(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{_b64json(header)}.{_b64json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def _assert_rejected(client: TestClient, token: str, code: str = "invalid_token") -> None:
    response = client.get(ME, headers=_bearer(token))
    assert response.status_code == 401, response.text
    assert _error(response)["code"] == code
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="aqstream"'


def _claims(tokens: TokenService, user_id: str, **override) -> dict:
    now = int(time.time())
    return {
        "iss": tokens.issuer,
        "aud": tokens.audience,
        "sub": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_urlsafe(12),
        **override,
    }


def _es256_pem(curve: ec.EllipticCurve | None = None) -> str:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(private_pem: str) -> bytes:
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def user(api) -> dict:
    return api.register("tok")


@pytest.fixture
def tokens(client: TestClient) -> TokenService:
    return client.app.state.aq.tokens


# --- the token service, without I/O --------------------------------------------------------------


def _service(**kw) -> TokenService:
    key = SigningKey.from_config("k1", "HS256", HS_SECRET)
    return TokenService([key], issuer="iss", audience="aud", ttl_s=900, **kw)


def test_issue_then_verify_round_trips() -> None:
    service = _service()
    user_id = uuid.uuid4()
    token, ttl = service.issue(user_id, now=time.time())
    assert ttl == 900
    header = jwt.get_unverified_header(token)
    assert header["kid"] == "k1" and header["alg"] == "HS256"
    claims = service.verify(token)
    assert claims.user_id == user_id
    assert claims.token_id
    raw = jwt.decode(token, options={"verify_signature": False})
    assert set(raw) == {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "ver"}
    assert raw["ver"] == 0 and claims.version == 0
    assert raw["exp"] - raw["iat"] == 900
    assert claims.expires_at == raw["exp"]
    # Every token has its own id.
    assert service.verify(service.issue(user_id)[0]).token_id != claims.token_id


def test_expiry_honours_the_leeway() -> None:
    service = _service(leeway_s=10)
    user_id = uuid.uuid4()
    just_expired, _ = service.issue(user_id, now=time.time() - 900 - 5)
    assert service.verify(just_expired).user_id == user_id
    long_expired, _ = service.issue(user_id, now=time.time() - 900 - 30)
    with pytest.raises(Unauthenticated) as exc:
        service.verify(long_expired)
    assert exc.value.code == "token_expired"


@pytest.mark.parametrize(
    "override",
    [
        {"jti": None},
        {"sub": None},
        {"iat": None},
        {"sub": "not-a-uuid"},
        {"nbf": int(time.time()) + 3600},
    ],
    ids=["no-jti", "no-sub", "no-iat", "sub-not-uuid", "not-yet-valid"],
)
def test_verify_requires_the_claims(override: dict) -> None:
    service = _service()
    claims = {k: v for k, v in {**_claims(service, str(uuid.uuid4())), **override}.items() if v}
    token = _hs256({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims, HS_SECRET.encode())
    with pytest.raises(Unauthenticated) as exc:
        service.verify(token)
    assert exc.value.code == "invalid_token"


def test_key_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey.from_config("short", "HS256", "too-short")
    with pytest.raises(ValueError, match="P-256"):
        SigningKey.from_config("p384", "ES256", _es256_pem(ec.SECP384R1()))
    for alg in ("none", "RS256", "HS512"):
        with pytest.raises(ValueError, match="unsupported algorithm"):
            SigningKey.from_config("x", alg, HS_SECRET)
    with pytest.raises(ValueError, match="empty"):
        TokenService([], issuer="i", audience="a", ttl_s=1)
    key = SigningKey.from_config("dup", "HS256", HS_SECRET)
    with pytest.raises(ValueError, match="duplicate"):
        TokenService([key, key], issuer="i", audience="a", ttl_s=1)


def test_hs256_secrets_are_never_published() -> None:
    es = SigningKey.from_config("k2", "ES256", _es256_pem())
    hs = SigningKey.from_config("k1", "HS256", HS_SECRET)
    assert hs.jwk() is None
    service = TokenService([es, hs], issuer="i", audience="a", ttl_s=60)
    (jwk,) = service.jwks()["keys"]
    assert jwk["kid"] == "k2" and jwk["kty"] == "EC" and "d" not in jwk


# --- attacks on /users/me -------------------------------------------------------------------------


def test_the_genuine_token_is_accepted(client: TestClient, user: dict) -> None:
    # The control for the attacks below: the same user, a token the app issued.
    response = client.get(ME, headers=user["headers"])
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["user"]["id"]


def test_alg_none_is_rejected(client: TestClient, tokens: TokenService, user: dict) -> None:
    claims = _claims(tokens, user["user"]["id"])
    kid = tokens.signing_key.kid
    for header in (
        {"alg": "none", "typ": "JWT", "kid": kid},
        {"alg": "none", "typ": "JWT"},
        {"alg": "None", "kid": kid},
    ):
        _assert_rejected(client, f"{_b64json(header)}.{_b64json(claims)}.")


def test_hs256_with_a_wrong_secret_is_rejected(
    client: TestClient, tokens: TokenService, user: dict
) -> None:
    header = {"alg": "HS256", "typ": "JWT", "kid": tokens.signing_key.kid}
    forged = _hs256(header, _claims(tokens, user["user"]["id"]), b"x" * 48)
    _assert_rejected(client, forged)


def test_expired_token_is_rejected(client: TestClient, tokens: TokenService, user: dict) -> None:
    expired, _ = tokens.issue(uuid.UUID(user["user"]["id"]), now=time.time() - tokens.ttl_s - 60)
    _assert_rejected(client, expired, "token_expired")


def test_wrong_issuer_or_audience_is_rejected(
    client: TestClient, tokens: TokenService, user: dict
) -> None:
    user_id = uuid.UUID(user["user"]["id"])
    ring = list(tokens.keys.values())
    other_issuer = TokenService(ring, issuer="evil", audience=tokens.audience, ttl_s=600)
    other_audience = TokenService(ring, issuer=tokens.issuer, audience="other-api", ttl_s=600)
    same = TokenService(ring, issuer=tokens.issuer, audience=tokens.audience, ttl_s=600)
    assert client.get(ME, headers=_bearer(same.issue(user_id)[0])).status_code == 200
    _assert_rejected(client, other_issuer.issue(user_id)[0])
    _assert_rejected(client, other_audience.issue(user_id)[0])


def test_tampered_payload_is_rejected(client: TestClient, api, user: dict) -> None:
    victim = api.register("victim")
    header, _, signature = user["access_token"].split(".")
    payload = _unb64json(user["access_token"].split(".")[1])
    payload["sub"] = victim["user"]["id"]
    _assert_rejected(client, f"{header}.{_b64json(payload)}.{signature}")


def test_unknown_kid_is_rejected(client: TestClient, tokens: TokenService, user: dict) -> None:
    secret = tokens.signing_key.signing
    claims = _claims(tokens, user["user"]["id"])
    # Right secret, right claims: only the key id is wrong (or missing).
    _assert_rejected(client, _hs256({"alg": "HS256", "kid": "nope"}, claims, secret))
    _assert_rejected(client, _hs256({"alg": "HS256"}, claims, secret))
    for kid in (["x"], 7):
        _assert_rejected(client, _hs256({"alg": "HS256", "kid": kid}, claims, secret))
    control = _hs256({"alg": "HS256", "kid": tokens.signing_key.kid}, claims, secret)
    assert client.get(ME, headers=_bearer(control)).status_code == 200


# --- an ES256 ring: algorithm confusion, rotation, JWKS -------------------------------------------


@pytest.fixture(scope="module")
def es_pem() -> str:
    return _es256_pem()


def _ring(settings: Settings, *keys: dict) -> Settings:
    return settings.model_copy(update={"jwt_keys": json.dumps(list(keys))})


@pytest.fixture(scope="module")
def rotated(settings: Settings, es_pem: str) -> Iterator[TestClient]:
    """The app after a rotation: k2 (ES256) signs, k1 (HS256) still verifies."""
    ring = _ring(
        settings,
        {"kid": "k2", "alg": "ES256", "key": es_pem},
        {"kid": "k1", "alg": "HS256", "key": HS_SECRET},
    )
    with TestClient(create_app(ring)) as c:
        yield c


def test_hs256_token_keyed_with_the_es256_public_key_is_rejected(
    rotated: TestClient, es_pem: str, user: dict
) -> None:
    tokens: TokenService = rotated.app.state.aq.tokens
    public_pem = _public_pem(es_pem)
    claims = _claims(tokens, user["user"]["id"])
    for header in ({"alg": "HS256", "kid": "k2"}, {"alg": "ES256", "kid": "k2"}):
        _assert_rejected(rotated, _hs256(header, claims, public_pem))
    genuine, _ = tokens.issue(uuid.UUID(user["user"]["id"]))
    assert rotated.get(ME, headers=_bearer(genuine)).status_code == 200


def test_es256_token_with_a_foreign_key_is_rejected(rotated: TestClient, user: dict) -> None:
    tokens: TokenService = rotated.app.state.aq.tokens
    foreign = jwt.encode(
        _claims(tokens, user["user"]["id"]),
        _es256_pem(),
        algorithm="ES256",
        headers={"kid": "k2"},
    )
    _assert_rejected(rotated, foreign)


def test_key_rotation_keeps_old_tokens_valid(
    settings: Settings, rotated: TestClient, api, client: TestClient
) -> None:
    user = api.register("rotation")
    user_id = uuid.UUID(user["user"]["id"])
    before = TokenService.from_settings(
        _ring(settings, {"kid": "k1", "alg": "HS256", "key": HS_SECRET})
    )
    old_token, _ = before.issue(user_id)
    assert jwt.get_unverified_header(old_token)["kid"] == "k1"

    response = rotated.get(ME, headers=_bearer(old_token))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(user_id)

    login = rotated.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": "correct horse battery"}
    )
    assert login.status_code == 200, login.text
    new_token = login.json()["access_token"]
    header = jwt.get_unverified_header(new_token)
    assert header["kid"] == "k2" and header["alg"] == "ES256"
    assert rotated.get(ME, headers=_bearer(new_token)).status_code == 200

    # A key that left the ring verifies nothing: the suite's default key is not in this ring.
    _assert_rejected(rotated, user["access_token"])


def test_jwks_lists_only_the_es256_public_key(rotated: TestClient, es_pem: str) -> None:
    response = rotated.get("/api/v1/auth/keys")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["keys"]
    (jwk,) = body["keys"]
    assert jwk["kty"] == "EC"
    assert jwk["crv"] == "P-256"
    assert jwk["kid"] == "k2"
    assert jwk["alg"] == "ES256"
    assert "d" not in jwk
    assert HS_SECRET not in response.text
    assert "k1" not in {k["kid"] for k in body["keys"]}

    # The published key verifies the tokens the app signs.
    public = jwt.PyJWK(jwk).key
    token, _ = rotated.app.state.aq.tokens.issue(uuid.uuid4())
    tokens: TokenService = rotated.app.state.aq.tokens
    jwt.decode(token, public, algorithms=["ES256"], audience=tokens.audience)
    expected = _public_pem(es_pem)
    assert (
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == expected
    )


def test_jwks_is_empty_for_an_hs256_only_ring(client: TestClient) -> None:
    response = client.get("/api/v1/auth/keys")
    assert response.status_code == 200
    assert response.json() == {"keys": []}


# --- refresh tokens -------------------------------------------------------------------------------


def _refresh(client: TestClient, token: str):
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def test_refresh_rotates_and_detects_reuse(client: TestClient, user: dict) -> None:
    first = user["refresh_token"]
    rotated = _refresh(client, first)
    assert rotated.status_code == 200, rotated.text
    pair = rotated.json()
    assert pair["user"]["id"] == user["user"]["id"]
    assert pair["refresh_token"] not in (first, "")
    assert pair["access_token"] != user["access_token"]
    assert client.get(ME, headers=_bearer(pair["access_token"])).status_code == 200

    reused = _refresh(client, first)
    assert reused.status_code == 401, reused.text
    assert _error(reused)["code"] == "refresh_token_reused"
    assert reused.headers["WWW-Authenticate"].startswith("Bearer")

    # The reuse revoked the whole family: the legitimate successor is dead too.
    successor = _refresh(client, pair["refresh_token"])
    assert successor.status_code == 401, successor.text
    assert _error(successor)["code"] == "invalid_refresh_token"


def test_refresh_chain_keeps_working_without_reuse(client: TestClient, user: dict) -> None:
    token = user["refresh_token"]
    for _ in range(3):
        response = _refresh(client, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]


def test_unknown_refresh_token_is_401(client: TestClient) -> None:
    response = _refresh(client, secrets.token_urlsafe(32))
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_refresh_token"


def test_logout_revokes_the_family_only(client: TestClient, api, user: dict) -> None:
    rotated = _refresh(client, user["refresh_token"]).json()
    other_login = client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": "correct horse battery"}
    ).json()

    response = client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": rotated["refresh_token"]},
        headers=_bearer(rotated["access_token"]),
    )
    assert response.status_code == 204, response.text
    assert response.content == b""

    after = _refresh(client, rotated["refresh_token"])
    assert after.status_code == 401
    assert _error(after)["code"] == "invalid_refresh_token"
    # Another sign-in of the same user is another family and survives.
    assert _refresh(client, other_login["refresh_token"]).status_code == 200


def test_logout_needs_an_access_token(client: TestClient, user: dict) -> None:
    response = client.post("/api/v1/auth/logout", json={"refresh_token": user["refresh_token"]})
    assert response.status_code == 401
    assert _error(response)["code"] == "unauthorized"
    assert _refresh(client, user["refresh_token"]).status_code == 200


def test_refresh_tokens_are_stored_only_hashed(settings: Settings, client: TestClient, api) -> None:
    user = api.register("hashed")
    raw = user["refresh_token"]
    successor = _refresh(client, raw).json()["refresh_token"]
    redis = make_redis(settings)
    try:
        keys = list(redis.scan_iter(match="aq:rt:*", count=1000))
        assert keys
        assert f"aq:rt:{hashlib.sha256(raw.encode()).hexdigest()}".encode() in keys
        for key in keys:
            for secret in (raw, successor):
                assert secret.encode() not in key
            kind = redis.type(key)
            if kind == b"string":
                values = [redis.get(key)]
            elif kind == b"set":
                values = list(redis.smembers(key))
            else:  # expired between SCAN and TYPE, or a type this store never writes
                assert kind == b"none", (key, kind)
                values = []
            for value in values:
                for secret in (raw, successor):
                    assert secret.encode() not in (value or b""), key
    finally:
        redis.close()
