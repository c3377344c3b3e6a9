"""CLI commands that act on the database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aqstream.cli import app
from core.settings import Settings


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AQSTREAM_DATABASE_URL": settings.owner_url.render_as_string(hide_password=False),
        "AQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AQSTREAM_REDIS_URL": settings.redis_url,
        "AQSTREAM_S3_ENDPOINT": settings.s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)


def test_admin_grant_and_revoke(cli_env, api, client) -> None:
    user = api.register("operator")
    runner = CliRunner()
    granted = runner.invoke(app, ["admin", "grant", user["email"].upper()])
    assert granted.exit_code == 0, granted.output
    assert client.get("/api/v1/users/me", headers=user["headers"]).json()["is_platform_admin"]
    revoked = runner.invoke(app, ["admin", "revoke", user["email"]])
    assert revoked.exit_code == 0, revoked.output
    assert not client.get("/api/v1/users/me", headers=user["headers"]).json()["is_platform_admin"]


def test_admin_grant_of_an_unknown_email_fails(cli_env) -> None:
    result = CliRunner().invoke(app, ["admin", "grant", "nobody-here@example.org"])
    assert result.exit_code == 1
    assert "no account" in result.output


def test_the_demos_settings_apply_to_the_demo_only() -> None:
    """`aqstream run --no-demo` runs as configured; with the demo, its decline rate is scoped to
    the demo's organizations (issue L, finding 10)."""
    from aqstream.cli import DEMO_SCENARIO, DEMO_SEED, run_environment
    from aqstream.simulate import build_plan

    bare = run_environment(with_demo=False)
    assert not {k for k in bare if "RATE_LIMIT" in k or "SANDBOX" in k}, bare
    demo = run_environment(with_demo=True)
    # the demo's participants are counted each at an address of its own (signed like the
    # dashboards' browsers), so no limit is raised for everyone
    assert not {k for k in demo if "RATE_LIMIT" in k}, demo
    assert len(demo["AQSTREAM_DASHBOARDS_CLIENT_SECRET"]) >= 32
    assert (
        run_environment(with_demo=True)["AQSTREAM_DASHBOARDS_CLIENT_SECRET"]
        != (demo["AQSTREAM_DASHBOARDS_CLIENT_SECRET"])
    )  # one per run, never a known default
    scope = demo["AQSTREAM_PAYMENT_SANDBOX_FAILURE_SCOPE"]
    assert demo["AQSTREAM_PAYMENT_SANDBOX_FAILURE_RATE"] == "0.1"
    slugs = [o.slug for o in build_plan(DEMO_SEED, DEMO_SCENARIO).organizers]
    assert slugs and all(slug.startswith(scope) for slug in slugs)
    assert not "pycon-berlin".startswith(scope)


def test_the_bootstrap_serves_metrics_and_closes_in_reverse(settings: Settings) -> None:
    """`aqstream jobs | relay | worker` start through aqstream/bootstrap.py: a busy metrics port
    is logged (or refused where the metrics are required), and what was opened is closed last
    first, even after a failure."""
    import socket

    import httpx
    from prometheus_client import CollectorRegistry, Counter

    from aqstream.bootstrap import MetricsPortBusy, bootstrap
    from aqstream.stack.servers import free_port

    registry = CollectorRegistry()
    Counter("aqstream_bootstrap_probe", "a probe", registry=registry).inc()
    closed: list[str] = []
    port = free_port()
    with pytest.raises(RuntimeError), bootstrap("probe", settings) as process:
        process.on_close(lambda: closed.append("first"))
        process.serve_metrics(registry, "127.0.0.1", port)
        body = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "aqstream_bootstrap_probe_total 1.0" in body
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            busy = taken.getsockname()[1]
            process.serve_metrics(registry, "127.0.0.1", busy)  # logged; the process goes on
            with pytest.raises(MetricsPortBusy, match=f"metrics port {busy}"):
                process.serve_metrics(registry, "127.0.0.1", busy, required=True)
        process.on_close(lambda: closed.append("last"))
        raise RuntimeError("a failing step")
    assert closed == ["last", "first"]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
