"""`aqstream run`: the platform comes up at the printed URL and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from aqstream.settings import PROJECT_ROOT
from aqstream.stack.servers import free_port
from tests.stack.test_local_stack import processes_under


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.slow
def test_run_serves_the_api_and_ctrl_c_stops_everything() -> None:
    state_dir = PROJECT_ROOT / ".aqstream" / "scratch" / f"run-{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AQSTREAM_") or k == "AQSTREAM_TEST_KEEP_STACK"
    }
    env.update({"AQSTREAM_STATE_DIR": str(state_dir), "AQSTREAM_API_PORT": str(port)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqstream", "run"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("API did not come up")
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"database", "broker", "redis", "s3"}
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        seen = descendants(proc.pid) | processes_under(state_dir)
        assert len(seen) >= 5  # api + four servers (and their helpers)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert f"{base}/docs" in output
    time.sleep(0.2)
    left = {pid for pid in seen if os.path.exists(f"/proc/{pid}")}
    left = {pid for pid in left if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"}
    assert left == set(), f"processes left behind: {left}"
    assert processes_under(state_dir) == set()
    shutil.rmtree(state_dir, ignore_errors=True)
