"""Dependencies shared by routers, declared once as ``Annotated`` aliases.

The unit of work is a ``scope="function"`` dependency: it commits right after the endpoint
returns and before the response is sent, so a client never sees success for a rolled-back change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, TypeVar

from asgi_correlation_id.context import correlation_id
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import text

from api.errors import ApiError
from api.openapi_index import operation
from api.security import (
    CurrentPrincipal,
    Principal,
    peek_user_id,
    principal_of,
)
from api.state import AppState
from core.settings import Settings
from domain.organization.models import Role
from domain.organization.service import membership_role
from domain.uow import UnitOfWork


# Pure lookups are `async def`: FastAPI then runs them inline, not through the thread pool.
async def get_state(request: Request) -> AppState:
    return request.app.state.aq


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def _event_headers() -> dict[str, str]:
    cid = correlation_id.get()
    return {"correlation_id": cid} if cid else {}


def _unit_of_work(state: AppState, principal: Principal | None) -> Iterator[UnitOfWork]:
    with UnitOfWork(
        state.sessionmaker,
        user_id=principal.user_id if principal else None,
        headers=_event_headers,
        check_account=principal is not None,
    ) as uow:
        if principal is not None:
            # The account row comes with the transaction's context (app_begin, one round trip):
            # deleted, or the token revoked by a password change since it was issued? A platform
            # admin's flag is already on.
            user = uow.account
            if user is None or user.deleted_at is not None:
                raise ApiError(401, "unauthorized", "The account no longer exists")
            if user.token_version != principal.token_version:
                raise ApiError(
                    401,
                    "token_revoked",
                    "The password was changed after this token was issued; sign in again",
                    headers={"WWW-Authenticate": 'Bearer realm="aqstream"'},
                )
        yield uow
        uow.commit()


def get_uow(state: StateDep, principal: CurrentPrincipal) -> Iterator[UnitOfWork]:
    """The request's transaction, as the authenticated user."""
    yield from _unit_of_work(state, principal)


def get_anonymous_uow(state: StateDep) -> Iterator[UnitOfWork]:
    """A transaction with no user context (sign-up, sign-in, token refresh)."""
    yield from _unit_of_work(state, None)


def get_optional_uow(state: StateDep, request: Request) -> Iterator[UnitOfWork]:
    """As the user when a bearer token is sent (it must then be valid), else anonymous.

    The header is read here rather than through the security scheme, so the OpenAPI document
    can say the token is optional (see OPTIONAL_AUTH on those routes)."""
    principal = None
    if "authorization" in request.headers:
        scheme, _, token = request.headers["authorization"].partition(" ")
        credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
        principal = principal_of(request, credentials)
    yield from _unit_of_work(state, principal)


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]

T = TypeVar("T")


class UnitOfWorkRunner:
    """The request's unit of work in one trip to the thread pool, for the hottest routes:
    ``await run(work)`` opens the transaction as the caller (the account checks of ``UowDep``),
    calls ``work(uow)``, commits, and returns what ``work`` returned; an exception rolls back.

    A sync route on ``UowDep`` makes three trips (the dependency's enter and exit, the route);
    each costs the worker CPU and an event-loop wake-up. The difference a caller can see: the
    account checks run after the body is validated, so a bad body is a 422 even for a deleted
    account or a revoked token (a bad or expired token is still a 401 first)."""

    def __init__(self, state: AppState, principal: Principal) -> None:
        self._state = state
        self._principal = principal

    async def __call__(self, work: Callable[[UnitOfWork], T]) -> T:
        return await run_in_threadpool(self._run, work)

    def _run(self, work: Callable[[UnitOfWork], T]) -> T:
        with contextmanager(_unit_of_work)(self._state, self._principal) as uow:
            return work(uow)


async def get_uow_runner(state: StateDep, principal: CurrentPrincipal) -> UnitOfWorkRunner:
    return UnitOfWorkRunner(state, principal)


UowRunnerDep = Annotated[UnitOfWorkRunner, Depends(get_uow_runner)]
OptionalUowDep = Annotated[UnitOfWork, Depends(get_optional_uow, scope="function")]
AnonymousUowDep = Annotated[UnitOfWork, Depends(get_anonymous_uow, scope="function")]


@dataclass(frozen=True)
class Membership:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: Role


