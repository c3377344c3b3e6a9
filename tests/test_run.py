"""`aqstream run` (as `make run`, under the README's tour): the platform comes up at the printed
URLs, the README's blocks run as written, the demo's organizer signs in with the printed
credentials and finds live views on a dashboard, its relay publishes an API sign-up to the user
topic of the run's own broker, the relay and the worker serve their metrics, the dashboards sign
that user in through the run's API, a crashed broker is restarted on its port and the relay
publishes through it again, and Ctrl-C leaves nothing behind. One run for all of it: each start
is a whole local stack."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from aqstream.stack import LocalStack
from core.settings import Settings
from tests import readme_tour
from tests.procs import alive, descendants, processes_under


def _wait_ok(url: str, proc: subprocess.Popen[str], timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, "aqstream run exited"
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {timeout:.0f}s")
        time.sleep(0.3)


def _record_of(bootstrap: str, topic: str, key: str, timeout: float) -> dict:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    try:
        deadline = time.monotonic() + timeout
        while not consumer.partitions_for_topic(topic):
            assert time.monotonic() < deadline, f"no topic {topic}"
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        consumer.seek_to_beginning()
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    if record.key.decode() == key:
                        headers = {k: v.decode() for k, v in record.headers}
                        return {"headers": headers, "value": json.loads(record.value)}
        pytest.fail(f"no record keyed {key} on {topic}")
    finally:
        consumer.close()


def _demo_views(base: str, email: str, password: str, proc, timeout: float) -> int:
    """Views on the busiest dashboard of the demo organizer's events, once there are any."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(base_url=f"{base}/api/v1", timeout=10) as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "aqstream run exited"
            login = http.post("/auth/login", json={"email": email, "password": password})
            if login.status_code == 200:
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                for org in http.get("/organizations", headers=headers).json()["items"]:
                    events = http.get(f"/organizations/{org['id']}/events", headers=headers)
                    for event in events.json()["items"]:
                        board = http.get(
                            f"/analytics/events/{event['id']}/dashboard", headers=headers
                        )
                        if board.status_code == 200 and board.json()["kpis"]["views"] > 0:
                            return board.json()["kpis"]["views"]
                        last = f"{board.status_code} {board.text[:200]}"
            else:
                last = f"login {login.status_code}"
            time.sleep(2)
    raise AssertionError(f"the demo's dashboards stayed empty: {last}")


