"""The API as a separate uvicorn process, for load tests and benchmarks (real parallelism)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from aqstream.stack.servers import free_port
from core.settings import PROJECT_ROOT, Settings


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment a child process needs to read ``settings`` back (servers, database,
    roles, signing keys), plus ``overrides`` (``AQSTREAM_*`` names)."""
    env = {
        **os.environ,
        "AQSTREAM_ENVIRONMENT": settings.environment,
        "AQSTREAM_DATABASE_URL": settings.owner_url.render_as_string(hide_password=False),
        "AQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "AQSTREAM_KAFKA_FLAVOR": settings.kafka_flavor,
        "AQSTREAM_REDIS_URL": settings.redis_url or "",
        "AQSTREAM_S3_ENDPOINT": settings.s3_endpoint or "",
        "AQSTREAM_S3_BUCKET": settings.s3_bucket,
        "AQSTREAM_APP_DB_USER": settings.app_db_user,
        "AQSTREAM_APP_DB_PASSWORD": settings.app_db_password.get_secret_value(),
        # Tokens issued by the parent must verify in the child.
        "AQSTREAM_JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "AQSTREAM_TICKET_SIGNING_KEY": settings.ticket_signing_key.get_secret_value(),
    }
    if settings.jwt_keys:
        env["AQSTREAM_JWT_KEYS"] = settings.jwt_keys
    env.update(overrides)
    return env


@contextlib.contextmanager
def child_process(
    argv: list[str], settings: Settings, log: Path, **overrides: str
) -> Iterator[subprocess.Popen]:
    """``argv`` run from the project with ``settings`` (and ``overrides``) in its environment,
    its output in ``log``, in a session of its own (a terminal's Ctrl-C reaches only the caller);
    stopped with SIGTERM, then its whole process group killed after 20 s."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=settings_env(settings, **overrides),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextlib.contextmanager
def api_server(
    settings: Settings, *, workers: int, log: Path, **overrides: str
) -> Iterator[tuple[str, int]]:
    """``uvicorn --factory api.app:create_app`` with ``workers`` processes, healthy: (URL, PID).

    A ``child_process``: its own session, stopped by the caller."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with child_process(argv, settings, log, **overrides) as proc:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API server exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url, proc.pid
