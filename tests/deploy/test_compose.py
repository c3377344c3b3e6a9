"""Deployment files: docker-compose.yml, .env.example, Dockerfile, .dockerignore.

With the Docker Compose plugin installed, `docker compose config` validates the file for real.
Without it (this workplace has only the docker client and no engine) the structural checks below
still catch the mistakes that matter: dangling dependencies, missing health checks, undefined
variables, literal secrets, port clashes, a one-shot migrate service that would restart forever.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# `aqstream` CLI subcommands, and the compose service that runs each.
CLI_SUBCOMMANDS = {"migrate", "api", "jobs", "relay", "worker", "dashboards"}
AQSTREAM_SERVICES = {name: name for name in CLI_SUBCOMMANDS}
INFRA_SERVICES = {"timescaledb", "kafka", "redis", "minio"}
LONG_RUNNING = AQSTREAM_SERVICES.keys() - {"migrate"}
VALID_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|AUTH", re.IGNORECASE)
# A bare reference, optionally "required" (?); never a default, which would be a literal secret.
SECRET_REF_RE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?\?[^}]*)?\}$")
VAR_RE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# Settings the code does not read yet but compose already passes (JWT: issue B; dashboards: G).
FUTURE_SETTINGS = {"jwt_secret", "dashboards_host", "dashboards_port"}


# --- helpers --------------------------------------------------------------------------------


def parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path.name}:{number}: not KEY=value: {raw!r}"
        key, _, value = line.partition("=")
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path.name}:{number}: bad key"
        assert key not in values, f"{path.name}:{number}: {key} defined twice"
        values[key] = value.strip().strip("'\"")
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$ (one level)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"] or "", match["arg"] or ""
        value = env.get(name)
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise AssertionError(f"required variable {name} is unset: {arg}")
            return value
        if op in (":+", "+"):
            return arg if value else ""
        assert not arg, f"unsupported interpolation {match.group(0)!r}"
        return value or ""

    return VAR_RE.sub(replace, text)


def variables_used(text: str) -> set[str]:
    return {m["braced"] or m["bare"] for m in VAR_RE.finditer(text) if not m["escaped"]}


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command_argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def expand_port_range(text: str) -> list[int]:
    start, _, end = text.partition("-")
    return list(range(int(start), int(end or start) + 1))


def published_ports(service: dict[str, Any], env: dict[str, str]) -> list[tuple[str, int, str]]:
    """(host ip, host port, protocol) for every published port of a service."""
    result = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is None:
                continue
            ip = entry.get("host_ip", "0.0.0.0")
            hosts = expand_port_range(interpolate(str(entry["published"]), env))
            proto = entry.get("protocol", "tcp")
        else:
            spec = interpolate(str(entry), env)
            spec, _, proto = spec.partition("/")
            parts = spec.rsplit(":", 2)
            if len(parts) == 1:  # container port only: ephemeral host port
                continue
            ip = parts[0] if len(parts) == 3 else "0.0.0.0"
            hosts = expand_port_range(parts[-2])
        result += [(ip, port, proto or "tcp") for port in hosts]
    return result


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    data = yaml.safe_load(compose_text)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)


# --- the real validator, where available ----------------------------------------------------


def _compose_cli() -> list[str] | None:
    """`docker compose config` needs the Compose plugin, not a running engine."""
    candidates = [["docker", "compose"], ["docker-compose"]]
    for argv in candidates:
        if shutil.which(argv[0]) is None:
            continue
        probe = subprocess.run([*argv, "version"], capture_output=True, timeout=30, check=False)
        if probe.returncode == 0:
            return argv
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("Docker Compose is not installed; structural checks below stand in for it")
    result = subprocess.run(
        [*cli, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- structure ------------------------------------------------------------------------------


def test_expected_services_exist(services: dict[str, Any]) -> None:
    missing = (INFRA_SERVICES | AQSTREAM_SERVICES.keys()) - services.keys()
    assert not missing, f"missing services: {sorted(missing)}"


def test_every_service_has_an_image_or_build(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name}: no image and no build"
        image = service.get("image", "")
        if name in INFRA_SERVICES:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"


def test_dependencies_exist_with_valid_conditions(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            assert target != name, f"{name} depends on itself"
            assert condition in VALID_CONDITIONS, f"{name} -> {target}: bad condition {condition!r}"


def test_dependency_graph_has_no_cycle(services: dict[str, Any]) -> None:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "active", f"dependency cycle: {' -> '.join([*path, name])}"
        state[name] = "active"
        for target in depends_on(services[name]):
            if target in services:
                visit(target, [*path, name])
        state[name] = "done"

    for name in services:
        visit(name, [])


def test_healthy_dependencies_define_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if condition != "service_healthy":
                continue
            check = services[target].get("healthcheck") or {}
            test = check.get("test")
            assert test and not check.get("disable"), f"{name} waits for {target} to be healthy, "
            assert test not in (["NONE"], "NONE"), f"{target}: healthcheck disabled"


def test_infrastructure_services_have_healthchecks(services: dict[str, Any]) -> None:
    for name in INFRA_SERVICES | {"api"}:
        assert (services[name].get("healthcheck") or {}).get("test"), f"{name}: no healthcheck"
    api_check = " ".join(map(str, services["api"]["healthcheck"]["test"]))
    assert "/health" in api_check and ":8000" in api_check


def test_migrate_runs_once_before_every_process(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    # A one-shot under "always"/"unless-stopped" would be restarted after exiting 0, forever.
    assert str(migrate.get("restart", "no")) in {"no", "on-failure"} or str(
        migrate.get("restart")
    ).startswith("on-failure")
    assert depends_on(migrate).get("timescaledb") == "service_healthy"
    assert depends_on(migrate).get("minio") == "service_healthy"  # it creates the bucket
    for name in LONG_RUNNING:
        deps = depends_on(services[name])
        assert deps.get("migrate") == "service_completed_successfully", name
        assert str(services[name].get("restart")) in {"unless-stopped", "always"}, name


def test_every_variable_is_defined_in_env_example(
    compose_text: str, env_example: dict[str, str]
) -> None:
    undefined = variables_used(compose_text) - env_example.keys()
    assert not undefined, f"add to .env.example: {sorted(undefined)}"
    # Interpolating the whole file with .env.example must succeed (required vars are non-empty).
    interpolate(compose_text, env_example)


def test_env_example_has_no_unused_variables(
    compose_text: str, env_example: dict[str, str]
) -> None:
    unused = env_example.keys() - variables_used(compose_text)
    assert not unused, f".env.example defines variables compose never uses: {sorted(unused)}"


def mask_references(text: str) -> tuple[str, list[str]]:
    """Replace each ${...} by an opaque token, so URLs with references parse as URLs."""
    refs: list[str] = []

    def token(match: re.Match[str]) -> str:
        refs.append(match.group(0))
        return f"REF{len(refs) - 1}REF"

    return VAR_RE.sub(token, text), refs


def test_no_literal_secrets(services: dict[str, Any]) -> None:
    for name, service in services.items():
        env = environment_of(service)
        for key, value in env.items():
            if SECRET_KEY_RE.search(key):
                assert SECRET_REF_RE.match(value), (
                    f"{name}.{key} must be a bare ${{VAR}} reference to .env, got {value!r}"
                )
        argv = command_argv(service)
        for value in [*env.values(), *argv]:
            masked, refs = mask_references(value)
            for url in re.findall(r"[a-z][a-z0-9+.-]*://\S+", masked):
                password = urlsplit(url).password
                if password is not None:
                    match = re.fullmatch(r"REF(\d+)REF", password)
                    assert match and SECRET_REF_RE.match(refs[int(match[1])]), (
                        f"{name}: literal password in URL {value!r}"
                    )
        for flag, value in itertools.pairwise(argv):
            if re.search(r"pass|secret|token", flag, re.IGNORECASE):
                assert SECRET_REF_RE.match(value), f"{name}: literal secret after {flag}"


def test_env_files_stay_out_of_git_and_the_image() -> None:
    gitignore = (ROOT / ".gitignore").read_text().split()
    dockerignore = DOCKERIGNORE.read_text().split()
    assert ".env" in gitignore
    assert ".env" in dockerignore
    for local_state in (".venv", ".aqstream", ".git"):
        assert local_state in dockerignore, f".dockerignore must exclude {local_state}"


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    used: set[str] = set()
    for name, service in compose["services"].items():
        for entry in service.get("volumes") or []:
            if isinstance(entry, dict):
                if entry.get("type", "volume") != "volume" or not entry.get("source"):
                    continue
                source = entry["source"]
            else:
                source, sep, _ = str(entry).partition(":")
                if not sep or source.startswith((".", "/", "~", "$")):
                    continue  # anonymous volume or bind mount
            assert source in declared, f"{name}: volume {source!r} is not declared"
            used.add(source)
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"
    for name in ("timescaledb", "kafka", "redis", "minio"):
        assert compose["services"][name].get("volumes"), f"{name}: data would not survive"


def test_published_ports_do_not_collide(
    services: dict[str, Any], env_example: dict[str, str]
) -> None:
    taken: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for name, service in services.items():
        for ip, port, proto in published_ports(service, env_example):
            for other_ip, other in taken.get((port, proto), []):
                clash = "0.0.0.0" in (ip, other_ip) or ip == other_ip
                assert not clash, f"{name} and {other} both publish {port}/{proto}"
            taken.setdefault((port, proto), []).append((ip, name))
    assert (8000, "tcp") in taken and (8050, "tcp") in taken


def test_published_ports_match_container_ports(services: dict[str, Any]) -> None:
    assert any(str(p).endswith(":8000") for p in services["api"]["ports"])
    assert any(str(p).endswith(":8050") for p in services["dashboards"]["ports"])
    env = {**environment_of(services["api"])}
    assert env.get("AQSTREAM_API_PORT") == "8000" and env.get("AQSTREAM_API_HOST") == "0.0.0.0"
    assert environment_of(services["dashboards"]).get("AQSTREAM_DASHBOARDS_PORT") == "8050"


def test_aqstream_services_share_one_image(services: dict[str, Any]) -> None:
    builds, images, envs = set(), set(), []
    for name in AQSTREAM_SERVICES:
        build = services[name].get("build")
        assert build, f"{name}: must build the AqStream image"
        if isinstance(build, str):
            build = {"context": build}
        context = (ROOT / build.get("context", ".")).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        builds.add(dockerfile)
        images.add(services[name].get("image"))
        envs.append(environment_of(services[name]))
    assert builds == {DOCKERFILE.resolve()}, builds
    assert len(images) == 1, f"one image tag for all processes, got {images}"
    assert all(env == envs[0] for env in envs), "AqStream services must share one configuration"


def test_commands_are_real_cli_subcommands(services: dict[str, Any]) -> None:
    for name, subcommand in AQSTREAM_SERVICES.items():
        argv = command_argv(services[name])
        assert argv[:1] == ["aqstream"], f"{name}: command must start with the aqstream CLI"
        assert len(argv) >= 2 and argv[1] in CLI_SUBCOMMANDS, f"{name}: unknown command {argv}"
        assert argv[1] == subcommand, f"service {name} runs `aqstream {argv[1]}`"


def test_service_urls_point_at_compose_services(
    services: dict[str, Any], env_example: dict[str, str]
) -> None:
    env = {k: interpolate(v, env_example) for k, v in environment_of(services["api"]).items()}
    expected = {
        "AQSTREAM_DATABASE_URL": ("timescaledb", 5432),
        "AQSTREAM_REDIS_URL": ("redis", 6379),
        "AQSTREAM_S3_ENDPOINT": ("minio", 9000),
    }
    for key, (host, port) in expected.items():
        url = urlsplit(env[key])
        assert (url.hostname, url.port) == (host, port), f"{key} -> {url.hostname}:{url.port}"
    assert env["AQSTREAM_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["AQSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    kafka = {k: interpolate(v, env_example) for k, v in environment_of(services["kafka"]).items()}
    assert "PLAINTEXT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    mounts = {str(v).split(":", 1)[1] for v in services["kafka"]["volumes"]}
    assert kafka["KAFKA_LOG_DIRS"] in mounts, "Kafka must write its log into the mounted volume"
    # The migration owner is the database container's superuser (it creates the app role).
    db = {
        k: interpolate(v, env_example) for k, v in environment_of(services["timescaledb"]).items()
    }
    owner = urlsplit(env["AQSTREAM_DATABASE_URL"])
    assert (owner.username, owner.password) == (db["POSTGRES_USER"], db["POSTGRES_PASSWORD"])
    assert owner.path == f"/{db['POSTGRES_DB']}"
    assert env["AQSTREAM_APP_DB_USER"] != owner.username, "the app role must not be the owner"


def test_compose_settings_are_known_to_the_application(services: dict[str, Any]) -> None:
    """A misspelt AQSTREAM_* variable would be silently ignored (extra="ignore")."""
    settings_module = pytest.importorskip("core.settings")
    fields = set(settings_module.Settings.model_fields) | FUTURE_SETTINGS
    for name in AQSTREAM_SERVICES:
        for key in environment_of(services[name]):
            assert key.startswith("AQSTREAM_"), f"{name}: {key} is not an AqStream setting"
            assert key.removeprefix("AQSTREAM_").lower() in fields, f"{name}: unknown {key}"


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_installs_the_locked_environment() -> None:
    steps = dockerfile_instructions()
    copies = [(i, rest) for i, (kw, rest) in enumerate(steps) if kw == "COPY"]
    syncs = [(i, rest) for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "uv sync" in rest]
    assert syncs, "the image must be built with `uv sync`"
    lock_copy = next(
        (i for i, rest in copies if "uv.lock" in rest and "pyproject.toml" in rest), None
    )
    assert lock_copy is not None, "COPY pyproject.toml uv.lock before the sources"
    full_copy = next(i for i, rest in copies if re.match(r"^(--\S+\s+)*\.\s+\.", rest))
    assert lock_copy < syncs[0][0] < full_copy, "dependency layer must come before the sources"
    for _, rest in syncs:
        assert "--frozen" in rest and "--no-dev" in rest, rest
        assert "--no-editable" not in rest, "migrations are read from /app/sql"
    assert any(kw == "RUN" and re.search(r"uv==\d+\.\d+\.\d+", rest) for kw, rest in steps)


def test_dockerfile_runtime_is_non_root_python_311() -> None:
    steps = dockerfile_instructions()
    froms = [rest for kw, rest in steps if kw == "FROM"]
    arg_defaults = " ".join(rest for kw, rest in steps if kw == "ARG")
    assert "python:3.11-slim" in " ".join(froms) + arg_defaults
    users = [rest for kw, rest in steps if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "run as a non-root user"
    cmd = [rest for kw, rest in steps if kw == "CMD"][-1]
    assert cmd == '["aqstream", "api"]', cmd
    assert not any(kw == "ENV" and SECRET_KEY_RE.search(rest) for kw, rest in steps)
