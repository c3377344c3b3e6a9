"""The README's tour, run as a newcomer runs it: `make run` on a fresh state folder, then every
```bash block of README.md in order, in one shell, as written.

    python3 tests/readme_tour.py            # or: make tour

A block is skipped only where the line before it says why (``<!-- tour: skip: <reason> -->``);
the tour prints every skip. Each block runs under ``set -euo pipefail`` (stricter than a pasted
block: an unset variable or a failing pipe stops the tour), and fails the tour when

- it exits non-zero,
- a variable it assigns (``NAME=...``) ends up empty or ``null`` (a ``jq -r .id`` of an error),
- it prints the API's error shape (``{"error": ...``).

Then the results the README promises (the paid registration confirmed, its payment completed,
...) are checked against the API by ``_promises``, through the README's own variable names:
renaming one there fails here rather than drifting.

The only liberty taken with the text: the API, the dashboards and the mailbox listen on free
ports, and their default addresses in the blocks (``127.0.0.1:8000``, ``:8050``, ``:8025``) are
rewritten to them, so the tour runs beside anything else on the machine. Files the blocks write into the checkout (``ticket.png``,
``exports/``) are removed afterwards unless they were there before.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*tour:\s*skip:\s*(?P<reason>.+?)\s*-->")
# NAME=... as a statement of its own (at a line's start or after `;`): a command substitution, a
# quoted value, or a word ending the statement; not `NAME=value command` (an environment prefix).
ASSIGNED = re.compile(
    r"""(?:^|;)\s*([A-Z][A-Z0-9_]*)=(?:\$\(|"|'|[^\s;]*\s*(?:;|#|$))""", re.MULTILINE
)
API_ERROR = re.compile(r'\{\s*"error"\s*:')
LEFTOVERS = ("ticket.png", "exports")
START_TIMEOUT_S = 240.0
# The ports the README writes, by the setting that moves them (the tour takes free ones).
PORTS = {
    "AQSTREAM_API_PORT": 8000,
    "AQSTREAM_DASHBOARDS_PORT": 8050,
    "AQSTREAM_MAILBOX_PORT": 8025,
    "AQSTREAM_MAILBOX_SMTP_PORT": 1025,
    "AQSTREAM_RELAY_METRICS_PORT": 9102,
    "AQSTREAM_WORKER_METRICS_PORT": 9103,
}
BLOCK_TIMEOUT_S = 300.0


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    text: str
    skip: str | None


def blocks(readme: str) -> list[Block]:
    """Every ```bash block, with the reason to skip it if the line before gives one."""
    found: list[Block] = []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
            match = SKIP.search(before)
            found.append(Block(start + 1, _dedent(body), match["reason"] if match else None))
        i += 1
    return found


def _dedent(body: list[str]) -> str:
    indent = min((len(ln) - len(ln.lstrip()) for ln in body if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in body) + "\n"


def unclaimable_ports(n: int) -> list[int]:
    """``n`` free ports below the kernel's ephemeral range: none of them can be handed to the
    stack's servers (which bind port 0) between now and when the run's children listen on them,
    as a port that was merely free a moment ago can (a worker once found its port taken)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    chosen: list[int] = []
    for candidate in random.sample(range(max(1024, low - 12_000), low), 200):
        if _bindable(candidate):
            chosen.append(candidate)
            if len(chosen) == n:
                return chosen
    raise RuntimeError(f"no {n} free ports below {low}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Run:
    """The tour's `make run`, for checks beyond the README's (tests/test_run.py)."""

    state: Path
    ports: dict[str, int]  # by setting name (PORTS)
    proc: subprocess.Popen
    output: Path  # what `make run` printed

    def url(self, setting: str) -> str:
        return f"http://127.0.0.1:{self.ports[setting]}"


def _get(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


class Shell:
    """One bash for the whole tour, so variables carry from block to block as in a terminal."""

    def __init__(self, env: dict[str, str], log) -> None:
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.log = log
        self.n = 0

    def run(self, script: str, timeout: float = BLOCK_TIMEOUT_S) -> tuple[int, str]:
        """Sources ``script`` into the shell (its variables stay) under strict options; returns
        its status and what it printed."""
        self.n += 1
        marker = f"__tour_done_{self.n}__"
        path = Path(tempfile.mkstemp(prefix="tour-", suffix=".sh")[1])
        path.write_text(script)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(
            f"set -euo pipefail; source {path} </dev/null; s=$?; set +euo pipefail; "
            f'echo "{marker} $s"\n'
        )
        # Under `set -e` a failing command ends this (non-interactive) bash: the marker never
        # comes and the status is the shell's exit code.
        self.proc.stdin.flush()
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"block did not finish within {timeout:.0f} s")
            line = self.proc.stdout.readline()
            if not line:  # the shell exited: set -e stopped it
                path.unlink(missing_ok=True)
                return self.proc.wait(), "".join(out)
            if marker in line:  # after the block's last line, which may lack its newline
                line, _, status = line.partition(marker)
                out.append(line)
                self.log.write(line + "\n")
                path.unlink(missing_ok=True)
                return int(status), "".join(out)
            out.append(line)
            self.log.write(line)
            self.log.flush()

    def value(self, name: str) -> str:
        code, out = self.run(f'printf "%s\\n" "${{{name}-}}"\n')
        return out.strip() if code == 0 else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _promises(shell: Shell, api: str) -> list[str]:
    """What the README promises the blocks end with, checked against the API (README variable
    names: renaming one there fails here)."""
    failures: list[str] = []
    token, bob = shell.value("TOKEN"), shell.value("BOB")

    def check(what: str, got: object, want: object) -> None:
        if got != want:
            failures.append(f"{what}: README promises {want!r}, got {got!r}")

    org = _get(f"{api}/organizations/{shell.value('ORG')}", token)
    check("the organization made from the request", org.get("slug"), "pycon-berlin")
    event = _get(f"{api}/events/{shell.value('EVENT')}", token)
    check("the event", event.get("status"), "published")
    reg = _get(f"{api}/registrations/{shell.value('REG')}", token)
    check("the free registration, checked in", reg.get("checked_in_at") is not None, True)
    breg = _get(f"{api}/registrations/{shell.value('BREG')}", bob)
    check("the paid registration", breg.get("status"), "confirmed")
    payment = _get(f"{api}/payments/{shell.value('PAY')}", bob)
    check("its payment", payment.get("status"), "completed")
    return failures


def tour(
    keep: bool = False,
    during: Callable[[Run], None] | None = None,
    after: Callable[[Run], None] | None = None,
) -> int:
    """Runs the tour; 0 when every block ran and every promise held. ``during`` is called once
    they did, while `make run` still runs, and ``after`` once it stopped on Ctrl-C (their
    exceptions propagate, after `make run` was stopped and the leftovers removed)."""
    state = Path(tempfile.mkdtemp(prefix="aqstream-tour-"))
    state.chmod(0o755)  # as root, PostgreSQL runs as `postgres`, which must enter it
    ports = dict(zip(PORTS, unclaimable_ports(len(PORTS)), strict=True))
    existed = {name for name in LEFTOVERS if (ROOT / name).exists()}
    env = {
        **os.environ,
        "AQSTREAM_STATE_DIR": str(state),
        **{name: str(port) for name, port in ports.items()},
    }
    # A newcomer's shell: not inside the project's virtualenv (under `make test` PATH starts
    # with .venv/bin, whose python3 has no uv, so the Makefile would try to install it there).
    venv = str(ROOT / ".venv")
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv)
    )
    env.pop("VIRTUAL_ENV", None)
    # Settings the caller's shell may carry would point the run at other servers.
    for name in ("AQSTREAM_DATABASE_URL", "AQSTREAM_KAFKA_BOOTSTRAP", "AQSTREAM_REDIS_URL"):
        env.pop(name, None)
    env.pop("AQSTREAM_S3_ENDPOINT", None)
    run_log = (state / "make-run.out").open("w")
    api_port = ports["AQSTREAM_API_PORT"]
    print(f"tour: make run (state {state}, ports {ports})")
    run = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=run_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    shell_log = (state / "tour.out").open("w")
    shell = Shell(env, shell_log)
    failures: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if run.poll() is not None:
                failures.append(f"make run exited with {run.returncode}")
                break
            try:
                _get(f"http://127.0.0.1:{api_port}/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    failures.append(f"the API did not answer within {START_TIMEOUT_S:.0f} s")
                    break
                time.sleep(1)
        if not failures:
            failures += _blocks(shell, {PORTS[name]: port for name, port in ports.items()})
        if not failures:
            failures += _promises(shell, f"http://127.0.0.1:{api_port}/api/v1")
        if not failures and during is not None:
            during(Run(state, ports, run, state / "make-run.out"))
    finally:
        shell.close()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)  # Ctrl-C, as the README says
            try:
                run.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                failures.append("make run did not stop within 90 s of Ctrl-C")
        run_log.close()
        shell_log.close()
        for name in LEFTOVERS:
            if name not in existed:
                path = ROOT / name
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
    if not failures and after is not None:
        after(Run(state, ports, run, state / "make-run.out"))
    for failure in failures:
        print(f"tour: FAILED: {failure}", file=sys.stderr)
    if failures:
        print(
            f"tour: the run's output: {state / 'make-run.out'}; the blocks': {state / 'tour.out'}"
        )
    elif not keep:
        shutil.rmtree(state, ignore_errors=True)
    return 1 if failures else 0


def _blocks(shell: Shell, ports: dict[int, int]) -> list[str]:
    for block in blocks(README.read_text()):
        where = f"README.md:{block.line}"
        if block.skip:
            print(f"tour: skip {where}: {block.skip}")
            continue
        text = block.text
        for written, actual in ports.items():
            text = text.replace(f"127.0.0.1:{written}", f"127.0.0.1:{actual}")
        started = time.monotonic()
        print(f"tour: run {where} ({len(text.splitlines())} lines)", flush=True)
        try:
            code, out = shell.run(text)
        except TimeoutError as exc:
            return [f"{where}: {exc}"]
        if code != 0:
            return [f"{where}: exited {code}; its output ends:\n{out[-2000:]}"]
        if API_ERROR.search(out):
            return [f"{where}: the API answered an error:\n{out[-2000:]}"]
        for name in dict.fromkeys(ASSIGNED.findall(text)):
            if shell.value(name) in ("", "null"):
                return [f"{where}: {name} is empty or null after the block:\n{out[-2000:]}"]
        print(f"tour: ok {where} in {time.monotonic() - started:.1f} s", flush=True)
    return []


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)  # so `make run` is stopped on the way out


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupted)
    sys.exit(tour(keep="--keep" in sys.argv))
