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
from tests.procs import alive, descendants, processes_under


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
    left = {pid for pid in seen if alive(pid)}
    assert left == set(), f"processes left behind: {left}"
    assert processes_under(state_dir) == set()
    shutil.rmtree(state_dir, ignore_errors=True)
