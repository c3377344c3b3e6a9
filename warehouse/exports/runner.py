"""The export runner: claims queued exports, streams each dataset out of PostgreSQL in its
tenant's context into the file's format and straight into S3 (multipart parts sent while the
rows still arrive; XLSX is written to a temporary file first), and records the outcome.

- Work is found across tenants by ``exports_queued()`` (ids only) and claimed in the tenant's own
  transaction with ``FOR UPDATE SKIP LOCKED``: several runners never take the same export.
- The rows are read in one REPEATABLE READ, read-only transaction with only ``app.tenant_id`` set
  (row level security applies; the count for progress and the rows come from one snapshot),
  through ``COPY (SELECT ...) TO STDOUT``: no statement timeout, memory bounded by a chunk.
- A reporter thread writes progress and a heartbeat every ``heartbeat_s``. An export whose
  heartbeat stopped (its process died) is queued again by ``recover_stale``, or failed after
  ``max_attempts``. Every write of the outcome is guarded by the attempt number, so a runner
  that lost its export to a recovery cannot overwrite the newer attempt.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from psycopg import sql
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.logging import get_logger
from domain.exports.models import Export, ExportFormat, ExportStatus
from domain.uow import UnitOfWork
from warehouse.exports import writers
from warehouse.exports.datasets import Filters, spec
from warehouse.exports.upload import MultipartSink

log = get_logger(__name__)

CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Share of the progress bar the rows take (the upload goes along with them, but for XLSX, which
# is sent once written); the last parts take it to 99; success is 100.
ROWS_SHARE = 95
COPY_CHUNK_BYTES = 1 << 20


def object_key(tenant_id: uuid.UUID, export_id: uuid.UUID, file_name: str) -> str:
    """``tenants/<tenant_id>/exports/<export id>/<file name>``, beside the tenant's media."""
    return f"tenants/{tenant_id}/exports/{export_id}/{file_name}"


