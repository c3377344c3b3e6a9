"""The background jobs process: every task runs on its own interval against the real servers, and
one failing task neither stops the others nor loses its next turn."""

from __future__ import annotations

from sqlalchemy import Engine

from aqstream.jobs import Task, build_tasks, run_due
from core.settings import Settings
from domain.db import make_sessionmaker


def test_every_job_runs_against_the_real_servers(settings: Settings, app_engine: Engine) -> None:
    tasks = build_tasks(settings, make_sessionmaker(app_engine), interval=1.0)
    assert {t.name for t in tasks} == {
        "sweep",
        "notifications",
        "reminders",
        "media_cleanup",
        "exports",
        "warehouse_partitions",
    }
    outcomes = run_due(tasks, now=100.0)
    assert set(outcomes) == {t.name for t in tasks}
    failed = {name: out for name, out in outcomes.items() if isinstance(out, Exception)}
    assert not failed
    # Nothing is due again before its interval.
    assert run_due(tasks, now=100.5) == {}
    assert set(run_due(tasks, now=101.0)) == {"sweep", "notifications", "exports"}


def test_a_failing_job_is_retried_on_its_turn_and_the_others_go_on() -> None:
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    tasks = [Task("broken", 10.0, broken), Task("fine", 10.0, lambda: calls.append("fine") or 1)]
    first = run_due(tasks, now=0.0)
    assert isinstance(first["broken"], RuntimeError)
    assert first["fine"] == 1
    assert tasks[0].failures == 1
    assert run_due(tasks, now=5.0) == {}
    again = run_due(tasks, now=10.0)
    assert isinstance(again["broken"], RuntimeError)
    assert tasks[0].failures == 2
    assert calls == ["broken", "fine", "broken", "fine"]