READ_ROLES = (Role.OWNER, Role.MODERATOR, Role.ANALYST)
MANAGE_ROLES = (Role.OWNER, Role.MODERATOR)
OWNER_ONLY = (Role.OWNER,)


def enter_tenant_as(
    uow: UnitOfWork, tenant_id: uuid.UUID | None, roles: tuple[Role, ...]
) -> Membership:
    """Check the caller's role in ``tenant_id`` and enter it; for ids that arrive in a body."""
    return _enter(uow, tenant_id, roles)


def _enter(uow: UnitOfWork, tenant_id: uuid.UUID | None, roles: tuple[Role, ...]) -> Membership:
    # Not a member (or no such tenant) is a 404: existence is not revealed to outsiders.
    role = membership_role(uow, tenant_id, uow.user_id) if tenant_id else None
    if role is None:
        raise ApiError(404, "not_found", "Not found")
    if role not in roles:
        raise ApiError(
            403,
            "insufficient_role",
            f"Requires one of: {', '.join(r.value for r in roles)}",
            {"role": role.value},
        )
    uow.enter_tenant(tenant_id)
    return Membership(tenant_id, uow.user_id, role)


def require_role(*roles: Role) -> Callable[..., Membership]:
    """For routes under /organizations/{org_id}: the caller's membership, tenant entered."""

    def dependency(org_id: uuid.UUID, uow: UowDep) -> Membership:
        return _enter(uow, org_id, roles)

    return dependency


def require_resource_role(table: str, param: str, *roles: Role) -> Callable[..., Membership]:
    """For routes addressing a tenant row by id alone (``/groups/{group_id}``): find its tenant,
    then check the caller's membership of that tenant."""

    def dependency(request: Request, uow: UowDep) -> Membership:
        return _enter(uow, _resource_tenant(uow, table, request.path_params[param]), roles)

    return dependency


def _resource_tenant(uow: UnitOfWork, table: str, raw_id: str) -> uuid.UUID | None:
    try:
        resource_id = uuid.UUID(raw_id)
    except ValueError:
        return None
    return uow.session.execute(
        text("SELECT app_resource_tenant(:t, :id)"), {"t": table, "id": resource_id}
    ).scalar_one()


def _join_if_member(uow: UnitOfWork, table: str, raw_id: str) -> Membership | None:
    if uow.user_id is None:
        return None
    tenant_id = _resource_tenant(uow, table, raw_id)
    role = membership_role(uow, tenant_id, uow.user_id) if tenant_id else None
    if role is None:
        return None
    uow.enter_tenant(tenant_id)
    return Membership(tenant_id, uow.user_id, role)


def optional_membership(table: str, param: str) -> Callable[..., Membership | None]:
    """For routes both organizers and participants use (``/registrations/{id}``): when the caller
    belongs to the row's tenant, enter it and return the membership; otherwise stay a
    participant (row level security shows them only their own rows) and return None."""

    def dependency(request: Request, uow: UowDep) -> Membership | None:
        return _join_if_member(uow, table, request.path_params[param])

    return dependency


def public_or_member(table: str, param: str) -> Callable[..., Membership | None]:
    """Like optional_membership, for reads open to anonymous callers (published events)."""

    def dependency(request: Request, uow: OptionalUowDep) -> Membership | None:
        return _join_if_member(uow, table, request.path_params[param])

    return dependency


def require_platform_admin(uow: UowDep) -> UnitOfWork:
    if not uow.platform_admin:
        raise ApiError(403, "forbidden", "Platform administrators only")
    return uow


async def forbid_unknown_query_parameters(request: Request) -> None:
    """A misspelt filter must not silently return everything: unknown query keys are a 422.

    What is known comes from the OpenAPI document, the contract clients are given. An
    unauthenticated call to a protected operation is left to fail authentication first.
    """
    if not request.query_params:
        return
    op = operation(request.app, request.method, request.url.path)
    auth_required = bool(op and op.get("security")) and {} not in op["security"]
    if op is None or (auth_required and peek_user_id(request) is None):
        return
    known = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ApiError(
            422,
            "unknown_query_parameter",
            f"Unknown query parameter(s): {', '.join(unknown)}",
            {"unknown": unknown, "allowed": sorted(known)},
        )
