"""The supervisor restarts a child that dies and stops every child, with its process group."""

from __future__ import annotations

import os
import sys
import time

from aqstream.supervisor import Child, Supervisor
from tests.procs import alive


def test_crashed_child_is_restarted_and_stop_kills_the_whole_group(tmp_path) -> None:
    marker = tmp_path / "grandchild.pid"
    # The child starts a grandchild in its own group, then dies once; the supervisor must restart
    # it and, on stop, leave neither the child nor the grandchild running.
    script = (
        "import subprocess, sys, time, pathlib\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "first = not m.exists()\n"
        "m.open('a').write(f'{p.pid}\\n')\n"
        "if first: sys.exit(3)\n"
        "time.sleep(600)\n"
    )
    child = Child("sleeper", [sys.executable, "-c", script], dict(os.environ))
    supervisor = Supervisor([child])
    child.start()  # what Supervisor.run does first; then we drive its loop by hand
    first_pid = child.proc.pid
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (child.proc.pid == first_pid or not marker.exists()):
        supervisor._tick()
        time.sleep(0.05)
    assert child.proc.pid != first_pid, "the crashed child was not restarted"
    while time.monotonic() < deadline and not child.alive():
        supervisor._tick()
        time.sleep(0.05)
    time.sleep(0.3)
    orphan, grandchild = (int(line) for line in marker.read_text().split())
    assert not alive(orphan), "the crashed child's group was not cleaned up"
    assert alive(child.proc.pid) and alive(grandchild)
    supervisor.stop_all()
    time.sleep(0.2)
    assert not alive(child.proc.pid)
    assert not alive(grandchild)


def test_the_watch_runs_while_supervising_and_its_failures_are_not_fatal() -> None:
    """`aqstream run` revives the local stack's servers through the watch."""
    calls: list[float] = []

    def watch() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("a server could not be started this time")
        if len(calls) == 3:
            supervisor.request_stop()

    supervisor = Supervisor([], watch=watch, watch_every_s=0.1)
    started = time.monotonic()
    supervisor.run(poll_s=0.02)
    assert len(calls) == 3  # the failed look did not end the loop
    assert calls[0] - started >= 0.1 and calls[2] - calls[1] >= 0.1
