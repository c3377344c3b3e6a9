"""Analytics API: tracking (tracking.py), dashboards and reports (dashboard.py). Each module
owns its router; ``routers`` lists them for api/app.py (exports are api/exports)."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from api.analytics.dashboard import router as dashboard
    from api.analytics.tracking import router as tracking

    return [tracking, dashboard]
