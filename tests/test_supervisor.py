"""The supervisor restarts a child that dies and stops every child, with its process group."""

from __future__ import annotations

import io
import os
import sys
import threading
import time

from aqstream.supervisor import Child, LineFilter, Repeats, Supervisor, Terminal
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


def test_the_terminal_shows_warnings_errors_and_crashes_one_line_each() -> None:
    keep = LineFilter()
    lines = [
        "2026-03-01T10:00:00.000001Z [info     ] api_started          [aqstream] port=8000",
        '2026-03-01T10:00:01.000001Z [info     ] 127.0.0.1:5 - "GET /health HTTP/1.1" 200 [uvicorn.access]',
        "2026-03-01T10:00:02.000001Z [warning  ] visit_failed         [aqstream.simulate] n=3",
        "2026-03-01T10:00:03.000001Z [error    ] boom                 [streams]",
        "Traceback (most recent call last):",  # the record's own: not shown again
        '  File "x.py", line 1, in <module>',
        "ZeroDivisionError: division by zero",
        "┌ƒaµS† v0.11 ┐  (a banner)",
        '{"event": "slow", "level": "warning", "timestamp": "2026-03-01T10:00:04Z"}',
        '{"event": "fine", "level": "info"}',
        "/x/y.py:12: DeprecationWarning: old",
        "    old()",
        "Traceback (most recent call last):",  # a crash no record carries: its last line
        '  File "cli.py", line 9, in main',
        "RuntimeError: the port is taken",
        "plain output",
    ]
    shown = [line for line in map(keep, lines) if line is not None]
    assert shown == [lines[2], lines[3], lines[8], lines[10], "RuntimeError: the port is taken"]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_s_output_goes_to_its_file_and_only_its_warnings_to_the_terminal(
    tmp_path,
) -> None:
    script = (
        "import sys\n"
        "print('2026-03-01T10:00:00.1Z [info     ] hello [x]', flush=True)\n"
        "print('2026-03-01T10:00:00.2Z [info     ] 127.0.0.1:1 - \"GET / HTTP/1.1\" 200', flush=True)\n"
        "print('2026-03-01T10:00:00.3Z [warning  ] careful [x] n=1', file=sys.stderr, flush=True)\n"
        "raise SystemExit(0)\n"
    )
    out = io.StringIO()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "talker.log").write_text("an earlier run\n")
    child = Child("talker", _python(script), dict(os.environ))
    supervisor = Supervisor([child], log_dir=tmp_path / "logs", terminal=Terminal(out))
    child.start()
    child.proc.wait(timeout=15)
    supervisor.stop_all()
    written = (tmp_path / "logs" / "talker.log").read_text()
    assert written.startswith("an earlier run\n")  # appended
    assert "hello" in written and '"GET / HTTP/1.1" 200' in written and "careful" in written
    assert out.getvalue() == "talker | 2026-03-01T10:00:00.3Z [warning  ] careful [x] n=1\n"


def test_the_demo_stops_first_and_its_totals_reach_the_terminal(tmp_path) -> None:
    """The last child started is stopped first; what it prints once asked to stop (the demo's
    totals) is shown; the others are still running meanwhile; a second Ctrl-C is passed on."""
    marker = tmp_path / "service-stopped"
    service = (
        "import signal, sys, time, pathlib\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "signal.signal(signal.SIGTERM, lambda *_: (m.write_text('x'), sys.exit(0)))\n"
        "time.sleep(600)\n"
    )
    demo = (
        "import signal, sys, time, pathlib\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "def totals(*_):\n"
        "    time.sleep(0.3)\n"
        "    print('2026-03-01T10:00:00.1Z [info     ] reading totals [x]')\n"
        "    print('seed 1: 42 visits; service running:', not m.exists())\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, totals)\n"
        "print('before the stop: not shown', flush=True)\n"
        "time.sleep(600)\n"
    )
    out = io.StringIO()
    children = [
        Child("service", _python(service), dict(os.environ)),
        Child("demo", _python(demo), dict(os.environ), echo_on_stop=True),
    ]
    supervisor = Supervisor(children, log_dir=tmp_path / "logs", terminal=Terminal(out))
    for child in children:
        child.start()
    time.sleep(1.0)  # both have installed their handlers
    supervisor.stop_all()
    assert out.getvalue() == "seed 1: 42 visits; service running: True\n"
    assert marker.exists()
    assert "before the stop: not shown" in (tmp_path / "logs" / "demo.log").read_text()

    # A second Ctrl-C while the demo reads its totals back is passed on to it.
    patient = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: None)\n"
        "signal.signal(signal.SIGINT, lambda *_: (print('skipped'), sys.exit(0)))\n"
        "time.sleep(600)\n"
    )
    out = io.StringIO()
    child = Child("demo", _python(patient), dict(os.environ), echo_on_stop=True, stop_timeout=30)
    supervisor = Supervisor([child], log_dir=tmp_path / "logs", terminal=Terminal(out))
    child.start()
    time.sleep(1.0)
    supervisor.request_stop()  # the first Ctrl-C (the loop of run() would now stop all)
    stopping = threading.Thread(target=supervisor.stop_all)
    started = time.monotonic()
    stopping.start()
    time.sleep(0.5)
    supervisor.request_stop()  # the second
    stopping.join(20)
    assert out.getvalue() == "skipped\n" and time.monotonic() - started < 10


def test_a_repeated_message_is_shown_once_a_minute_with_how_many_were_held_back() -> None:
    """A broker that is down made 2,935 terminal lines in one run: the same refusal, each with
    its own time and port. Now once per window, then again with the count held back."""
    now = [0.0]
    repeats = Repeats(window_s=60, clock=lambda: now[0])
    refused = "2026-01-05T10:00:0{}Z [error    ] kafka_unreachable  port={} attempt={}"
    assert repeats(refused.format(0, 9092, 1)) == refused.format(0, 9092, 1)
    for i in range(2, 40):
        now[0] += 1
        assert repeats(refused.format(i % 10, 9092, i)) is None
    other = "2026-01-05T10:00:39Z [warning  ] child_exited child=worker"
    assert repeats(other) == other  # another message is not held back by the first
    now[0] = 61.0
    assert repeats(refused.format(1, 9092, 41)) == (
        refused.format(1, 9092, 41) + " (and 38 more like it before)"
    )
