"""The export runner's guarantees: the per-organization limit, progress from 0 to 100 as the
database shows it, failures recorded with their reason, abandoned exports recovered, and the
jobs process running exports beside its other tasks."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from domain.exports import service
from domain.exports.models import ExportStatus
from tests.exports.conftest import Exports, Org
from tests.factories import assert_error
from warehouse.exports import runner, writers


def _status(exports: Exports, export_id: str) -> dict:
    (row,) = exports.rows(
        "SELECT status::text, progress, rows, error, attempts, storage_key FROM exports "
        "WHERE id = :id",
        id=export_id,
    )
    return row


def test_at_most_two_active_exports_per_organization(
    exports: Exports, org: Org, other: Org
) -> None:
    first = exports.requested(org, dataset="registrations", format="csv")
    exports.requested(org, org.analyst, dataset="payments", format="parquet")
    third = exports.request(org, org.moderator, dataset="attendance", format="xlsx")
    error = assert_error(third, 429, "too_many_exports")
    assert third.headers["Retry-After"].isdigit()
    assert error["details"] == {"active": 2, "limit": 2}
    # The limit is the organization's: another one is not held up.
    exports.requested(other, dataset="registrations", format="csv")
    # A running export still counts; once one has finished, a slot is free again.
    job = runner.claim(exports.sessions, uuid.UUID(first["id"]), uuid.UUID(org.id))
    assert job is not None
    assert_error(exports.request(org, dataset="funnel", format="csv"), 429, "too_many_exports")
    assert runner.run(exports.sessions, exports.s3, exports.bucket, job) is ExportStatus.SUCCEEDED
    exports.requested(org, dataset="funnel", format="csv")


def test_progress_goes_from_0_to_100_as_the_database_shows_it(
    exports: Exports, org: Org, monkeypatch
) -> None:
    # Small chunks and blocks, so the handful of rows arrive in several steps.
    monkeypatch.setattr(runner, "COPY_CHUNK_BYTES", 64)
    monkeypatch.setattr(writers, "BLOCK_BYTES", 512)
    # XLSX: its exact count comes first (the sheet's limit), so every step has a total. (CSV
    # and Parquet count beside the COPY: test_the_count_beside_the_copy_sees_its_snapshot.)
    export = exports.requested(org, dataset="registrations", format="xlsx")
    assert (export["status"], export["progress"]) == ("queued", 0)
    seen: list[tuple[int, int, str]] = []

    def observed(percent: int) -> None:
        row = _status(exports, export["id"])
        seen.append((percent, row["progress"], row["status"]))

    (job_id,) = exports.run(heartbeat_s=0, on_progress=observed)
    assert str(job_id) == export["id"]
    percents = [p for p, _, _ in seen]
    assert [p for p, _, _ in seen] == [db for _, db, _ in seen]  # each step was in the database
    assert percents[0] == 0 and percents[-1] == 100
    assert percents == sorted(percents)
    assert any(0 < p < 95 for p in percents), percents  # rows arriving, not only start and end
    assert [s for _, _, s in seen] == ["running"] * (len(seen) - 1) + ["succeeded"]
    assert exports.get(export["id"], org.owner)["progress"] == 100


def test_the_count_beside_the_copy_sees_its_snapshot(exports: Exports, org: Org) -> None:
    """The total for the progress bar is counted on another connection in the export's
    snapshot: rows committed meanwhile are in neither."""
    import threading

    from domain.exports.models import Dataset
    from warehouse.exports.datasets import Filters, spec

    class Total:
        total = None

    dataset = spec(Dataset.REGISTRATIONS)
    engine = exports.client.app.state.aq.engine
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": org.id})
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            before = conn.execute(
                text(dataset.count_query(Filters()).as_string(conn.connection.driver_connection))
            ).scalar_one()
            # Meanwhile, a new registration is committed.
            org.organizer.participant(org.event["id"], org.free["id"], name="latecomer")
            job = runner.Job(uuid.uuid4(), uuid.UUID(org.id), 1, None)  # type: ignore[arg-type]
            reporter = Total()
            thread = threading.Thread(
                target=runner._count_beside,
                args=(engine.url, snapshot, job, dataset.count_query(Filters()), reporter),
            )
            thread.start()
            thread.join()
    assert before > 0
    assert reporter.total == before
    (now,) = exports.rows("SELECT count(*) AS n FROM registrations WHERE tenant_id = :t", t=org.id)
    assert now["n"] == before + 1


def test_a_failure_is_recorded_with_its_reason(exports: Exports, org: Org) -> None:
    export = exports.requested(org, dataset="payments", format="csv")
    outcomes = runner.run_pending(exports.sessions, exports.s3, "no-such-bucket-here")
    assert outcomes == {uuid.UUID(export["id"]): ExportStatus.FAILED}
    seen = exports.get(export["id"], org.owner)
    assert seen["status"] == "failed"
    assert "NoSuchBucket" in seen["error"]
    assert seen["download_url"] is None and seen["finished_at"] is not None
    # A failed export no longer counts against the limit.
    assert _status(exports, export["id"])["status"] == "failed"


def test_too_many_rows_for_xlsx_is_refused_before_starting(
    exports: Exports, org: Org, monkeypatch
) -> None:
    monkeypatch.setattr(service, "XLSX_MAX_ROWS", 2)
    before = exports.rows("SELECT count(*) AS n FROM exports WHERE tenant_id = :t", t=org.id)
    response = exports.request(org, dataset="registrations", format="xlsx")
    error = assert_error(response, 422, "too_many_rows_for_xlsx")
    assert error["details"]["limit"] == 2 and error["details"]["rows"] > 2
    after = exports.rows("SELECT count(*) AS n FROM exports WHERE tenant_id = :t", t=org.id)
    assert after == before  # nothing queued
    # CSV and Parquet have no such limit.
    exports.requested(org, dataset="registrations", format="csv")


def test_rows_that_grew_past_the_xlsx_limit_fail_the_run_clearly(
    exports: Exports, org: Org, monkeypatch
) -> None:
    export = exports.requested(org, dataset="registrations", format="xlsx")
    monkeypatch.setattr(writers, "XLSX_MAX_ROWS", 2)
    exports.run()
    seen = exports.get(export["id"], org.owner)
    assert seen["status"] == "failed"
    assert seen["error"].startswith("too_many_rows_for_xlsx: ")


def test_an_abandoned_export_is_queued_again_and_then_completes(exports: Exports, org: Org) -> None:
    export = exports.requested(org, dataset="attendance", format="parquet")
    job = runner.claim(exports.sessions, uuid.UUID(export["id"]), uuid.UUID(org.id))
    assert job is not None
    assert runner.claim(exports.sessions, job.id, job.tenant_id) is None  # taken once only
    # The process died: no heartbeat for longer than the stale limit.
    with exports.owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE exports SET heartbeat_at = now() - interval '10 minutes' WHERE id = :id"),
            {"id": export["id"]},
        )
    stale = timedelta(minutes=5)
    assert runner.recover_stale(exports.sessions, stale_after=stale, max_attempts=3) == 1
    assert _status(exports, export["id"])["status"] == "queued"
    assert exports.run() == {job.id: ExportStatus.SUCCEEDED}
    row = _status(exports, export["id"])
    assert (row["status"], row["attempts"]) == ("succeeded", 2)
    # The first runner, had it lived on, can no longer write over the second attempt.
    assert runner._finish(exports.sessions, job, status=ExportStatus.FAILED, error="late") is False
    assert _status(exports, export["id"])["status"] == "succeeded"


def test_an_export_abandoned_too_often_fails(exports: Exports, org: Org) -> None:
    export = exports.requested(org, dataset="registrations", format="csv")
    for _ in range(2):
        assert runner.claim(exports.sessions, uuid.UUID(export["id"]), uuid.UUID(org.id))
        with exports.owner_engine.begin() as conn:
            conn.execute(
                text("UPDATE exports SET heartbeat_at = now() - interval '1 hour' WHERE id = :id"),
                {"id": export["id"]},
            )
        runner.recover_stale(exports.sessions, stale_after=timedelta(minutes=1), max_attempts=2)
    row = _status(exports, export["id"])
    assert row["status"] == "failed" and row["attempts"] == 2
    assert "interrupted 2 times" in row["error"]


def test_a_live_export_is_not_taken_for_abandoned(exports: Exports, org: Org) -> None:
    export = exports.requested(org, dataset="registrations", format="csv")
    job = runner.claim(exports.sessions, uuid.UUID(export["id"]), uuid.UUID(org.id))
    assert (
        runner.recover_stale(exports.sessions, stale_after=timedelta(minutes=1), max_attempts=3)
        == 0
    )
    assert runner.run(exports.sessions, exports.s3, exports.bucket, job) is ExportStatus.SUCCEEDED


def test_the_jobs_task_runs_exports_on_its_threads(exports: Exports, org: Org) -> None:
    worker = runner.ExportWorker(
        exports.sessions,
        exports.s3,
        exports.bucket,
        workers=2,
        stale_after=timedelta(minutes=1),
        max_attempts=3,
    )
    try:
        a = exports.requested(org, dataset="registrations", format="parquet")
        b = exports.requested(org, dataset="traffic", format="xlsx")
        tick = worker.tick()
        assert tick.started == 2
        worker.wait(timeout_s=60)
    finally:
        worker.close()
    for export in (a, b):
        seen = exports.get(export["id"], org.owner)
        assert (seen["status"], seen["progress"]) == ("succeeded", 100)
        assert seen["download_url"]