@dataclass(frozen=True)
class Job:
    """A claimed export: everything the run needs, read once."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    attempt: int
    export: Export


class ExportLost(Exception):
    """The export was taken from this runner (recovered as stale) while it ran."""


# --- finding and claiming work ---------------------------------------------------------------


def queued(sessions: sessionmaker[Session], limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    with sessions() as session:
        rows = session.execute(text("SELECT id, tenant_id FROM exports_queued(:n)"), {"n": limit})
        return [(r.id, r.tenant_id) for r in rows]


def claim(
    sessions: sessionmaker[Session], export_id: uuid.UUID, tenant_id: uuid.UUID
) -> Job | None:
    """Take a queued export (None when another runner took it first)."""
    with UnitOfWork(sessions, tenant_id=tenant_id) as uow:
        export = uow.session.scalars(
            select(Export)
            .where(Export.id == export_id, Export.status == ExportStatus.QUEUED)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if export is None:
            return None
        now = datetime.now(UTC)
        export.status = ExportStatus.RUNNING
        export.attempts += 1
        export.progress = 0
        export.started_at = now
        export.heartbeat_at = now
        uow.session.flush()
        uow.commit()
        return Job(export.id, export.tenant_id, export.attempts, export)


def recover_stale(
    sessions: sessionmaker[Session],
    *,
    stale_after: timedelta,
    max_attempts: int,
    now: datetime | None = None,
    limit: int = 100,
) -> int:
    """Queue again (or fail, after ``max_attempts``) exports whose runner stopped reporting."""
    cutoff = (now or datetime.now(UTC)) - stale_after
    with sessions() as session:
        stale = session.execute(
            text("SELECT id, tenant_id FROM exports_stale(:cutoff, :n)"),
            {"cutoff": cutoff, "n": limit},
        ).all()
    recovered = 0
    for export_id, tenant_id in stale:
        with UnitOfWork(sessions, tenant_id=tenant_id) as uow:
            export = uow.session.scalars(
                select(Export)
                .where(
                    Export.id == export_id,
                    Export.status == ExportStatus.RUNNING,
                    Export.heartbeat_at < cutoff,
                )
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if export is None:
                continue
            if export.attempts >= max_attempts:
                export.status = ExportStatus.FAILED
                export.error = (
                    f"The export was interrupted {export.attempts} times (its runner stopped); "
                    "request it again"
                )
                export.finished_at = datetime.now(UTC)
            else:
                export.status = ExportStatus.QUEUED
                export.progress = 0
            uow.session.flush()
            uow.commit()
            recovered += 1
            log.warning(
                "export_recovered",
                export_id=str(export_id),
                attempts=export.attempts,
                status=export.status.value,
            )
    return recovered


# --- progress --------------------------------------------------------------------------------


class Reporter:
    """Progress and heartbeat, written by a thread of its own every ``every_s`` (0: at each
    report, from the caller's thread: tests see every step)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job: Job,
        every_s: float,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._job = job
        self._every_s = every_s
        self._on_write = on_write
        self.total: int | None = None
        self._rows = 0
        self._upload = 0.0  # 0..1
        self._written = -1
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Reporter:
        if self._every_s > 0:
            self._thread = threading.Thread(
                target=self._loop, name=f"export-{self._job.id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def percent(self) -> int:
        if self.total is None:
            return 0
        rows = min(1.0, self._rows / self.total) if self.total else 1.0
        return min(99, int(rows * ROWS_SHARE + self._upload * (99 - ROWS_SHARE)))

    def rows(self, n: int) -> None:
        if self.lost:
            raise ExportLost(str(self._job.id))
        self._rows = n
        if self._every_s == 0:
            self.write()

    def uploaded(self, share: float) -> None:
        self._upload = share
        if self._every_s == 0:
            self.write()

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.write()
            except Exception:  # a missed heartbeat is retried on the next turn
                log.exception("export_progress_write_failed", export_id=str(self._job.id))

    def write(self) -> None:
        percent = self.percent()
        with UnitOfWork(self._sessions, tenant_id=self._job.tenant_id) as uow:
            result = uow.session.execute(
                update(Export)
                .where(
                    Export.id == self._job.id,
                    Export.status == ExportStatus.RUNNING,
                    Export.attempts == self._job.attempt,
                )
                .values(progress=percent, heartbeat_at=datetime.now(UTC))
            )
            uow.commit()
        if result.rowcount == 0:
            self.lost = True
            return
        if percent != self._written and self._on_write is not None:
            self._on_write(percent)
        self._written = percent


# --- running ---------------------------------------------------------------------------------


def _copy_chunks(copy: Any) -> Iterator[bytes]:
    """COPY sends a message per row; hand them on in chunks of about COPY_CHUNK_BYTES."""
    buffer = bytearray()
    for data in copy:
        buffer += data
        if len(buffer) >= COPY_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _count_beside(
    url: Any, snapshot: str, job: Job, count_query: sql.Composed, reporter: Reporter
) -> None:
    """Count the dataset's rows in the export's snapshot (SET TRANSACTION SNAPSHOT) and hand
    the total to the progress reporter; a failure only leaves the bar without a total."""
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, application_name="aqstream-export-count") as pg:
            pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            pg.read_only = True
            pg.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            pg.execute(
                "SELECT set_config('app.tenant_id', %s, true), "
                "set_config('statement_timeout', '0', true)",
                (str(job.tenant_id),),
            )
            reporter.total = pg.execute(count_query).fetchone()[0]
            pg.rollback()
    except Exception:
        log.exception("export_count_failed", export_id=str(job.id))


def _read_and_write(
    sessions: sessionmaker[Session],
    job: Job,
    out: BinaryIO | None,
    path: Path,
    reporter: Reporter,
    statement_timeout_ms: int,
) -> int:
    """Stream the rows into ``out`` (CSV, Parquet) or the file ``path`` (XLSX, ``out`` None)."""
    export = job.export
    dataset = spec(export.dataset)
    filters = Filters(export.event_id, export.range_from, export.range_to)
    csv = export.format is ExportFormat.CSV
    query = dataset.query(filters, export.personal_data, neutralise_formulas=csv)
    with sessions() as session:
        conn = session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )
        conn.execute(
            text(
                "SELECT set_config('app.tenant_id', :tenant, true), "
                "set_config('app.user_id', '', true), "
                "set_config('statement_timeout', :timeout, true), "
                "set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true)"
            ),
            {"tenant": str(job.tenant_id), "timeout": str(statement_timeout_ms)},
        )
        pg = conn.connection.driver_connection
        counter: threading.Thread | None = None
        with pg.cursor() as cursor:
            if export.format is ExportFormat.XLSX:
                # Exact: the sheet's limit is checked before anything is written.
                total = cursor.execute(dataset.count_query(filters)).fetchone()[0]
                if total > writers.XLSX_MAX_ROWS:
                    raise writers.TooManyRowsForXlsx(total)
            else:
                # The exact count runs beside the COPY, in the same snapshot, on a connection
                # of its own: the bar is exact once it arrives (0 % until then), and the rows
                # do not wait for a second scan of the dataset's query.
                snapshot = cursor.execute("SELECT pg_export_snapshot()").fetchone()[0]
                counter = threading.Thread(
                    target=_count_beside,
                    args=(conn.engine.url, snapshot, job, dataset.count_query(filters), reporter),
                    name=f"export-count-{job.id}",
                    daemon=True,
                )
                counter.start()
                total = None
            if total is not None:
                reporter.total = total
            reporter.rows(0)
            if csv:
                statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(query)
                with cursor.copy(statement) as copy:
                    writers.write_csv(_copy_chunks(copy), out, reporter.rows)
                rows = cursor.rowcount
            else:
                statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
                schema = dataset.schema(export.personal_data)
                with cursor.copy(statement) as copy:
                    batches = writers.arrow_batches(_copy_chunks(copy), schema)
                    if export.format is ExportFormat.PARQUET:
                        described = schema.with_metadata(range_metadata(export))
                        rows = writers.write_parquet(batches, described, out, reporter.rows)
                    else:
                        rows = writers.write_xlsx(batches, schema, path, reporter.rows)
        if counter is not None:
            counter.join()  # the snapshot it imports lives as long as this transaction
        session.rollback()
    reporter.rows(rows)
    return rows


