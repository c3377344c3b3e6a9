"""The command and the live mode: `aqstream simulate` against a running API writes the totals it
printed; `--rate --forever` keeps going until Ctrl-C, then stops cleanly with its totals; the
generator survives the API going away and coming back (visits fail meanwhile, are counted, and
the next ones go on)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aqstream.simulate import Account, Simulation, Stopped, build_plan
from aqstream.stack.servers import free_port
from core.settings import PROJECT_ROOT, Settings
from tests.live import served
from tests.simulate.conftest import Platform, platform_settings, verification_key


def _simulate(platform: Platform, admin: dict | None, *args: str) -> subprocess.Popen[bytes]:
    """`aqstream simulate --api <platform>`: with an admin's credentials, or else (``None``)
    granting its own admin the operator's way, on the platform's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AQSTREAM_")}
    if admin is not None:
        env["AQSTREAM_SIMULATE_ADMIN_PASSWORD"] = "correct horse battery"
        args = ("--admin-email", admin["email"], *args)
    else:
        s = platform.settings
        env.update(
            {
                "AQSTREAM_DATABASE_URL": s.owner_url.render_as_string(hide_password=False),
                "AQSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
                "AQSTREAM_REDIS_URL": s.redis_url,
                "AQSTREAM_S3_ENDPOINT": s.s3_endpoint,
            }
        )
    return subprocess.Popen(
        [sys.executable, "-m", "aqstream", "simulate", "--api", platform.url, *args],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.mark.slow
def test_the_command_prints_and_writes_its_totals(platform, tmp_path: Path) -> None:
    out = tmp_path / "totals.json"
    run = _simulate(platform, None, "--seed", "5", "--scenario", "tiny", "--visits", "8",
                    "--totals-json", str(out))  # fmt: skip
    raw, _ = run.communicate(timeout=180)
    stdout = raw.decode(errors="replace")
    assert run.returncode == 0, stdout
    totals = json.loads(out.read_text())
    assert totals["seed"] == 5 and totals["scenario"] == "tiny" and totals["visits"] == 8
    assert totals["outcomes"].get("visit_failed", 0) == 0, stdout
    assert totals["all"]["page_views"] > 0 and totals["all"]["registrations"] > 0
    assert "seed 5, scenario tiny" in stdout
    assert "sim-5-admin@example.org is now a platform administrator" in stdout
    all_row = next(line for line in stdout.splitlines() if line.startswith("all "))
    assert str(totals["all"]["page_views"]) in all_row.split()


@pytest.mark.slow
def test_live_mode_runs_until_ctrl_c_then_stops_cleanly(platform, admin, tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    run = _simulate(platform, admin, "--seed", "6", "--scenario", "tiny", "--rate", "3",
                    "--forever", "--totals-json", str(out))  # fmt: skip
    output = ""

    def read() -> None:  # the progress bar redraws with \r: read bytes, not lines
        nonlocal output
        assert run.stdout is not None
        while chunk := os.read(run.stdout.fileno(), 4096):
            output += chunk.decode(errors="replace")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while "visits:" not in output and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4)  # a dozen visits at 3/s
    assert run.poll() is None, output
    run.send_signal(signal.SIGINT)
    run.wait(timeout=60)
    reader.join(timeout=10)
    assert run.returncode == 0, output
    assert "stopping; then the totals are read back" in output
    totals = json.loads(out.read_text())
    assert totals["visits"] > 0, output
    assert totals["outcomes"].get("visit_failed", 0) == 0, output


@pytest.mark.slow
def test_the_generator_survives_an_api_restart(settings: Settings, admin) -> None:
    from api.app import create_app

    port = free_port()
    app_settings = platform_settings(settings, port)
    plan = build_plan(8, "tiny")
    admin_account = Account(admin["email"], "Admin", password="correct horse battery")
    with served(create_app(app_settings), port=port) as url:
        sim = Simulation(
            plan, url, admin=admin_account, progress=False, max_wait_s=2,
            verification_key=verification_key(app_settings),
        )  # fmt: skip
        sim.setup()

        def run() -> None:
            with contextlib.suppress(Stopped):  # halted, as Ctrl-C does
                sim.run(rate=4.0, flash=False)

        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        deadline = time.monotonic() + 30
        while sim.ledger.visits < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    # the API is gone: visits fail (each after max_wait_s), are counted, the run goes on
    down_at = sim.ledger.visits
    time.sleep(3)
    assert runner.is_alive()
    with served(create_app(app_settings), port=port):
        deadline = time.monotonic() + 30
        while sim.ledger.visits < down_at + 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        sim.halt()
        runner.join(timeout=30)
        assert not runner.is_alive()
        assert sim.ledger.visits >= down_at + 6, sim.ledger.outcomes
        assert sim.ledger.outcomes.get("visit_failed", 0) > 0  # while it was down
    sim.close()


@pytest.mark.slow
def test_a_later_flash_sale_adds_its_ticket_type_and_bursts(platform, admin_account) -> None:
    from collections import defaultdict

    from aqstream.simulate import SCENARIOS, _flash_sale

    plan = build_plan(12, "tiny")
    sim = Simulation(
        plan, platform.url, admin=admin_account, progress=False, offer_wait_s=5,
        verification_key=verification_key(platform.settings),
    )  # fmt: skip
    try:
        sim.setup()
        used: dict[str, set[int]] = defaultdict(set)
        for fs in plan.flash_sales:
            used[fs.event].update(fs.buyers)
        burst = _flash_sale(plan, 1, used)  # what the live stream yields after flash_every visits
        sim.flash_sale(burst)
        sim.settle()
    finally:
        sim.close()
    totals = sim.totals()
    event = sim.events[burst.event]
    seats, buyers = SCENARIOS["tiny"].flash_capacity, len(burst.buyers)
    counters = totals["events"][event["id"]]["ticket_types"][event["types"][burst.ticket_type]]
    assert totals["outcomes"]["sold_out"] == buyers - seats  # no oversell, nobody turned away
    assert counters["waitlist_joined"] == buyers - seats
    # the winners, plus whoever took a seat a canceller freed (an entry leaves the waitlist by
    # an offer or by its participant leaving: DELETE /waitlist/{id})
    taken = totals["outcomes"].get("waitlist_offers_taken", 0)
    assert counters["registrations"] == seats + taken
    assert counters["cancellations"] == min(burst.cancellers, seats) > 0
    assert taken > 0  # the sweeper offered a freed seat, and it was taken
    assert counters["waitlist_left"] >= taken


def test_simulated_people_are_counted_each_at_an_address_of_their_own(
    settings: Settings,
) -> None:
    """`aqstream run` no longer raises the credential limit for everyone so that the demo can
    sign its participants up from one address (issue L, finding 10): with the platform's client
    secret, each simulated person's calls carry an address of their own, signed as the
    dashboards sign a browser's, and the per-address limit counts them apart. Without it, the
    fourth sign-up from this one address is refused."""
    import uuid

    from pydantic import SecretStr

    from api.app import create_app
    from aqstream.simulate import Http, Unexpected

    secret = uuid.uuid4().hex * 2
    app = create_app(
        settings.model_copy(
            update={
                "rate_limit_auth": "3/minute",
                "dashboards_client_secret": SecretStr(secret),
            }
        )
    )
    people = [Account(f"addr-{uuid.uuid4().hex[:10]}@example.org", "P") for _ in range(6)]
    with served(app) as url:
        signed = Http(url, threading.Event(), max_wait_s=0.5, client_secret=secret.encode())
        try:
            assert all(signed.token(person) for person in people)  # six sign-ups, no 429
        finally:
            signed.close()
        plain = Http(url, threading.Event(), max_wait_s=0.5)
        try:
            with pytest.raises(Unexpected, match="429"):
                for _ in range(6):
                    plain.token(Account(f"same-{uuid.uuid4().hex[:10]}@example.org", "P"))
        finally:
            plain.close()
