"""Refresh tokens: opaque, stored only as SHA-256 hashes in Redis with a TTL, rotated on every use.

Every token belongs to a family (one login). Presenting a token that was already rotated means
it leaked: the whole family is revoked, so neither the thief nor the victim can refresh again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass

import redis

from domain.errors import Unauthenticated

_PREFIX = "aq:rt"

# Atomically: the token must exist and be unused; mark it used (kept until its TTL for reuse
# detection). Returns the record, or 'used' / nil.
_CONSUME = """
local rec = redis.call('GET', KEYS[1])
if not rec then return nil end
local data = cjson.decode(rec)
if redis.call('EXISTS', KEYS[2] .. data['family'] .. ':revoked') == 1 then return nil end
if data['used'] then return 'used:' .. data['family'] end
data['used'] = true
redis.call('SET', KEYS[1], cjson.encode(data), 'KEEPTTL')
return rec
"""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RefreshGrant:
    user_id: uuid.UUID
    family: str
    version: int = 0  # the user's token_version when the sign-in was made (absent: 0)


class RefreshTokenStore:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._consume = client.register_script(_CONSUME)

    def issue(self, user_id: uuid.UUID, family: str | None = None, *, version: int = 0) -> str:
        token = secrets.token_urlsafe(32)
        family = family or uuid.uuid4().hex
        record = json.dumps({"user": str(user_id), "family": family, "used": False, "ver": version})
        pipe = self.client.pipeline()
        pipe.set(f"{_PREFIX}:{_hash(token)}", record, ex=self.ttl_s)
        pipe.sadd(f"{_PREFIX}:family:{family}", _hash(token))
        pipe.expire(f"{_PREFIX}:family:{family}", self.ttl_s)
        pipe.sadd(f"{_PREFIX}:user:{user_id}", family)
        pipe.expire(f"{_PREFIX}:user:{user_id}", self.ttl_s)
        pipe.execute()
        return token

    def rotate(self, token: str) -> tuple[RefreshGrant, str]:
        """Spend ``token``; return who it was for and its successor in the same family."""
        result = self._consume(keys=[f"{_PREFIX}:{_hash(token)}", f"{_PREFIX}:family:"])
        if result is None:
            raise Unauthenticated(
                "Refresh token is invalid or expired", code="invalid_refresh_token"
            )
        result = result.decode() if isinstance(result, bytes) else result
        if result.startswith("used:"):
            self.revoke_family(result.removeprefix("used:"))
            raise Unauthenticated(
                "Refresh token was already used; every session of this login is revoked",
                code="refresh_token_reused",
            )
        data = json.loads(result)
        grant = RefreshGrant(uuid.UUID(data["user"]), data["family"], int(data.get("ver", 0)))
        return grant, self.issue(grant.user_id, grant.family, version=grant.version)

    def revoke(self, token: str, user_id: uuid.UUID) -> bool:
        """Log out: revoke the family of ``user_id``'s token. False if unknown or not theirs."""
        raw = self.client.get(f"{_PREFIX}:{_hash(token)}")
        if raw is None:
            return False
        record = json.loads(raw)
        if record["user"] != str(user_id):
            return False
        self.revoke_family(record["family"])
        return True

    def revoke_user(self, user_id: uuid.UUID) -> None:
        """Every sign-in of the user (after a password change)."""
        for family in self.client.smembers(f"{_PREFIX}:user:{user_id}"):
            self.revoke_family(family.decode() if isinstance(family, bytes) else family)
        self.client.delete(f"{_PREFIX}:user:{user_id}")

    def revoke_family(self, family: str) -> None:
        members = self.client.smembers(f"{_PREFIX}:family:{family}")
        pipe = self.client.pipeline()
        pipe.set(f"{_PREFIX}:family:{family}:revoked", "1", ex=self.ttl_s)
        for member in members:
            pipe.delete(f"{_PREFIX}:{member.decode() if isinstance(member, bytes) else member}")
        pipe.delete(f"{_PREFIX}:family:{family}")
        pipe.execute()
