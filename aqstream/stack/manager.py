"""The embedded local stack: start, probe and stop PostgreSQL, the broker, Redis and S3.

State lives in ``<state_dir>/stack.json`` (PIDs and ports) guarded by a file lock, so `up` twice
starts one set and `down` stops exactly what was started. A server whose URL is configured through
the environment is external: the stack neither starts nor stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from aqstream.stack.servers import (
    Server,
    StackError,
    free_port,
    port_in_use,
    server_classes,
    wait_until,
)
from core.settings import Settings

STOP_TIMEOUT_S = 15.0

_CONFIGURED = {
    "postgres": ("database_url", "local_pg_port"),
    "kafka": ("kafka_bootstrap", "local_kafka_port"),
    "redis": ("redis_url", "local_redis_port"),
    "s3": ("s3_endpoint", "local_s3_port"),
}


@dataclass
class Running:
    name: str
    pid: int
    port: int
    url: str
    started_at: float
    marker: str = ""  # what its command line holds (the broker slot has two kinds of server)
    kind: str = ""  # e.g. "Apache Kafka 3.9.0 (KRaft)"
    flavor: str = ""  # the broker's: "kafka" | "tansu"


@dataclass
class ServerStatus:
    name: str
    url: str
    source: str  # "local" | "external" | "stopped"
    pid: int | None = None
    healthy: bool | None = None
    kind: str = ""


def pid_alive(pid: int, marker: str) -> bool:
    """True if ``pid`` runs and is the process we started (guards against PID reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie is dead, merely unreaped
        return False
    return marker in cmdline


# A dead server's clients keep reconnecting to its port, and a reconnect can briefly hold it (a
# socket bound to that ephemeral port, even connected to itself); its clients need it back, so
# a revival waits this long for the port before taking another.
PREVIOUS_PORT_WAIT_S = 10.0


def _frees_up(port: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while port_in_use(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


class LocalStack:
    """Starts what is not configured externally; resolves URLs for everything."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()  # servers run in folders of their own
        self.state_file = self.state_dir / "stack.json"
        self.servers: dict[str, Server] = {
            cls.name: cls(settings, self.state_dir) for cls in server_classes(settings)
        }
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- state -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Running]]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "stack.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            try:
                yield state
            finally:  # record what did start even when a later server fails
                self._write(state)

    def _read(self) -> dict[str, Running]:
        try:
            raw = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return {name: Running(**entry) for name, entry in raw.items()}

    def _write(self, state: dict[str, Running]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: asdict(v) for k, v in state.items()}, indent=2))
        tmp.replace(self.state_file)

    def external(self, name: str) -> str | None:
        return getattr(self.settings, _CONFIGURED[name][0])

    # --- lifecycle ---------------------------------------------------------------------------
    def up(self) -> list[str]:
        """Start every local server not yet running; return the names of those started now.

        One that died is started again on the port it had, if free, so that its clients
        reconnect by themselves (`aqstream run` calls this to supervise the stack)."""
        started = []
        with self._locked() as state:
            for name, server in self.servers.items():
                if self.external(name):
                    continue
                running = state.get(name)
                if running and self._alive(running, server):
                    continue
                state[name] = self._start(server, state, running.port if running else 0)
                started.append(name)
        return started

    @staticmethod
    def _alive(running: Running, server: Server) -> bool:
        return pid_alive(running.pid, running.marker or server.process_marker())

    def _start(self, server: Server, state: dict[str, Running], previous: int = 0) -> Running:
        configured = getattr(self.settings, _CONFIGURED[server.name][1])
        if not configured and previous and _frees_up(previous, PREVIOUS_PORT_WAIT_S):
            configured = previous
        port = configured or free_port()
        if port_in_use(port):
            raise StackError(f"{server.name}: port {port} is already in use")
        server.settings = self._resolve(self.settings, state)  # sees the servers before it
        server.prepare()
        launch = server.launch(port)
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        with open(log_dir / f"{server.name}.log", "ab") as log:
            proc = subprocess.Popen(
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=server.dir,
                env=launch.env,
                user=launch.user,
                start_new_session=True,  # survives the CLI; Ctrl-C in a terminal does not hit it
            )
        self._children[proc.pid] = proc
        try:
            wait_until(
                lambda: server.healthy(port),
                server.start_timeout_s,
                server.name,
                alive=lambda: proc.poll() is None,
            )
            server.after_start(port)
        except Exception:
            self._terminate(proc.pid, server)
            raise StackError(
                f"{server.name} failed to start; see {log_dir / (server.name + '.log')}"
            ) from None
        kind = getattr(server, "description", "")
        flavor = getattr(server, "flavor", "")
        return Running(
            server.name, proc.pid, port, server.url(port), time.time(),
            server.process_marker(), kind, flavor,
        )  # fmt: skip

    def down(self, only: list[str] | None = None) -> list[str]:
        """Stop the local servers (all, or ``only`` these); return the names stopped."""
        stopped = []
        with self._locked() as state:
            for name in list(state):
                if only is not None and name not in only:
                    continue
                running = state.pop(name)
                server = self.servers[name]
                if self._alive(running, server):
                    self._terminate(running.pid, server, running.marker)
                    stopped.append(name)
        return stopped

    def _terminate(self, pid: int, server: Server, marker: str = "") -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, server.stop_signal)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._reap(pid) or not pid_alive(pid, marker or server.process_marker()):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        self._reap(pid, block=True)

    def _reap(self, pid: int, block: bool = False) -> bool:
        proc = self._children.get(pid)
        if proc is None:
            return False
        try:
            proc.wait(timeout=5 if block else 0.001)
        except subprocess.TimeoutExpired:
            return False
        self._children.pop(pid, None)
        return True

    # --- inspection ----------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """AQSTREAM_* variables naming every server, local or external."""
        env: dict[str, str] = {}
        state = self._read()
        for name, server in self.servers.items():
            url = self.external(name) or (state[name].url if name in state else None)
            if url:
                env[server.env_var()] = url
            if name == "kafka" and not self.external(name) and name in state:
                env["AQSTREAM_KAFKA_FLAVOR"] = state[name].flavor or "kafka"
        return env

    def status(self) -> list[ServerStatus]:
        state = self._read()
        out = []
        for name, server in self.servers.items():
            external = self.external(name)
            if external:
                out.append(ServerStatus(name, external, "external"))
                continue
            running = state.get(name)
            if running and self._alive(running, server):
                try:
                    healthy = server.healthy(running.port)
                except Exception:
                    healthy = False
                out.append(
                    ServerStatus(name, running.url, "local", running.pid, healthy, running.kind)
                )
            else:
                out.append(ServerStatus(name, "-", "stopped"))
        return out

    def resolved_settings(self) -> Settings:
        """Settings with every server URL filled in (call after ``up``)."""
        return self._resolve(self.settings, self._read())

    def _resolve(self, settings: Settings, state: dict[str, Running]) -> Settings:
        update = {
            field: state[name].url
            for name, (field, _port) in _CONFIGURED.items()
            if not self.external(name) and name in state
        }
        broker = update.pop("kafka_bootstrap", None)
        settings = settings.model_copy(update=update)
        if broker is not None:
            settings = settings.on_broker(broker, state["kafka"].flavor or "kafka")
        return settings