def range_metadata(export: Export) -> dict[bytes, bytes]:
    """What a Parquet file says of itself (key-value metadata of its schema): the dataset, the
    event and the range exactly as asked (ISO 8601, UTC; empty: open), so that a reader (the
    notebooks) can refuse to compare files of different ranges (docs/exports.md)."""

    def moment(value: datetime | None) -> bytes:
        return value.astimezone(UTC).isoformat().encode() if value is not None else b""

    return {
        b"aqstream.dataset": str(export.dataset.value).encode(),
        b"aqstream.event_id": str(export.event_id or "").encode(),
        b"aqstream.range_from": moment(export.range_from),
        b"aqstream.range_to": moment(export.range_to),
    }


def _sink(s3: Any, bucket: str, job: Job) -> MultipartSink:
    export = job.export
    return MultipartSink(
        s3,
        bucket,
        object_key(job.tenant_id, job.id, export.file_name),
        {
            "ContentType": CONTENT_TYPES[export.format],
            "ContentDisposition": f'attachment; filename="{export.file_name}"',
        },
    )


def _send_file(path: Path, sink: MultipartSink, reporter: Reporter) -> None:
    """An XLSX file, written whole first (a zip), into the upload."""
    size = path.stat().st_size
    with path.open("rb") as file:
        while chunk := file.read(COPY_CHUNK_BYTES * 8):
            sink.write(chunk)
            reporter.uploaded(sink.size / size if size else 1.0)


def _finish(sessions: sessionmaker[Session], job: Job, **values: Any) -> bool:
    with UnitOfWork(sessions, tenant_id=job.tenant_id) as uow:
        result = uow.session.execute(
            update(Export)
            .where(
                Export.id == job.id,
                Export.status == ExportStatus.RUNNING,
                Export.attempts == job.attempt,
            )
            .values(finished_at=datetime.now(UTC), heartbeat_at=datetime.now(UTC), **values)
        )
        uow.commit()
    return result.rowcount == 1


def describe(exc: BaseException) -> str:
    """The error as the requester reads it: our own refusals say what to do; anything else
    names the failure without internals."""
    if isinstance(exc, writers.TooManyRowsForXlsx):
        return f"{exc.code}: {exc}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:500]


