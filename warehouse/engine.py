"""The warehouse's own connections: its writers act as the warehouse role, not as the
application role, which may only read the tenant-filtering views of the ``analytics`` schema
(docs/analytics.md, "Tenancy")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from domain.db import make_engine

if TYPE_CHECKING:  # the settings are passed in: the warehouse imports no composition root
    from core.settings import Settings


def warehouse_engine(settings: Settings, **options) -> Engine:  # type: ignore[no-untyped-def]
    """Connections for the sink, backfill, reconcile and partition upkeep: the owner's URL,
    switched to ``settings.warehouse_db_role`` (reads and writes the warehouse's tables, nothing
    else). ``options``: those of ``domain.db.make_engine``."""
    return make_engine(settings.owner_url, role=settings.warehouse_db_role, **options)
