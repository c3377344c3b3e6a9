"""Sign-up, sign-in (e-mail or Telegram), token refresh and logout, password reset, the JWKS,
the own profile."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.routing import APIRoute

from api.deps import AnonymousUowDep, StateDep, UowDep
from api.errors import ApiError, responses
from api.identity.schemas import (
    EmailVerificationConfirm,
    Jwks,
    LoginRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    TelegramLoginRequest,
    TokenPair,
    UserOut,
    UserUpdate,
)
from api.middleware.ratelimit import (
    AUTH_UNAVAILABLE_CODE,
    AUTH_UNAVAILABLE_MESSAGE,
    AUTH_UNAVAILABLE_RETRY_AFTER_S,
)
from api.security import CurrentPrincipal
from api.state import AppState
from core.logging import get_logger
from domain.errors import NotFound
from domain.identity import email_verification, password_reset, service
from domain.identity.models import User
from domain.identity.throttle import SignInThrottle, ThrottlePolicy
from domain.uow import UnitOfWork

log = get_logger(__name__)


def auth_unavailable() -> ApiError:
    """Redis holds refresh tokens and sign-in throttles: without it no credential is checked or
    issued (the same answer as the rate limit middleware's for credential paths)."""
    return ApiError(
        503,
        AUTH_UNAVAILABLE_CODE,
        AUTH_UNAVAILABLE_MESSAGE,
        headers={"Retry-After": str(AUTH_UNAVAILABLE_RETRY_AFTER_S)},
    )


class IdentityRoute(APIRoute):
    """Answers a Redis failure as 503 ``auth_unavailable`` (the unit of work has rolled back:
    nothing is written). The per-account throttle's refusal is a domain error (429)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except redis.RedisError as exc:
                log.warning("auth_unavailable", error=type(exc).__name__, path=request.url.path)
                raise auth_unavailable() from None

        return guarded


async def get_throttle(request: Request, state: StateDep) -> SignInThrottle:
    """The per-account sign-in throttle, built on first use from the app's Redis pool."""
    throttle = getattr(request.app.state, "signin_throttle", None)
    if throttle is None or throttle.client is not state.redis:
        throttle = SignInThrottle(state.redis, ThrottlePolicy.from_settings(state.settings))
        request.app.state.signin_throttle = throttle
    return throttle


ThrottleDep = Annotated[SignInThrottle, Depends(get_throttle)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


router = APIRouter(tags=["auth"], route_class=IdentityRoute)


def _tokens(
    state: AppState, user: User, response: Response, refresh: str | None = None
) -> TokenPair:
    # RFC 6749 5.1: token responses are never cached (nor replayed by the idempotency store).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    access, ttl = state.tokens.issue(user.id, version=user.token_version)
    return TokenPair(
        access_token=access,
        expires_in=ttl,
        refresh_token=refresh or state.refresh_tokens.issue(user.id, version=user.token_version),
        user=UserOut.model_validate(user),
    )


@router.post(
    "/auth/register",
    response_model=TokenPair,
    status_code=status.HTTP_201_CREATED,
    responses=responses(409),
)
def register(
    body: RegisterRequest, uow: AnonymousUowDep, state: StateDep, response: Response
) -> TokenPair:
    """Create an account with e-mail and password; answers with a first token pair. A link to
    confirm the address is e-mailed (a paid registration needs it)."""
    user = service.register(
        uow, email=body.email, password=body.password, display_name=body.display_name
    )
    _ask_verification(uow, state, user)
    return _tokens(state, user, response)


def _ask_verification(
    uow: UnitOfWork, state: AppState, user: User, *, spaced: bool = False
) -> bool:
    return email_verification.request(
        uow,
        user,
        ttl_s=state.settings.email_verification_ttl_s,
        now=datetime.now(UTC),
        spacing=state.redis if spaced else None,
    )


@router.post("/auth/login", response_model=TokenPair, responses=responses(401))
def login(
    body: LoginRequest,
    uow: AnonymousUowDep,
    state: StateDep,
    throttle: ThrottleDep,
    request: Request,
    response: Response,
) -> TokenPair:
    """Sign in with e-mail and password (throttled per account: 429 `rate_limited`)."""
    user = service.authenticate(
        uow,
        email=body.email,
        password=body.password,
        throttle=throttle,
        address=_address(request),
    )
    return _tokens(state, user, response)


@router.post("/auth/telegram", response_model=TokenPair, responses=responses(401, 404))
def telegram(
    body: TelegramLoginRequest, uow: AnonymousUowDep, state: StateDep, response: Response
) -> TokenPair:
    """Sign in (signing up on first use) with Telegram Login Widget data."""
    bot_token = state.settings.telegram_bot_token
    if bot_token is None:
        raise ApiError(404, "telegram_disabled", "Telegram sign-in is not configured")
    user = service.telegram_login(
        uow,
        body.model_dump(exclude_none=True),
        bot_token=bot_token.get_secret_value(),
        max_age_s=state.settings.telegram_auth_max_age_s,
    )
    uow.session.flush()
    return _tokens(state, user, response)


@router.post("/auth/refresh", response_model=TokenPair, responses=responses(401))
def refresh(
    body: RefreshRequest, uow: AnonymousUowDep, state: StateDep, response: Response
) -> TokenPair:
    """Trade a refresh token for a new pair; each refresh token works once."""
    grant, successor = state.refresh_tokens.rotate(body.refresh_token)
    uow.act_as(grant.user_id)
    try:
        user = service.get_user(uow, grant.user_id)
    except NotFound:
        state.refresh_tokens.revoke_family(grant.family)
        raise ApiError(401, "invalid_refresh_token", "The account no longer exists") from None
    if grant.version != user.token_version:
        # A sign-in that raced a password change: revoking the user's tokens may not have seen it.
        state.refresh_tokens.revoke_family(grant.family)
        raise ApiError(
            401,
            "token_revoked",
            "The password was changed after this sign-in; sign in again",
            headers={"WWW-Authenticate": 'Bearer realm="aqstream"'},
        )
    return _tokens(state, user, response, refresh=successor)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=responses(401))
def logout(body: RefreshRequest, principal: CurrentPrincipal, state: StateDep) -> None:
    """Revoke the caller's refresh token and every token rotated from the same sign-in."""
    state.refresh_tokens.revoke(body.refresh_token, principal.user_id)


@router.get("/auth/keys", response_model=Jwks)
def keys(state: StateDep) -> Jwks:
    """Public keys (JWKS) verifying ES256 access tokens; HS256 secrets are never published."""
    return Jwks(**state.tokens.jwks())


users = APIRouter(tags=["users"], route_class=IdentityRoute)


@users.get("/users/me", response_model=UserOut, responses=responses(401))
def me(uow: UowDep) -> UserOut:
    """The signed-in user."""
    return UserOut.model_validate(service.get_user(uow, uow.user_id))


@users.patch("/users/me", response_model=UserOut, responses=responses(401, 403, 409))
def update_me(
    body: UserUpdate, uow: UowDep, state: StateDep, throttle: ThrottleDep, request: Request
) -> UserOut:
    """Change the own profile; the e-mail or password only with the current password (a new
    password signs out every session, this one included)."""
    changes = body.model_dump(exclude_unset=True, exclude={"current_password"})
    user = service.update_profile(
        uow,
        uow.user_id,
        changes,
        current_password=body.current_password,
        throttle=throttle,
        address=_address(request),
    )
    if body.password is not None:
        state.refresh_tokens.revoke_user(user.id)
    if body.email is not None and email_verification.needs_verification(user):
        _ask_verification(uow, state, user)  # a new address: confirmed by a link sent to it
    return UserOut.model_validate(user)


@users.post(
    "/users/me/email-verification",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(401, 409, 429),
)
def email_verification_request(uow: UowDep, state: StateDep) -> None:
    """E-mail a new link to confirm the account's address (valid
    `AQSTREAM_EMAIL_VERIFICATION_TTL_S`, 3 days). One per minute: a request within a minute of the
    last answers alike and sends nothing. 409 `email_already_verified`, or `no_email` for an
    account without one (Telegram sign-in)."""
    user = service.get_user(uow, uow.user_id)
    _ask_verification(uow, state, user, spaced=True)


def _reset_tokens(state: AppState) -> password_reset.ResetTokens:
    settings = state.settings
    return password_reset.ResetTokens(
        state.redis,
        password_reset.signing_key(settings.ticket_signing_key.get_secret_value()),
        settings.password_reset_ttl_s,
    )


@router.post(
    "/auth/email-verification/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(422, 429),
)
def email_verification_confirm(
    body: EmailVerificationConfirm, uow: AnonymousUowDep, state: StateDep
) -> None:
    """Confirm the account's address with the e-mailed token (it works while the address is the
    one it was sent to and until it expires; again is harmless). 422 `invalid_verification_token`
    otherwise. Needs no sign-in: the link may be opened on another device."""
    key = email_verification.signing_key(state.settings.ticket_signing_key.get_secret_value())
    email_verification.confirm(uow, body.token, key, now=datetime.now(UTC))


@router.post(
    "/auth/password-reset", status_code=status.HTTP_202_ACCEPTED, responses=responses(422, 429)
)
def password_reset_request(
    body: PasswordResetRequest, uow: AnonymousUowDep, state: StateDep
) -> None:
    """E-mail a single-use link to reset the password (valid `AQSTREAM_PASSWORD_RESET_TTL_S`,
    1 h). Always 202, whether an account has this e-mail or not."""
    email = service.normalize_email(body.email)
    password_reset.request_reset(uow, email, _reset_tokens(state), now=datetime.now(UTC))


@router.post(
    "/auth/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(422, 429),
)
def password_reset_confirm(
    body: PasswordResetConfirm, uow: AnonymousUowDep, state: StateDep
) -> None:
    """Set a new password with the e-mailed token (422 `invalid_reset_token` when unknown,
    expired or used; it works once). Every session of the account is signed out."""
    user = password_reset.confirm_reset(
        uow,
        body.token,
        body.new_password,
        _reset_tokens(state),
        min_length=service.MIN_PASSWORD_LENGTH,
    )
    state.refresh_tokens.revoke_user(user.id)
