"""An ASGI app served by a real uvicorn server on a free loopback port, in a thread of the test
process: real HTTP, sockets and timing, for tests that a TestClient would short-circuit."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from aqstream.stack.servers import free_port


@contextlib.contextmanager
def served(app: Any, *, port: int | None = None, start_timeout_s: float = 30) -> Iterator[str]:
    """Serve ``app``; yields its base URL and stops the server on exit."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
