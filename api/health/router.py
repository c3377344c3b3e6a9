"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import StateDep
from api.errors import ErrorResponse, error_response
from api.state import AppState
from core.resources import kafka_cluster

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    status: Literal["ok", "error"]
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, Check]


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the process serves requests (touches no dependency)."""
    return Health()


def _database(state: AppState) -> None:
    with state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _broker(state: AppState) -> None:
    if not kafka_cluster(state.settings, timeout_ms=int(state.settings.ready_timeout_s * 1000))[
        "brokers"
    ]:
        raise RuntimeError("no brokers in cluster metadata")


def _redis(state: AppState) -> None:
    state.redis.ping()


def _s3(state: AppState) -> None:
    state.s3.head_bucket(Bucket=state.settings.s3_bucket)


CHECKS: dict[str, Callable[[AppState], None]] = {
    "database": _database,
    "broker": _broker,
    "redis": _redis,
    "s3": _s3,
}


async def _run(name: str, check: Callable[[AppState], None], state: AppState) -> tuple[str, Check]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.to_thread(check, state), timeout=state.settings.ready_timeout_s * 2
        )
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return name, Check(status="error", latency_ms=round(elapsed, 1), error=repr(exc)[:300])
    elapsed = (time.perf_counter() - started) * 1000
    return name, Check(status="ok", latency_ms=round(elapsed, 1))


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": ErrorResponse, "description": "A dependency is not reachable"}},
)
async def ready(state: StateDep) -> Readiness | JSONResponse:
    """Readiness: the database, the broker, Redis and S3 all answer."""
    results = dict(await asyncio.gather(*(_run(n, c, state) for n, c in CHECKS.items())))
    if all(check.status == "ok" for check in results.values()):
        return Readiness(checks=results)
    failed = sorted(name for name, check in results.items() if check.status != "ok")
    return error_response(
        503,
        "not_ready",
        f"Dependencies not ready: {', '.join(failed)}",
        {"checks": {name: check.model_dump() for name, check in results.items()}},
    )
