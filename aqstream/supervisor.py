"""Process supervision for `aqstream run`: start children, restart the ones that die, stop all.

Each child runs in its own process group, so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children in order (SIGTERM, then SIGKILL of the whole group on timeout).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.logging import get_logger

log = get_logger(__name__)

STOP_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.DEVNULL, process_group=0
        )
        self.started_at = time.monotonic()
        log.info("child_started", child=self.name, pid=self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("child_killed", child=self.name, pid=self.proc.pid)
        # Whatever the child left in its group (workers, helpers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        log.info("child_stopped", child=self.name, code=self.proc.returncode)


class Supervisor:
    """Keeps a set of children running until asked to stop."""

    def __init__(
        self,
        children: list[Child],
        watch: Callable[[], None] | None = None,
        watch_every_s: float = 2.0,
    ) -> None:
        """``watch``: called every ``watch_every_s`` while running (the local stack's servers
        are revived by it)."""
        self.children = children
        self.watch = watch
        self.watch_every_s = watch_every_s
        self._stopping = False

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def run(self, on_started: Callable[[], None] | None = None, poll_s: float = 0.2) -> None:
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for child in self.children:
                child.start()
            if on_started is not None:
                on_started()
            watched = time.monotonic()
            while not self._stopping:
                if self.watch is not None and time.monotonic() - watched >= self.watch_every_s:
                    self._watch()
                    watched = time.monotonic()
                self._tick()
                time.sleep(poll_s)
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _watch(self) -> None:
        try:
            self.watch()  # type: ignore[misc]
        except Exception:  # a failed revival is retried at the next look, not fatal
            log.exception("watch_failed")

    def _tick(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.alive():
                continue
            if child.proc is not None and child.next_start == 0.0:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.proc.pid, signal.SIGKILL)  # its orphans must not pile up
                uptime = now - child.started_at
                child.restarts = 0 if uptime > 60 else child.restarts + 1
                backoff = min(MAX_BACKOFF_S, 0.5 * 2**child.restarts)
                child.next_start = now + backoff
                log.warning(
                    "child_exited",
                    child=child.name,
                    code=child.proc.returncode,
                    restart_in_s=backoff,
                )
            if now >= child.next_start:
                child.next_start = 0.0
                child.start()

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()
