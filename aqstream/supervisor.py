"""Process supervision for `aqstream run`: start children, restart the ones that die, stop all.

Each child runs in its own process group, so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children in the reverse order of their start (SIGTERM, then SIGKILL of the
whole group on timeout); a second Ctrl-C meanwhile is passed on to the child being stopped.

With a log folder, each child's stdout and stderr are appended to ``<folder>/<child>.log`` and
only its warnings and errors reach the terminal, one line each, prefixed with its name
(``Terminal``); a child marked ``echo_on_stop`` (the demo, whose totals are its last words) has
everything it prints after it was asked to stop shown too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from core.logging import get_logger

log = get_logger(__name__)

STOP_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 30.0
LINE_LIMIT = 400  # characters of a child's line shown on the terminal

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# core.logging's console renderer: "<time> [<level>   ] <event> ..."
_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT\S+\s+\[(?P<level>[a-z]+)\s*\]")
_PY_WARNING = re.compile(r"^\S+:\d+: \w*Warning: ")
_LOUD = frozenset({"warning", "error", "critical", "exception"})


def record_level(line: str) -> str | None:
    """The level of a log record of ours (console or JSON rendering); None: not a record."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            level = json.loads(line).get("level")
            return level if isinstance(level, str) else None
        return None
    record = _RECORD.match(line)
    return record["level"] if record else None


class LineFilter:
    """Which lines of one child's output the terminal shows: its log records at warning level
    and above, Python's warnings, and the last line of a traceback that no record carries (a
    crash). Everything else (info records, access logs, banners) stays in the child's file."""

    def __init__(self) -> None:
        self._after_record = False  # the previous line was a log record (its traceback follows)
        self._traceback: bool | None = None  # None: not in one; else whether to show its end

    def __call__(self, raw: str) -> str | None:
        line = _ANSI.sub("", raw).rstrip()
        level = record_level(line)
        if level is not None:
            self._after_record, self._traceback = level in _LOUD, None
            return line if level in _LOUD else None
        if line.startswith("Traceback (most recent call last)"):
            if self._traceback is None:
                self._traceback = not self._after_record
            return None
        if self._traceback is not None:
            if not line or line[0].isspace() or line.startswith(("During handling", "The above")):
                return None
            show, self._traceback = self._traceback, None
            self._after_record = not show  # a chained traceback belongs to the same record
            return line if show else None
        self._after_record = False
        return line if _PY_WARNING.match(line) else None


_VARYING = re.compile(
    r"^\d{4}-\d\d-\d\dT\S+\s+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+"
)
REPEAT_WINDOW_S = 60.0


class Repeats:
    """Collapses a child's repeated loud lines (a broker that is down makes every client say so
    several times a second): a message, compared with its times, ids and numbers blanked, is
    shown once per window; how many like it were held back is said when it is shown again."""

    def __init__(
        self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # message -> (last shown at, held back)

    def __call__(self, line: str) -> str | None:
        key, now = _VARYING.sub("#", line), self.clock()
        shown_at, held = self._seen.get(key, (None, 0))
        if shown_at is not None and now - shown_at < self.window_s:
            self._seen[key] = (shown_at, held + 1)
            return None
        if len(self._seen) >= 1000:  # bounded: forget the messages shown longest ago
            for stale in sorted(self._seen, key=lambda k: self._seen[k][0])[:500]:
                del self._seen[stale]
        self._seen[key] = (now, 0)
        return f"{line} (and {held} more like it before)" if held else line


class Terminal:
    """Where the children's chosen lines go (stdout by default), one writer at a time."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def show(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream or sys.stdout, flush=True)


@dataclass
class Child:
    """``echo_on_stop``: once asked to stop, everything the child prints (but its info records)
    goes to the terminal too; ``stop_timeout``: how long it may take to stop."""

    name: str
    argv: list[str]
    env: dict[str, str]
    echo_on_stop: bool = False
    stop_timeout: float = STOP_TIMEOUT_S
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    log_path: Path | None = None
    terminal: Terminal | None = None
    stopping: bool = False
    _pump: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.log_path is None:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, process_group=0
            )
        else:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, process_group=0,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
            self._pump = threading.Thread(
                target=self._copy, args=(self.proc.stdout,), name=f"log-{self.name}", daemon=True
            )
            self._pump.start()
        self.started_at = time.monotonic()
        log.info("child_started", child=self.name, pid=self.proc.pid)

    def _copy(self, output: IO[bytes]) -> None:
        """The child's output, line by line, to its file and (some of it) to the terminal."""
        assert self.log_path is not None
        terminal = self.terminal or Terminal()
        keep, repeats = LineFilter(), Repeats()
        with output, open(self.log_path, "ab") as file:
            for raw in iter(output.readline, b""):
                file.write(raw)
                file.flush()
                text = raw.decode(errors="replace").rstrip("\n")
                shown = keep(text)
                if shown is not None:
                    shown = repeats(shown)
                if shown is not None:
                    if len(shown) > LINE_LIMIT:
                        shown = shown[: LINE_LIMIT - 1] + "…"
                    terminal.show(f"{self.name} | {shown}")
                elif (
                    self.stopping
                    and self.echo_on_stop
                    and record_level(_ANSI.sub("", text)) is None
                ):
                    terminal.show(text)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float | None = None) -> None:
        timeout = self.stop_timeout if timeout is None else timeout
        if self.proc is None:
            return
        self.stopping = True
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
        if self._pump is not None:  # its last words (the demo's totals) are shown before going on
            self._pump.join(timeout=5)
        log.info("child_stopped", child=self.name, code=self.proc.returncode)

    def interrupt(self) -> None:
        """Ctrl-C, passed on (the demo then skips reading its totals back)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)  # type: ignore[union-attr]


class Supervisor:
    """Keeps a set of children running until asked to stop."""

    def __init__(
        self,
        children: list[Child],
        watch: Callable[[], None] | None = None,
        watch_every_s: float = 2.0,
        *,
        log_dir: Path | None = None,
        terminal: Terminal | None = None,
    ) -> None:
        """``watch``: called every ``watch_every_s`` while running (the local stack's servers
        are revived by it). ``log_dir``: each child's output goes to ``<log_dir>/<name>.log``
        (appended) and only its warnings and errors to ``terminal``; without it, the children
        write where the supervisor does."""
        self.children = children
        self.watch = watch
        self.watch_every_s = watch_every_s
        self._stopping = False
        self._current: Child | None = None  # the child being stopped
        if log_dir is not None:
            terminal = terminal or Terminal()
            for child in children:
                child.log_path = log_dir / f"{child.name}.log"
                child.terminal = terminal

    def request_stop(self, *_: object) -> None:
        if self._stopping and self._current is not None:
            self._current.interrupt()
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
        """Last started, first stopped (the demo, whose totals then reach the terminal)."""
        self._stopping = True
        for child in reversed(self.children):
            self._current = child
            child.stop()
        self._current = None