def run(
    sessions: sessionmaker[Session],
    s3: Any,
    bucket: str,
    job: Job,
    *,
    heartbeat_s: float = 1.0,
    statement_timeout_ms: int = 0,
    on_progress: Callable[[int], None] | None = None,
    spool: bool = False,
) -> ExportStatus:
    """Run a claimed export to its end; answers the status it ended in.

    ``spool``: write CSV and Parquet to a temporary file and upload it afterwards, instead of
    uploading parts while the rows arrive (XLSX is always spooled)."""
    started = time.monotonic()
    sink = _sink(s3, bucket, job)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="aqstream-export-") as tmp,
            Reporter(sessions, job, heartbeat_s, on_progress) as reporter,
        ):
            path = Path(tmp) / job.export.file_name
            try:
                if job.export.format is ExportFormat.XLSX:
                    rows = _read_and_write(
                        sessions, job, None, path, reporter, statement_timeout_ms
                    )
                    read_s = time.monotonic() - started
                    _send_file(path, sink, reporter)
                elif spool:
                    with path.open("wb") as file:
                        rows = _read_and_write(
                            sessions, job, file, path, reporter, statement_timeout_ms
                        )
                    read_s = time.monotonic() - started
                    _send_file(path, sink, reporter)
                else:
                    rows = _read_and_write(
                        sessions, job, sink, path, reporter, statement_timeout_ms
                    )
                    read_s = time.monotonic() - started
                size = sink.finish()
            except BaseException:
                sink.abort()
                raise
            reporter.uploaded(1.0)
            if reporter.lost:
                raise ExportLost(str(job.id))
        key = object_key(job.tenant_id, job.id, job.export.file_name)
        done = _finish(
            sessions,
            job,
            status=ExportStatus.SUCCEEDED,
            progress=100,
            rows=rows,
            storage_key=key,
            size_bytes=size,
            error=None,
        )
    except ExportLost:
        log.warning("export_lost", export_id=str(job.id), attempt=job.attempt)
        return ExportStatus.RUNNING
    except Exception as exc:
        log.exception("export_failed", export_id=str(job.id), dataset=job.export.dataset.value)
        _finish(sessions, job, status=ExportStatus.FAILED, error=describe(exc))
        return ExportStatus.FAILED
    if not done:
        log.warning("export_lost", export_id=str(job.id), attempt=job.attempt)
        return ExportStatus.RUNNING
    if on_progress is not None:
        on_progress(100)
    log.info(
        "export_done",
        export_id=str(job.id),
        dataset=job.export.dataset.value,
        format=job.export.format.value,
        rows=rows,
        size_bytes=size,
        seconds=round(time.monotonic() - started, 3),
        read_s=round(read_s, 3),
    )
    return ExportStatus.SUCCEEDED


def run_pending(
    sessions: sessionmaker[Session], s3: Any, bucket: str, *, limit: int = 100, **options: Any
) -> dict[uuid.UUID, ExportStatus]:
    """Claim and run queued exports one after another, in this thread (tests, one-off runs)."""
    outcomes = {}
    for export_id, tenant_id in queued(sessions, limit):
        job = claim(sessions, export_id, tenant_id)
        if job is not None:
            outcomes[export_id] = run(sessions, s3, bucket, job, **options)
    return outcomes


# --- the jobs process ------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    recovered: int
    started: int


class ExportWorker:
    """For ``aqstream jobs``: each tick recovers stale exports and starts queued ones on a pool
    of ``workers`` threads, so a long export never holds up the other periodic jobs."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        s3: Any,
        bucket: str,
        *,
        workers: int,
        stale_after: timedelta,
        max_attempts: int,
        statement_timeout_ms: int = 0,
        heartbeat_s: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._s3 = s3
        self._bucket = bucket
        self._workers = workers
        self._stale_after = stale_after
        self._max_attempts = max_attempts
        self._options = {"statement_timeout_ms": statement_timeout_ms, "heartbeat_s": heartbeat_s}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="export")
        self._running: set[Future[ExportStatus]] = set()

    def tick(self) -> Tick:
        recovered = recover_stale(
            self._sessions, stale_after=self._stale_after, max_attempts=self._max_attempts
        )
        self._running = {f for f in self._running if not f.done()}
        free = self._workers - len(self._running)
        started = 0
        if free > 0:
            for export_id, tenant_id in queued(self._sessions, free * 4):
                job = claim(self._sessions, export_id, tenant_id)
                if job is None:
                    continue
                future = self._pool.submit(
                    run, self._sessions, self._s3, self._bucket, job, **self._options
                )
                self._running.add(future)
                started += 1
                if started == free:
                    break
        return Tick(recovered, started)

    def wait(self, timeout_s: float | None = None) -> None:
        """Until every started export has ended (tests, shutdown)."""
        for future in list(self._running):
            future.result(timeout=timeout_s)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
