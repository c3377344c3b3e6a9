"""Idempotent retries: a write carrying ``X-Idempotency-Key`` runs once; a retry replays its response.

Requests the app refuses before any endpoint runs are left to it, key unread: no route for the path
(404) or the method (405), no valid bearer token where one is required (401). So those answers win
over a key's replay or reuse, and such a request claims nothing.

A key belongs to the caller (the verified user, or the client IP when anonymous) and is bound to a
fingerprint of the request (method, path with query, body). The first request claims the key in
Redis with a short lock; when it finishes, its status, a few headers and body are stored for
``idempotency_ttl_s``. 5xx responses and failures are not stored, so the client can retry them;
nor are responses marked ``Cache-Control: no-store`` (issued tokens): secrets stay out of Redis.
See docs/api-rules.md for why Redis and what it costs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
import uuid
from typing import IO, Annotated, Any

import anyio
import redis
from fastapi import Depends, FastAPI, Header, Request
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from api.middleware import caller_of
from api.openapi_index import operation
from core.logging import get_logger
from core.settings import Settings

log = get_logger(__name__)

IDEMPOTENCY_HEADER = "X-Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_PREFIX = "aq:idem"

_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
# Replayed with the body; everything else (cookies, request ids, lengths) belongs to one exchange.
_STORED_HEADERS = frozenset({b"content-type", b"content-language", b"location", b"etag"})
_SPOOL_IN_MEMORY = 1 << 20  # larger request bodies go to a temporary file while fingerprinted
_CHUNK = 64 * 1024
_GUARDED = "aq.idempotency_key"
_LEFT_TO_THE_APP = "aq.idempotency_left_to_the_app"

# Finish what this request claimed: store the response (ARGV[2]) or drop the claim (ARGV[2] = '').
# A claim that expired and was taken over by a retry is left alone.
_FINISH = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3])) end
return 1
"""


class IdempotencyMiddleware:
    """Pure ASGI, so the request body can be streamed through a fingerprint and replayed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        ttl_s: int,
        lock_ttl_s: int = 60,
        max_stored_body: int = 1 << 20,
    ) -> None:
        self.app = app
        self.ttl_s = ttl_s
        # A claim outlives a crashed worker by at most this long; a handler running longer than
        # this loses its guard, so keep it above the slowest write endpoint.
        self.lock_ttl_s = lock_ttl_s
        self.max_stored_body = max_stored_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        keys = Headers(scope=scope).getlist(IDEMPOTENCY_HEADER)
        if not keys:
            await self.app(scope, receive, send)
            return
        if self._refused_before_any_endpoint(scope):
            scope[_LEFT_TO_THE_APP] = True
            await self.app(scope, receive, send)
            return
        if len(keys) > 1 or not _VALID_KEY.fullmatch(keys[0]):
            response = error_response(
                400,
                "invalid_idempotency_key",
                f"{IDEMPOTENCY_HEADER} must be one value of 1-255 printable ASCII characters",
            )
            await response(scope, receive, send)
            return

        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as body:
            fingerprint = await _read_body(scope, receive, body)
            if fingerprint is None:  # the client went away before sending its body
                return
            await self._guarded(scope, _replay_body(body, receive), send, keys[0], fingerprint)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, key: str, fingerprint: str
    ) -> None:
        client: redis.Redis = scope["app"].state.aq.redis
        caller = caller_of(scope)
        owner = f"user:{caller.user_id}" if caller.user_id else f"ip:{caller.ip}"
        redis_key = f"{KEY_PREFIX}:{owner}:{hashlib.sha256(key.encode()).hexdigest()}"
        claim = json.dumps(
            {"state": "in_progress", "fingerprint": fingerprint, "claim": uuid.uuid4().hex}
        )
        try:
            existing = await anyio.to_thread.run_sync(self._claim, client, redis_key, claim)
        except redis.RedisError as exc:
            # Fail closed: the caller asked for at-most-once; running unguarded could do it twice.
            log.warning("idempotency_unavailable", error=str(exc))
            response = error_response(
                503,
                "idempotency_unavailable",
                "Idempotency keys cannot be checked right now; retry with the same key",
                headers={"Retry-After": "5"},
            )
            await response(scope, receive, send)
            return

        if existing is not None:
            await _answer_duplicate(existing, fingerprint)(scope, receive, send)
            return

        scope[_GUARDED] = key
        captured = _Captured(self.max_stored_body)

        async def capture(message: Message) -> None:
            captured.record(message)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._finish(client, redis_key, claim, None)
            raise
        await self._finish(client, redis_key, claim, captured.to_record(fingerprint))

    def _refused_before_any_endpoint(self, scope: Scope) -> bool:
        """404 or 405 (no route takes the request), or 401 (its operation requires a bearer
        token and the request has no valid one). Whether it does is read from the OpenAPI
        document, the contract (as for unknown query parameters). Operations where a token is
        optional are guarded: some refuse a bad token, some ignore it."""
        app = scope["app"]
        if not any(route.matches(scope)[0] is Match.FULL for route in app.router.routes):
            return True
        security = (operation(app, scope["method"], scope["path"]) or {}).get("security")
        if not security or {} in security:
            return False
        return caller_of(scope).user_id is None

    def _claim(self, client: redis.Redis, redis_key: str, claim: str) -> dict[str, Any] | None:
        """None when this request now owns the key, else what is stored under it."""
        for _ in range(3):
            if client.set(redis_key, claim, nx=True, ex=self.lock_ttl_s):
                return None
            current = client.get(redis_key)
            if current is not None:  # else it expired or was released in between: try again
                return json.loads(current)
        return {"state": "in_progress", "fingerprint": json.loads(claim)["fingerprint"]}

    async def _finish(
        self, client: redis.Redis, redis_key: str, claim: str, record: str | None
    ) -> None:
        """Store the response, or release the claim so a retry runs again; never raises."""
        try:
            await anyio.to_thread.run_sync(
                lambda: client.register_script(_FINISH)(
                    keys=[redis_key], args=[claim, record or "", self.ttl_s]
                )
            )
        except redis.RedisError as exc:
            # The response has been sent. Unstored, a retry runs again once the claim expires.
            log.error("idempotency_store_failed", error=str(exc), stored=record is not None)


class _Captured:
    """The response as it streams to the client, kept while it stays small enough to store."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.storable = True
        self.no_store = False

    def record(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers", [])
            self.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in headers
                if name.lower() in _STORED_HEADERS
            ]
            # Responses carrying secrets (issued tokens) say so; they are not kept in Redis.
            self.no_store = any(
                name.lower() == b"cache-control" and b"no-store" in value.lower()
                for name, value in headers
            )
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self.limit:
                self.storable, self.chunks = False, []
            elif self.storable:
                self.chunks.append(chunk)
            self.complete = not message.get("more_body", False)
        elif message["type"] in ("http.response.pathsend", "http.response.zerocopysend"):
            self.storable = False  # a file sent by path: nothing we could replay

    def to_record(self, fingerprint: str) -> str | None:
        if self.status is None or self.status >= 500 or self.no_store:
            return None
        if not (self.complete and self.storable):
            log.warning("idempotency_response_not_stored", status=self.status, size=self.size)
            return None
        return json.dumps(
            {
                "state": "done",
                "fingerprint": fingerprint,
                "status": self.status,
                "headers": self.headers,
                "body": base64.b64encode(b"".join(self.chunks)).decode("ascii"),
            }
        )


