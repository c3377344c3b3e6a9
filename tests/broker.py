"""A private broker for the tests that stop, kill and restart one (the shared test broker must
stay up for every other test): the suite's own kind, started by the local stack's server class,
on a fixed port, with a log folder of its own that survives its restarts."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from aqstream.stack.servers import ApacheKafkaServer, TansuServer, free_port, wait_until
from core.settings import Settings


class PrivateBroker:
    def __init__(self, settings: Settings, state_dir: Path) -> None:
        if settings.kafka_flavor == "kafka":
            self.server: ApacheKafkaServer | TansuServer = ApacheKafkaServer(settings, state_dir)
        else:
            self.server = TansuServer(settings, state_dir)
            self.server.BUCKET = f"tansu-{uuid.uuid4().hex[:12]}"  # its own log
        self.server.prepare()
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log = self.server.dir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it on its port with the log it had; return once it answers the protocol."""
        launch = self.server.launch(self.port)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                launch.argv, env=launch.env, cwd=self.server.dir, stdout=log, stderr=log
            )
        proc = self.proc
        wait_until(
            lambda: self.server.healthy(self.port),
            60,
            "the private broker",
            alive=lambda: proc.poll() is None,
        )

    def stop(self) -> None:
        """A clean stop (SIGTERM: Kafka's controlled shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
