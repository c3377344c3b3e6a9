"""Everything the API builds at start-up and releases at shutdown."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.middleware.ratelimit import LimitCounter, make_limiter
from core.resources import make_async_redis, make_redis, make_s3
from core.settings import Settings
from domain.db import make_engine, make_sessionmaker
from domain.identity.refresh import RefreshTokenStore
from domain.identity.tokens import TokenService


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session]
    redis: redis.Redis
    # Counts every rate limit: the middleware's and the routes' own (scoped by key).
    limiter: SlidingWindowCounterRateLimiter
    # The middleware's limits, all of a request's in one round trip, on the event loop.
    redis_async: redis.asyncio.Redis
    limit_counter: LimitCounter
    s3: Any
    tokens: TokenService
    refresh_tokens: RefreshTokenStore
    # The tracking topic's Kafka producer: made on first use (the API starts without a broker).
    tracking: Any = None
    _tracking_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        engine = make_engine(
            settings.app_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            application_name="aqstream-api",
            pre_ping=False,  # every request's transaction is a UnitOfWork (domain/uow.py)
        )
        client = make_redis(settings)
        client_async = make_async_redis(settings)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            redis=client,
            limiter=make_limiter(client),
            redis_async=client_async,
            limit_counter=LimitCounter(client_async, client),
            s3=make_s3(settings, timeout_s=settings.ready_timeout_s),
            tokens=TokenService.from_settings(settings),
            refresh_tokens=RefreshTokenStore(client, settings.refresh_token_ttl_s),
        )

    def tracking_producer(self) -> Any:
        """The producer of the tracking topic (streams/analytics.py); raises while the broker
        cannot be reached, and tries again on the next call."""
        with self._tracking_lock:
            if self.tracking is None:
                from streams.tracking import make_tracking_producer

                self.tracking = make_tracking_producer(self.settings)
            return self.tracking

    async def aclose(self) -> None:
        """``close``, and the clients that live on the event loop."""
        self.close()
        await self.limit_counter.aclose()

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()
        if self.tracking is not None:
            self.tracking.close(timeout=self.settings.analytics_publish_timeout_s)
