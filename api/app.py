"""The FastAPI application factory (``uvicorn --factory api.app:create_app``)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from prometheus_client.exposition import start_wsgi_server
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp

from api.errors import COMMON_RESPONSES, KeepConnectionAfterError, install_error_handlers
from api.health.router import router as health_router
from api.media.upload import FORM_OVERHEAD, limits_of
from api.middleware.body_limit import BodyLimitMiddleware, BodyTooLarge, answer_body_too_large
from api.middleware.headers import SecurityHeadersMiddleware
from api.middleware.idempotency import install_idempotency
from api.middleware.metrics import use_fast_route_names
from api.middleware.ratelimit import install_rate_limiting
from api.middleware.text import TextGuardMiddleware
from api.payment.router import sandbox_router as sandbox_checkout
from api.state import AppState
from core import __version__
from core.logging import configure_logging
from core.settings import Settings
from domain.identity import passwords

API_PREFIX = "/api/v1"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _valid_request_id(value: str) -> bool:
    """Accept a caller's correlation id if it is short and log-safe; otherwise we make one."""
    return bool(_REQUEST_ID.match(value))


def build_api_router() -> APIRouter:
    """Every capability's router under /api/v1."""
    from fastapi import Depends

    from api.checkin.router import router as checkin
    from api.deps import forbid_unknown_query_parameters
    from api.event.router import router as events
    from api.group.mine import router as my_groups
    from api.group.router import router as groups
    from api.identity.router import router as auth
    from api.identity.router import users
    from api.media.router import router as media
    from api.notification.router import router as notifications
    from api.organization.router import router as organizations
    from api.organizer.router import router as organizers
    from api.payment.router import router as payments
    from api.payment.router import webhook_router as webhooks
    from api.registration.router import router as registrations
    from api.telegram.router import router as telegram_bot
    from api.telegram.router import users as telegram_link
    from api.waitlist.router import router as waitlist

    api = APIRouter(
        prefix=API_PREFIX,
        responses=COMMON_RESPONSES,
        dependencies=[Depends(forbid_unknown_query_parameters)],
    )
    for router in (
        auth, users, organizations, groups, events, registrations, waitlist, checkin, payments,
        webhooks,
    ):  # fmt: skip
        api.include_router(router)
    api.include_router(notifications)
    api.include_router(media)
    api.include_router(organizers)
    api.include_router(my_groups)
    api.include_router(telegram_link)
    api.include_router(telegram_bot)
    from api.analytics import routers as analytics_routers
    from api.exports.router import router as exports

    for router in (*analytics_routers(), exports):
        api.include_router(router)
    return api


class AqStreamApi(FastAPI):
    """FastAPI with two layers outside Starlette's ServerErrorMiddleware, so that they see its
    500s too: the security headers, and the one that keeps the connection after an error."""

    settings: Settings

    def build_middleware_stack(self) -> ASGIApp:
        stack = SecurityHeadersMiddleware(
            super().build_middleware_stack(),
            behind_tls=self.settings.behind_tls,
            hsts_max_age_s=self.settings.hsts_max_age_s,
        )
        return KeepConnectionAfterError(stack)


def upload_paths(settings: Settings) -> dict[str, int]:
    """Routes whose bodies are files, and their body limit: the largest file and the form."""
    return {f"{API_PREFIX}/media/upload": limits_of(settings).largest + FORM_OVERHEAD}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    passwords.configure(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from api.telegram.botapi import register_at_start as register_telegram_webhook
        from domain.payment.runtime import PaymentRuntime

        app.state.aq = AppState.build(settings)
        app.state.payments = PaymentRuntime.start(settings, app.state.aq.sessionmaker)
        await asyncio.to_thread(register_telegram_webhook, settings)
        metrics = None
        if settings.api_metrics_port:
            # Off the public port: scrapers reach it on the internal network (docs/operations.md).
            metrics, _ = start_wsgi_server(
                settings.api_metrics_port, settings.api_metrics_host, REGISTRY
            )
        try:
            yield
        finally:
            if metrics is not None:
                metrics.shutdown()
                metrics.server_close()
            app.state.payments.close()
            await app.state.aq.aclose()

    app = AqStreamApi(
        title="AqStream API",
        version=__version__,
        description="Event registration with live analytics. Errors share one format: "
        '`{"error": {"code", "message", "details"}}`.',
        lifespan=lifespan,
    )
    app.settings = settings
    install_error_handlers(app)
    app.add_exception_handler(BodyTooLarge, answer_body_too_large)
    # Middleware added later runs first: rate limits; then refusals of text PostgreSQL cannot
    # hold and of bodies over their limit (before idempotency buffers a body); then idempotency.
    # All inside the request-id and metrics middleware (so 4xx carry X-Request-ID and are counted).
    install_idempotency(app, settings)
    app.add_middleware(
        BodyLimitMiddleware, default=settings.api_max_body_bytes, paths=upload_paths(settings)
    )
    app.add_middleware(TextGuardMiddleware)
    install_rate_limiting(app, settings)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        update_request_header=True,
        validator=_valid_request_id,
    )
    app.include_router(health_router)
    app.include_router(sandbox_checkout)
    app.include_router(build_api_router())
    instrumentator = Instrumentator(excluded_handlers=["/metrics", "/health"]).instrument(app)
    use_fast_route_names(app)
    if not settings.api_metrics_port:
        instrumentator.expose(app, include_in_schema=False, should_gzip=True)
    return app
