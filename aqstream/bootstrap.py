"""Start-up and shutdown of the long-running processes (`aqstream jobs | relay | worker`, and the
dashboards' logging): settings in, then logging, engines, the Prometheus metrics server on the
process's port, signal handling, and a clean shutdown that closes what was opened, in reverse.

The settings come in resolved (the CLI starts the local stack first); nothing here is built at
import time, and nothing below the composition root imports this module.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from core.logging import configure_logging, get_logger
from core.settings import Settings


class MetricsPortBusy(Exception):
    """A process that must expose its metrics could not bind its port."""

    def __init__(self, port: int, reason: str | None) -> None:
        super().__init__(f"metrics port {port}: {reason}")
        self.port = port
        self.reason = reason


@dataclass
class Process:
    """One running process: its settings and logger (``aqstream.<name>``), the event that stops
    it, and what it opened (closed at shutdown, last opened first)."""

    name: str
    settings: Settings
    log: Any
    stop: threading.Event = field(default_factory=threading.Event)
    _opened: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` at shutdown (even when another closing step fails)."""
        self._opened.callback(callback)

    def engine(self, url: URL | str, **options: Any) -> Engine:
        """An engine on ``url`` (``make_engine``'s options), disposed at shutdown."""
        from domain.db import make_engine

        engine = make_engine(url, **options)
        self.on_close(engine.dispose)
        return engine

    def sessions(self, url: URL | str, **options: Any) -> sessionmaker[Session]:
        """Sessions on an ``engine(url, **options)`` of their own."""
        from domain.db import make_sessionmaker

        return make_sessionmaker(self.engine(url, **options))

    def serve_metrics(self, registry: Any, host: str, port: int, *, required: bool = False) -> None:
        """Prometheus metrics of ``registry`` on ``host:port`` (0: not served), logged as
        ``<name>_metrics``. A busy port is logged as ``<name>_metrics_unavailable`` and the
        process goes on, unless the metrics are ``required`` (``MetricsPortBusy``)."""
        if not port:
            return
        from prometheus_client import start_http_server

        url = f"http://{host}:{port}/metrics"
        try:
            server, _thread = start_http_server(port, host, registry)
        except OSError as exc:
            if required:
                raise MetricsPortBusy(port, exc.strerror) from None
            self.log.warning(f"{self.name}_metrics_unavailable", url=url, error=exc.strerror)
            return
        self.on_close(server.shutdown)
        self.log.info(f"{self.name}_metrics", url=url)

    def handle_signals(self) -> threading.Event:
        """SIGTERM and SIGINT set ``stop`` (the process ends its current step, then shuts down);
        answers it. Processes whose framework handles signals (Faust's worker) do not call it."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        return self.stop

    def close(self) -> None:
        self._opened.close()


@contextlib.contextmanager
def bootstrap(name: str, settings: Settings) -> Iterator[Process]:
    """Logging as ``settings`` say, a ``Process`` named ``name``; on the way out (a return, an
    exception, ``SystemExit`` included) whatever it opened is closed."""
    configure_logging(settings.log_level, settings.log_json)
    process = Process(name, settings, get_logger(f"aqstream.{name}"))
    try:
        yield process
    finally:
        process.close()
