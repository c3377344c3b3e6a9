"""Access tokens: short-lived JWTs (pyjwt). HS256 by default, ES256 with ``kid`` supported.

The key ring's first key signs; every key in it verifies, so keys rotate without logging anyone
out: add the new key first, keep the old one until its last token has expired, then drop it.
The algorithm is taken from the key the ``kid`` names, never from the token, so `alg=none` and
algorithm-confusion tokens are rejected.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.settings import Settings
from domain.errors import Unauthenticated

ALLOWED_ALGORITHMS = ("HS256", "ES256")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    signing: Any  # the HMAC secret (bytes) or the EC private key
    verifying: Any  # the HMAC secret or the EC public key

    @classmethod
    def from_config(cls, kid: str, alg: str, key: str) -> SigningKey:
        if alg == "HS256":
            secret = key.encode()
            if len(secret) < 32:
                raise ValueError(f"HS256 key {kid!r} must be at least 32 bytes")
            return cls(kid, alg, secret, secret)
        if alg == "ES256":
            private = serialization.load_pem_private_key(key.encode(), password=None)
            if (
                not isinstance(private, ec.EllipticCurvePrivateKey)
                or private.curve.name != "secp256r1"
            ):
                raise ValueError(f"ES256 key {kid!r} must be a P-256 private key")
            return cls(kid, alg, private, private.public_key())
        raise ValueError(f"unsupported algorithm {alg!r} (use one of {ALLOWED_ALGORITHMS})")

    def jwk(self) -> dict[str, Any] | None:
        """Public JWK for asymmetric keys; symmetric secrets are never published."""
        if self.alg != "ES256":
            return None
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.verifying))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    token_id: str
    expires_at: int
    version: int = 0  # the user's token_version at issue (``ver``); absent in older tokens: 0


class TokenService:
    def __init__(
        self, keys: list[SigningKey], *, issuer: str, audience: str, ttl_s: int, leeway_s: int = 10
    ) -> None:
        if not keys:
            raise ValueError("the key ring is empty")
        if len({k.kid for k in keys}) != len(keys):
            raise ValueError("duplicate kid in the key ring")
        self.keys = {k.kid: k for k in keys}
        self.signing_key = keys[0]
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        self.leeway_s = leeway_s

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        if settings.jwt_keys:
            ring = [
                SigningKey.from_config(k["kid"], k["alg"], k["key"])
                for k in json.loads(settings.jwt_keys)
            ]
        else:
            ring = [
                SigningKey.from_config("default", "HS256", settings.jwt_secret.get_secret_value())
            ]
        return cls(
            ring,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_s=settings.access_token_ttl_s,
        )

    def issue(
        self, user_id: uuid.UUID, *, version: int = 0, now: float | None = None
    ) -> tuple[str, int]:
        """A signed access token for ``user_id`` at token ``version``, and its lifetime in s."""
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": issued,
            "nbf": issued,
            "exp": issued + self.ttl_s,
            "jti": secrets.token_urlsafe(12),
            "ver": version,
        }
        key = self.signing_key
        token = jwt.encode(claims, key.signing, algorithm=key.alg, headers={"kid": key.kid})
        return token, self.ttl_s

    def verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("Malformed token", code="invalid_token") from None
        key = self.keys.get(header.get("kid", ""))
        if key is None or header.get("alg") != key.alg:
            raise Unauthenticated("Unknown key or algorithm", code="invalid_token")
        try:
            claims = jwt.decode(
                token,
                key.verifying,
                algorithms=[key.alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
            return AccessClaims(
                uuid.UUID(claims["sub"]),
                claims["jti"],
                int(claims["exp"]),
                int(claims.get("ver", 0)),
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("Token expired", code="token_expired") from None
        except (jwt.PyJWTError, ValueError):
            raise Unauthenticated("Invalid token", code="invalid_token") from None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwk for k in self.keys.values() if (jwk := k.jwk()) is not None]}