async def _read_body(scope: Scope, receive: Receive, into: IO[bytes]) -> str | None:
    """Stream the request body into ``into`` while hashing it with the method and target."""
    digest = hashlib.sha256()
    digest.update(scope["method"].encode() + b"\n")
    digest.update(scope["path"].encode() + b"?" + scope.get("query_string", b"") + b"\n")
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        digest.update(chunk)
        into.write(chunk)
        if not message.get("more_body", False):
            return digest.hexdigest()


def _replay_body(body: IO[bytes], receive: Receive) -> Receive:
    """A receive channel that hands the buffered body to the app, then defers to the client."""
    size = body.tell()
    body.seek(0)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        chunk = body.read(_CHUNK)
        sent = body.tell() >= size
        return {"type": "http.request", "body": chunk, "more_body": not sent}

    return replay


def _answer_duplicate(existing: dict[str, Any], fingerprint: str) -> Response:
    if existing.get("fingerprint") != fingerprint:
        return error_response(
            422,
            "idempotency_key_reused",
            f"This {IDEMPOTENCY_HEADER} was used for a different request",
        )
    if existing.get("state") != "done":
        return error_response(
            409,
            "idempotency_in_progress",
            "A request with this idempotency key is still being processed",
            headers={"Retry-After": "1"},
        )
    headers = dict(existing["headers"])
    headers[REPLAYED_HEADER] = "true"
    return Response(
        base64.b64decode(existing["body"]), status_code=existing["status"], headers=headers
    )


def require_idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="Unique per operation; a retry with the same key replays the first response.",
            # What the middleware accepts (anything else is a 400 before routing).
            min_length=1,
            max_length=255,
            pattern=r"^[\x20-\x7e]+$",
        ),
    ] = None,
) -> str:
    """For routes that must not run twice (payments): the request has to carry a key. The
    parameter is optional to FastAPI, so a missing key is our 400 rather than its 422; the
    OpenAPI document still says it is required (``install_idempotency``)."""
    if key is None:
        raise ApiError(
            400, "idempotency_key_required", f"This operation requires an {IDEMPOTENCY_HEADER}"
        )
    if request.scope.get(_LEFT_TO_THE_APP):
        # Left unguarded because authentication refuses it; never run it that way.
        raise ApiError(
            401,
            "unauthorized",
            "Missing or invalid bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="aqstream"'},
        )
    if request.scope.get(_GUARDED) != key:
        raise RuntimeError("X-Idempotency-Key is not enforced: call install_idempotency(app)")
    return key


IdempotencyKey = Annotated[str, Depends(require_idempotency_key)]


def install_idempotency(app: FastAPI, settings: Settings) -> None:
    """Add the middleware; a second call is a no-op."""
    if any(m.cls is IdempotencyMiddleware for m in app.user_middleware):
        return
    app.add_middleware(IdempotencyMiddleware, ttl_s=settings.idempotency_ttl_s)
    _document_required_keys(app)


def _document_required_keys(app: FastAPI) -> None:
    """Mark the key ``required`` in the OpenAPI document wherever a route declares it: only
    ``require_idempotency_key`` puts the header into the document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for item in generate()["paths"].values():
                for operation in item.values():
                    if not isinstance(operation, dict):
                        continue
                    for param in operation.get("parameters", []):
                        if param.get("in") == "header" and param.get("name") == IDEMPOTENCY_HEADER:
                            param["required"] = True
                            param["schema"] = _not_null(param.get("schema", {}))
        return app.openapi_schema

    app.openapi = openapi


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``str | None`` documented as the string it must be once required."""
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if len(options) != 1:
        return schema
    return {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
