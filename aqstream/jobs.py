"""The background jobs process (`aqstream jobs`): periodic tasks over the database, each on its own
interval, each failure logged and retried on its next turn without stopping the others.

- sweep (every ``interval``): expire seat holds, offer freed seats to waitlists, cancel unpaid
  registrations after the payment timeout and unpaid remainders after their deadline;
- notifications (every ``interval``): send what is due (organizers' messages, the end of quiet
  hours, retries after a crash);
- reminders (every minute): emit `event.reminder` once per event, N hours before it starts;
- media cleanup (every five minutes): remove unreferenced uploads after the grace period;
- exports (every ``interval``): queue again exports whose runner died, start queued ones on the
  export threads (``AQSTREAM_EXPORT_WORKERS``; a long export holds up no other task);
- warehouse partitions (daily): the raw facts' monthly partitions a year ahead (plain
  PostgreSQL; warehouse/partitions.py);
- warehouse check (every five minutes, when there are metrics to show it): per kind, business
  facts in the transactional tables minus those the dashboards count over the last day, as the
  gauge ``aqstream_warehouse_missing_facts`` (warehouse/reconcile.py, ``count_check``).

All their state is in the database, so several processes may run and a restart loses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.orm import Session, sessionmaker

from core.logging import get_logger
from core.settings import Settings

log = get_logger("aqstream.jobs")
WAREHOUSE_CHECK_EVERY_S = 300.0


class JobsMetrics:
    """Prometheus metrics of `aqstream jobs`, in a registry of its own (as the relay's)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.missing_facts = Gauge(
            "aqstream_warehouse_missing_facts",
            "Per fact kind, business facts in the transactional tables minus those the "
            "dashboards count, over the day before the settle margin (0: whole; `aqstream "
            "warehouse reconcile` repairs)",
            ["kind"],
            registry=self.registry,
        )


@dataclass
class Task:
    name: str
    every_s: float
    run: Callable[[], Any]
    due_at: float = 0.0  # monotonic; 0 = at once
    failures: int = field(default=0)


def build_tasks(
    settings: Settings,
    sessions: sessionmaker[Session],
    interval: float,
    *,
    metrics: JobsMetrics | None = None,
) -> list[Task]:
    from core.resources import make_s3
    from domain.db import make_sessionmaker
    from domain.media.cleanup import cleanup_media
    from domain.notification.channels import Channels
    from domain.notification.delivery import deliver_due_blocking
    from domain.notification.service import emit_due_reminders
    from domain.registration.sweeper import sweep_once
    from warehouse.engine import warehouse_engine
    from warehouse.exports.runner import ExportWorker
    from warehouse.partitions import ensure_partitions

    channels = Channels(settings)
    s3 = make_s3(settings)
    # Partition upkeep is the warehouse role's (the application role has no right there).
    warehouse = make_sessionmaker(warehouse_engine(settings, pool_size=1, max_overflow=1))
    exports = ExportWorker(
        sessions,
        s3,
        settings.s3_bucket,
        workers=settings.export_workers,
        stale_after=timedelta(seconds=settings.export_stale_after_s),
        max_attempts=settings.export_max_attempts,
        statement_timeout_ms=settings.export_statement_timeout_ms,
    )
    return [
        Task(
            "sweep",
            interval,
            lambda: sweep_once(sessions, payment_timeout_s=settings.payment_timeout_s),
        ),
        Task("notifications", interval, lambda: deliver_due_blocking(sessions, channels)),
        Task(
            "reminders",
            60.0,
            lambda: emit_due_reminders(
                sessions, lead=timedelta(hours=settings.notification_reminder_hours)
            ),
        ),
        Task(
            "media_cleanup",
            300.0,
            lambda: cleanup_media(
                sessions,
                s3,
                bucket=settings.s3_bucket,
                grace=timedelta(seconds=settings.media_orphan_grace_s),
            ),
        ),
        Task("exports", interval, exports.tick),
        Task("warehouse_partitions", 24 * 3600.0, lambda: ensure_partitions(warehouse)),
        *_warehouse_check(settings, metrics),
    ]


def _warehouse_check(settings: Settings, metrics: JobsMetrics | None) -> list[Task]:
    """The warehouse's count check: its only output is the gauge, so it runs where there are
    metrics to expose."""
    if metrics is None:
        return []
    from datetime import UTC, datetime

    from domain.db import make_engine
    from warehouse.reconcile import KINDS, count_check

    # Counts across tenants of the business tables and the rollups: the owner's read, as
    # backfill's and reconcile's.
    owner = make_engine(
        settings.owner_url, pool_size=1, max_overflow=0, application_name="aqstream-jobs-check"
    )

    def check() -> dict[str, int] | None:
        differences = count_check(owner, now=datetime.now(UTC)).differences
        for kind in KINDS:
            metrics.missing_facts.labels(kind.value).set(differences.get(kind, 0))
        return {k.value: n for k, n in differences.items()} or None  # logged when not whole

    return [Task("warehouse_check", WAREHOUSE_CHECK_EVERY_S, check)]


def run_due(tasks: list[Task], now: float | None = None) -> dict[str, Any]:
    """Run every task that is due; answers what each returned (or the exception it raised)."""
    now = time.monotonic() if now is None else now
    outcomes: dict[str, Any] = {}
    for task in tasks:
        if task.due_at > now:
            continue
        task.due_at = now + task.every_s
        try:
            outcomes[task.name] = task.run()
            task.failures = 0
        except Exception as exc:  # retried on its next turn; the other tasks go on
            task.failures += 1
            outcomes[task.name] = exc
            log.exception("job_failed", job=task.name, failures=task.failures)
        else:
            if _worth_logging(outcomes[task.name]):
                log.info("job_done", job=task.name, result=repr(outcomes[task.name]))
    return outcomes


def _worth_logging(result: Any) -> bool:
    if isinstance(result, int):
        return result > 0
    values = getattr(result, "__dict__", None)
    if values is None:
        return result is not None
    return any(bool(v) for v in values.values())