def _child_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """The settings a child of `aqstream run` reads from the environment it is given."""
    for key in [k for k in os.environ if k.startswith("AQSTREAM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def test_an_organization_of_your_own_always_pays_under_the_runs_environment(monkeypatch) -> None:
    """Issue N, item 3: the demo's 10 % sandbox decline rate reaches the demo's organizations
    only. The sandbox the API builds from the run's environment declines none of 300 payments
    of another organization, and some of the demo's (0.9^300: never all succeed by chance)."""
    from aqstream.cli import run_environment
    from aqstream.simulate import build_plan
    from domain.payment.providers.base import PaymentRequest
    from domain.payment.providers.sandbox import build

    sandbox = build(_child_settings(monkeypatch, run_environment(with_demo=True)))

    def outcomes(slug: str) -> Counter:
        seen: Counter = Counter()
        for _ in range(300):
            reference = sandbox.create_payment(
                PaymentRequest(
                    payment_id=uuid.uuid4(), registration_id=uuid.uuid4(),
                    tenant_id=uuid.uuid4(), amount=4900, currency="EUR", description="ticket",
                    idempotency_key=uuid.uuid4().hex, tenant_slug=slug,
                )
            ).reference  # fmt: skip
            seen[{"s": "completed", "f": "failed"}[reference.rsplit("_", 2)[1]]] += 1
        return seen

    assert outcomes("my-meetup") == Counter(completed=300)
    assert outcomes("sim-2-demo-org-0") == Counter(completed=300)  # another seed's: not the demo
    demo_slug = build_plan(1, "demo").organizers[0].slug
    assert outcomes(demo_slug)["failed"] > 0


def test_the_runs_children_send_notifications_to_the_mailbox_unless_configured(
    monkeypatch,
) -> None:
    """Issue N, item 8: e-mail to the mailbox's SMTP server, Telegram to its Bot API stand-in
    with a bot token of the run's own; a server the user configured (environment or .env) wins."""
    from aqstream.cli import MailboxAddress, run_environment

    mailbox = MailboxAddress("127.0.0.1", 18025, 11025)
    fresh = Settings(_env_file=None)
    env, again = run_environment(False, fresh, mailbox), run_environment(False, fresh, mailbox)
    assert env["AQSTREAM_TELEGRAM_BOT_TOKEN"] != again["AQSTREAM_TELEGRAM_BOT_TOKEN"]  # per run
    assert "SMTP" not in str(run_environment(False, fresh))  # no mailbox, nothing set
    mine = Settings(_env_file=None, smtp_host="smtp.example.org", telegram_bot_token="1:real")
    configured = run_environment(False, mine, mailbox)
    assert not {k for k in configured if "SMTP" in k or "TELEGRAM" in k}, configured
    child = _child_settings(monkeypatch, env)
    assert (child.smtp_host, child.smtp_port) == ("127.0.0.1", 11025)
    assert child.telegram_api_base == "http://127.0.0.1:18025"
    assert child.telegram_bot_token.get_secret_value() == env["AQSTREAM_TELEGRAM_BOT_TOKEN"]
    # Linking works locally: the API's webhook, with a secret of the run's, at the stand-in.
    assert child.telegram_webhook_url == f"{fresh.api_base_url}/api/v1/telegram/webhook"
    secret = child.telegram_webhook_secret.get_secret_value()
    assert (
        secret
        == env["AQSTREAM_TELEGRAM_WEBHOOK_SECRET"]
        != again["AQSTREAM_TELEGRAM_WEBHOOK_SECRET"]
    )


@pytest.mark.slow
@pytest.mark.timeout(900)  # make run's start, the walk-through, these checks and Ctrl-C
def test_the_readme_tour_runs_as_written_then_the_run_serves_relays_and_stops_cleanly() -> None:
    """One `make run` for both (each start is a whole local stack): the README's tour
    (tests/readme_tour.py), then the checks below while it runs, then Ctrl-C."""
    seen: set[int] = set()
    sign_up: dict[str, str] = {}

    def during(run: readme_tour.Run) -> None:
        proc, state_dir = run.proc, run.state
        base = run.url("AQSTREAM_API_PORT")
        relay_metrics = f"{run.url('AQSTREAM_RELAY_METRICS_PORT')}/metrics"
        dashboards = run.url("AQSTREAM_DASHBOARDS_PORT")
        mailbox = run.url("AQSTREAM_MAILBOX_PORT")
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"database", "broker", "redis", "s3"}
        assert httpx.get(f"{base}/docs", timeout=5).status_code == 200

        _wait_ok(relay_metrics, proc, 60)
        email = f"run-{uuid.uuid4().hex[:8]}@example.org"
        signed_up = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": email, "password": "correct horse battery"},
            timeout=10,
        )
        assert signed_up.status_code == 201, signed_up.text
        sign_up["email"] = email
        user_id = signed_up.json()["user"]["id"]
        bootstrap = LocalStack(Settings(state_dir=state_dir)).environment()[
            "AQSTREAM_KAFKA_BOOTSTRAP"
        ]
        record = _record_of(bootstrap, "aqstream.user.v1", user_id, 30)
        assert record["headers"]["event_type"] == "user.registered"
        assert record["value"]["email"] == email
        metrics = httpx.get(relay_metrics, timeout=5).text
        assert 'aqstream_relay_published_total{topic="aqstream.user.v1"}' in metrics
        worker = _wait_ok(f"{run.url('AQSTREAM_WORKER_METRICS_PORT')}/metrics", proc, 60).text
        assert "aqstream_worker_records_total" in worker
        # The dashboards answer, and sign in through this run's API.
        _wait_ok(f"{dashboards}/health", proc, 60)
        assert httpx.get(f"{dashboards}/signin", timeout=5).status_code == 200
        signed_in = httpx.post(
            f"{dashboards}/auth/login",
            data={"email": email, "password": "correct horse battery", "next": "/"},
            timeout=10,
        )
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        assert "aq_access" in signed_in.cookies

        # The demo: its organizer signs in with the printed credentials, and the dashboard of
        # one of their events counts live tracked views.
        from aqstream.cli import demo_accounts

        _org, demo_email, demo_password = demo_accounts()[0]
        assert _demo_views(base, demo_email, demo_password, proc, 150) > 0

        # Notifications reach the mailbox: the sign-up's welcome and the link to confirm the
        # address by e-mail (pointing at this run's dashboards), and the demo's participants who
        # signed up with Telegram get theirs through the Bot API stand-in.
        def mailed(channel: str, to: str | None = None) -> list[dict]:
            messages = _wait_ok(f"{mailbox}/api/messages", proc, 10).json()
            return [
                m for m in messages if m["channel"] == channel and to in (None, *m["recipients"])
            ]

        deadline = time.monotonic() + 90
        while not (len(mailed("email", email)) >= 2 and mailed("telegram")):
            assert time.monotonic() < deadline, _wait_ok(f"{mailbox}/api/messages", proc, 5).text
            time.sleep(1)
        assert any(f"{dashboards}/verify-email?token=" in m["text"] for m in mailed("email", email))
        assert "AqStream mailbox" in _wait_ok(mailbox, proc, 5).text
        # A child's warning reaches the terminal (the stand-in refusing a wrong bot token).
        refused = httpx.post(f"{mailbox}/bot1:wrong/sendMessage", json={"chat_id": 1, "text": "x"})
        assert refused.status_code == 401

        # A crashed broker is started again on its port, and the relay publishes through it.
        stack = LocalStack(Settings(state_dir=state_dir))
        (crashed,) = [s for s in stack.status() if s.name == "kafka"]
        os.kill(crashed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        deadline = killed_at + 120
        while True:
            (broker,) = [s for s in stack.status() if s.name == "kafka"]
            if broker.pid not in (None, crashed.pid) and broker.healthy:
                break
            assert time.monotonic() < deadline, "the crashed broker was not restarted"
            time.sleep(0.5)
        assert broker.url == crashed.url
        print(f"the broker came back after {time.monotonic() - killed_at:.0f} s")
        later = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": f"after-{email}", "password": "correct horse battery"},
            timeout=10,
        )
        assert later.status_code == 201, later.text
        record = _record_of(bootstrap, "aqstream.user.v1", later.json()["user"]["id"], 60)
        assert record["value"]["email"] == f"after-{email}"

        seen.update(descendants(proc.pid) | processes_under(state_dir))
        assert len(seen) >= 6  # api, dashboards + four servers (and their helpers)

    def after(run: readme_tour.Run) -> None:
        from aqstream.cli import demo_accounts

        output = run.output.read_text()
        print(f"{len(output.splitlines())} lines on the terminal")
        # make itself dies of the Ctrl-C (-SIGINT, "Interrupt"); `aqstream run` must not fail.
        assert run.proc.returncode in (0, -signal.SIGINT), output[-4000:]
        assert not re.search(r"make: \*\*\* .* Error \d+", output), output[-4000:]
        base, state_dir = run.url("AQSTREAM_API_PORT"), run.state
        assert f"{base}/docs" in output
        assert f"{run.url('AQSTREAM_RELAY_METRICS_PORT')}/metrics" in output  # with the URLs
        assert run.url("AQSTREAM_DASHBOARDS_PORT") in output
        _org, demo_email, demo_password = demo_accounts()[0]
        assert demo_email in output and demo_password in output  # the demo's credentials
        assert run.url("AQSTREAM_MAILBOX_PORT") in output and str(state_dir / "logs") in output
        # Quiet: access logs are in the API's file, not on the terminal; warnings are.
        api_log = (state_dir / "logs" / "api.log").read_text()
        assert '"GET /health HTTP/1.1" 200' in api_log and '"GET /health' not in output
        assert "mailbox | " in output and "telegram_unauthorized" in output
        # Ctrl-C: the demo's totals (docs/simulate.md), then everything else stopped.
        totals = output.index("seed 1, scenario demo, run ")
        assert "child_stopped" not in output[output.index("Press Ctrl-C") : totals], output[-4000:]
        time.sleep(0.2)
        left = {pid for pid in seen if alive(pid)}
        assert left == set(), f"processes left behind: {left}"
        assert processes_under(state_dir) == set()

    assert readme_tour.tour(during=during, after=after) == 0, "see the tour's output above"
    assert sign_up, "the run's own checks did not run"


def test_the_e_mailed_links_point_at_the_runs_dashboards_unless_configured() -> None:
    from aqstream.cli import account_links

    links = account_links(Settings(_env_file=None, dashboards_host="0.0.0.0"), 18050)
    assert links == {
        "AQSTREAM_PASSWORD_RESET_URL": "http://127.0.0.1:18050/reset-password?token={token}",
        "AQSTREAM_EMAIL_VERIFICATION_URL": "http://127.0.0.1:18050/verify-email?token={token}",
    }
    mine = Settings(_env_file=None, email_verification_url="https://example.org/v?t={token}")
    assert set(account_links(mine, 18050)) == {"AQSTREAM_PASSWORD_RESET_URL"}
