"""Bearer-token authentication: the verified access token is the only source of identity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from domain.errors import Unauthenticated
from domain.identity.tokens import AccessClaims

bearer_scheme = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    token_id: str
    token_version: int = 0


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="aqstream"'})


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The caller of an authenticated route. ``async``: it only checks a signature (usually
    already checked by the rate limits, see ``verify_token``), so FastAPI runs it inline instead
    of through the thread pool."""
    return principal_of(request, credentials)


def principal_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The verified bearer token's principal; a 401 ``ApiError`` without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("unauthorized", "Missing bearer token")
    claims = verify_token(request, credentials.credentials)  # raises Unauthenticated: a 401
    principal = Principal(claims.user_id, claims.token_id, claims.version)
    request.state.principal = principal
    return principal


def peek_user_id(request: Request) -> str | None:
    """The verified user id of a request's bearer token, or None; never raises.

    For middleware (rate limits, idempotency) that runs before routing and dependencies.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return str(verify_token(request, token.strip()).user_id)
    except Unauthenticated:
        return None


_VERIFIED = "aq.verified_token"


def verify_token(request: Request, token: str) -> AccessClaims:
    """Verify a bearer token once per request: middleware and dependencies share the result."""
    cached = request.scope.get(_VERIFIED)
    if cached is not None and cached[0] == token:
        return cached[1]
    claims = request.app.state.aq.tokens.verify(token)
    request.scope[_VERIFIED] = (token, claims)
    return claims


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
