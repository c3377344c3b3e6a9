"""The `aqstream` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from core.settings import PROJECT_ROOT, Settings

app = typer.Typer(
    help="AqStream: event registration with live analytics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(help="The embedded local stack (PostgreSQL, Kafka, Redis, S3).")
app.add_typer(stack_app, name="stack")
dlq_app = typer.Typer(help='The worker\'s dead-letter topic (docs/streams.md, "Worker").')
app.add_typer(dlq_app, name="dlq")


def _settings() -> Settings:
    return Settings()


def _stack(settings: Settings | None = None):
    from aqstream.stack import LocalStack

    return LocalStack(settings or _settings())


def _ensure_stack(settings: Settings) -> tuple[Settings, list[str]]:
    """Start the local servers that are not configured externally; return resolved settings."""
    from aqstream.stack import StackError

    stack = _stack(settings)
    try:
        started = stack.up()
    except StackError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    return stack.resolved_settings(), started


# --- stack -------------------------------------------------------------------------------------


@stack_app.command("up")
def stack_up() -> None:
    """Start the local servers (idempotent: running ones are kept)."""
    started_at = time.perf_counter()
    base = _settings()
    _, started = _ensure_stack(base)
    took = time.perf_counter() - started_at
    typer.echo(f"started: {', '.join(started) or 'nothing (already up)'} in {took:.1f}s")
    _print_status(base)


@stack_app.command("down")
def stack_down() -> None:
    """Stop the local servers started by `stack up` or `run`."""
    stopped = _stack().down()
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show each server: local (PID, health), external, or stopped."""
    _print_status(_settings(), as_json)


@stack_app.command("env")
def stack_env() -> None:
    """Print `export` lines pointing other tools at the running stack."""
    for key, value in _stack().environment().items():
        typer.echo(f"export {key}='{value}'")


def _print_status(settings: Settings, as_json: bool = False) -> None:
    from dataclasses import asdict

    rows = _stack(settings).status()
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    for r in rows:
        health = "" if r.healthy is None else (" healthy" if r.healthy else " UNHEALTHY")
        pid = f" pid={r.pid}" if r.pid else ""
        kind = f"  ({r.kind})" if r.kind else ""
        typer.echo(f"  {r.name:<9} {r.source:<9}{pid}{health}  {_redact(r.url)}{kind}")


def _redact(url: str) -> str:
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


# --- migrations --------------------------------------------------------------------------------


@app.command()
def migrate(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply database migrations (as the owner) and make sure the S3 bucket exists."""
    from aqstream import migrations
    from core.resources import ensure_bucket

    settings, _ = _ensure_stack(_settings())
    migrations.upgrade(settings, revision)
    created = ensure_bucket(settings)
    typer.echo(
        f"database at {revision}; bucket {settings.s3_bucket} {'created' if created else 'ok'}"
    )


@app.command()
def backfill(
    event: Annotated[
        str | None, typer.Option("--event", help="Only this event (id); default: every event")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Rebuild buckets from this ISO time on (no offset: UTC); default: all"),
    ] = None,
) -> None:
    """Rebuild the analytics rollups from the raw facts (absolute, idempotent), one event at a
    time, with a progress bar (docs/analytics.md)."""
    import uuid
    from datetime import UTC, datetime

    from tqdm import tqdm

    from domain.db import make_engine
    from warehouse.backfill import backfill as run_backfill
    from warehouse.backfill import targets
    from warehouse.engine import warehouse_engine

    try:
        event_id = uuid.UUID(event) if event else None
        start = datetime.fromisoformat(since) if since else None
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    settings, _ = _ensure_stack(_settings())
    # No statement timeout: one event's rebuild is one long statement per rollup.
    engines = {"pool_size": 1, "statement_timeout_ms": 0, "application_name": "aqstream-backfill"}
    owner = make_engine(settings.owner_url, **engines)
    writer = warehouse_engine(settings, **engines)
    try:
        total = sum(t.facts for t in targets(owner, event_id, start))
        with tqdm(total=total, unit="fact", desc="backfill") as bar:

            def advance(target) -> None:
                bar.update(target.facts)
                bar.set_postfix(event=str(target.event_id)[:8])

            result = run_backfill(owner, writer, event_id=event_id, since=start, progress=advance)
    finally:
        owner.dispose()
        writer.dispose()
    typer.echo(
        f"rebuilt {result.events} events from {result.facts} facts "
        f"({result.minute_rows} minute rows)"
    )


warehouse_app = typer.Typer(help="The analytics warehouse (docs/analytics.md).")
app.add_typer(warehouse_app, name="warehouse")


@warehouse_app.command("reconcile")
def warehouse_reconcile(
    tenant: Annotated[
        str | None, typer.Option(help="Only this organization (id); default: every one")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Business facts from this ISO time on (no offset: UTC)"),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="... and before this one; default: now minus the settle margin"),
    ] = None,
    settle_s: Annotated[
        int, typer.Option("--settle-s", min=0, help="Leave younger business facts to the stream")
    ] = 300,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Store nothing; show what would be added")
    ] = False,
    every_row: Annotated[
        bool, typer.Option("--all", help="Every tenant and kind, not only those that differ")
    ] = False,
) -> None:
    """Re-derive the domain facts from the transactional tables, store the missing ones
    (idempotent), rebuild the rollups they touch, and print what differed, with a progress bar
    (docs/analytics.md, "Reconcile")."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from tqdm import tqdm

    from domain.db import make_engine
    from warehouse.engine import warehouse_engine
    from warehouse.reconcile import expected_counts, reconcile, window

    try:
        tenant_id = uuid.UUID(tenant) if tenant else None
        lo, hi = (datetime.fromisoformat(v) if v else None for v in (start, end))
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    lo, hi = (t.replace(tzinfo=UTC) if t and t.tzinfo is None else t for t in (lo, hi))
    settings, _ = _ensure_stack(_settings())
    # The connections of `aqstream backfill`: reads as the owner, writes as the warehouse role.
    engines = {"pool_size": 1, "statement_timeout_ms": 0, "application_name": "aqstream-reconcile"}
    owner = make_engine(settings.owner_url, **engines)
    writer = warehouse_engine(settings, **engines)
    now, settle = datetime.now(UTC), timedelta(seconds=settle_s)
    try:
        first, last = window(now, lo, hi, settle)
        total = sum(expected_counts(owner, start=first, end=last, tenant_id=tenant_id).values())
        with tqdm(total=total, unit="fact", desc="reconcile") as bar:

            def advance(_tenant, event, seen: int) -> None:
                bar.update(seen)
                bar.set_postfix(event=str(event)[:8])

            result = reconcile(
                owner, writer, now=now, tenant_id=tenant_id, start=lo, end=hi, settle=settle,
                dry_run=dry_run, progress=advance,
            )  # fmt: skip
    finally:
        owner.dispose()
        writer.dispose()
    rows = result.rows() if every_row else result.differing()
    checked = sum(c.expected for c in result.counts.values())
    since = f"from {first:%Y-%m-%d %H:%M:%S} " if lo else ""
    typer.echo(f"business facts {since}before {last:%Y-%m-%d %H:%M:%S} UTC: {checked}")
    if not rows:
        typer.echo("no differences")
        return
    added = "to add" if dry_run else "added"
    typer.echo(f"{'tenant':<36}  {'kind':<16}{'expected':>9}{'found':>9}{added:>9}{'extra':>7}")
    for tenant_row, kind, c in rows:
        typer.echo(
            f"{tenant_row!s:<36}  {kind.value:<16}{c.expected:>9}{c.found:>9}{c.added:>9}"
            f"{c.extra:>7}"
        )
    if any(c.extra for _, _, c in rows):
        typer.echo("extra: stored facts no business fact accounts for (left as they are)")
    if dry_run:
        typer.echo(f"dry run: {result.added} facts would be added")
    else:
        typer.echo(
            f"added {result.added} facts ({result.from_outbox} rebuilt from outbox rows, "
            f"{result.derived} derived from the tables); rollups of {result.events} events rebuilt"
        )


# --- platform administration -----------------------------------------------------------------

admin_app = typer.Typer(help="Platform administrators (who approve organization requests).")
app.add_typer(admin_app, name="admin")


def _set_admin(email: str, value: bool) -> None:
    from sqlalchemy import create_engine, pool, text

    from domain.errors import ValidationFailed
    from domain.identity.service import normalize_email

    settings, _ = _ensure_stack(_settings())
    try:
        email = normalize_email(email)
    except ValidationFailed as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        raise typer.Exit(2) from None
    # As the owner: this is an operator's act, outside any user's row level security context.
    engine = create_engine(settings.owner_url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        updated = conn.execute(
            text(
                "UPDATE users SET is_platform_admin = :v, updated_at = now() "
                "WHERE email = :e AND deleted_at IS NULL"
            ),
            {"v": value, "e": email},
        ).rowcount
    engine.dispose()
    if not updated:
        typer.secho(f"error: no account with e-mail {email}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"{email} is {'now' if value else 'no longer'} a platform administrator")


@admin_app.command("grant")
def admin_grant(email: str) -> None:
    """Make the account with this e-mail a platform administrator."""
    _set_admin(email, True)


@admin_app.command("revoke")
def admin_revoke(email: str) -> None:
    """Take platform administration away from the account with this e-mail."""
    _set_admin(email, False)


# --- processes -----------------------------------------------------------------------------------


@app.command()
def api(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the REST API with uvicorn (servers from the environment or the local stack)."""
    import uvicorn

    from api.app import create_app

    settings, _ = _ensure_stack(_settings())
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )


@app.command()
def jobs(
    interval: Annotated[float, typer.Option(help="Seconds between sweeps")] = 1.0,
    once: Annotated[bool, typer.Option(help="Sweep once and exit")] = False,
    metrics_host: Annotated[
        str, typer.Option(envvar="AQSTREAM_JOBS_METRICS_HOST", help="Prometheus metrics host")
    ] = "127.0.0.1",
    metrics_port: Annotated[
        int,
        typer.Option(envvar="AQSTREAM_JOBS_METRICS_PORT", help="Its port; 0 = do not serve"),
    ] = 9104,
) -> None:
    """Background jobs: seat holds, waitlists, unpaid registrations, notifications, reminders,
    media cleanup, the warehouse's count check (metrics on --metrics-port; aqstream/jobs.py)."""
    from aqstream.bootstrap import bootstrap
    from aqstream.jobs import JobsMetrics, build_tasks, run_due

    settings, _ = _ensure_stack(_settings())
    with bootstrap("jobs", settings) as process:
        sessions = process.sessions(settings.app_url, pool_size=2, application_name="aqstream-jobs")
        metrics = JobsMetrics()
        tasks = build_tasks(settings, sessions, interval, metrics=metrics)
        if not once:  # a busy port must not stop the jobs
            process.serve_metrics(metrics.registry, metrics_host, metrics_port)
        stop = process.handle_signals()
        process.log.info("jobs_started", interval_s=interval, jobs=[t.name for t in tasks])
        try:
            while not stop.is_set():
                run_due(tasks)
                if once:
                    break
                deadline = min(t.due_at for t in tasks)  # the next task's turn
                while not stop.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            process.log.info("jobs_stopped")


@app.command()
def relay(
    once: Annotated[
        bool, typer.Option(help="Publish what is unsent now, then exit (no waiting, no retry)")
    ] = False,
) -> None:
    """Publish the outbox to Kafka: at least once, in order per aggregate (docs/streams.md)."""
    from aqstream.bootstrap import MetricsPortBusy, bootstrap
    from streams.relay import Relay, RelayMetrics

    settings, _ = _ensure_stack(_settings())
    with bootstrap("relay", settings) as process:
        metrics = RelayMetrics()
        worker = Relay(settings, metrics=metrics)
        if once:
            total = 0
            try:
                while published := worker.relay_once():
                    total += published
            finally:
                worker.close()
            typer.echo(f"published {total} outbox rows")
            return
        try:
            process.serve_metrics(
                metrics.registry,
                settings.relay_metrics_host,
                settings.relay_metrics_port,
                required=True,
            )
        except MetricsPortBusy as exc:
            typer.secho(f"error: {exc}; set AQSTREAM_RELAY_METRICS_PORT", fg="red", err=True)
            raise typer.Exit(1) from None
        worker.run(process.handle_signals())


@app.command()
def worker() -> None:
    """Run the stream worker: payment saga and notification agents (docs/streams.md, "Worker")."""
    import faust

    from aqstream.bootstrap import bootstrap
    from domain.db import make_sessionmaker
    from domain.notification.channels import Channels
    from domain.payment.runtime import PaymentRuntime
    from streams.processor import Deps
    from streams.worker import build_app, ensure_worker_topics
    from warehouse.engine import warehouse_engine

    settings, _ = _ensure_stack(_settings())
    with bootstrap("worker", settings) as process:
        sessions = process.sessions(
            settings.app_url, pool_size=4, application_name="aqstream-worker"
        )
        # The tracking lanes and the analytics agent store at once: a connection each, and one
        # spare.
        warehouse = warehouse_engine(
            settings, pool_size=settings.analytics_store_concurrency + 2,
            application_name="aqstream-worker-sink",
        )  # fmt: skip
        process.on_close(warehouse.dispose)
        payments = PaymentRuntime.start(settings, sessions)
        process.on_close(payments.close)
        ensure_worker_topics(settings)
        app_, processor = build_app(
            Deps(
                settings,
                sessions,
                payments.providers,
                Channels(settings),
                warehouse=make_sessionmaker(warehouse),
            )
        )
        process.serve_metrics(  # a busy port must not stop the stream
            processor.metrics.registry, settings.worker_metrics_host, settings.worker_metrics_port
        )
        process.log.info("worker_starting", group=app_.conf.id)
        # Faust's Worker handles SIGTERM/SIGINT and stops the app cleanly.
        faust.Worker(
            app_, loglevel=settings.log_level, override_logging=False
        ).execute_from_commandline()


@app.command()
def dashboards(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Serve the organizer dashboards (Dash); they talk only to the API (docs/dashboards.md)."""
    from aqstream.bootstrap import bootstrap
    from dashboards.app import api_url, serve

    settings = _settings().model_copy(
        update={k: v for k, v in {"dashboards_host": host, "dashboards_port": port}.items() if v}
    )
    with bootstrap("dashboards", settings) as process:
        process.log.info(
            "dashboards_starting",
            url=f"http://{settings.dashboards_host}:{settings.dashboards_port}",
            api=api_url(settings),
        )
        serve(settings)


@app.command()
def mailbox() -> None:
    """A local SMTP server and Telegram Bot API stand-in, and a page showing what they received
    (what `aqstream run` points notifications at; docs/notifications.md, "Locally")."""
    from aqstream.mailbox import Mailbox
    from core.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_json)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    token = settings.telegram_bot_token
    Mailbox(
        settings.mailbox_host,
        settings.mailbox_port,
        settings.mailbox_smtp_port,
        telegram_token=token.get_secret_value() if token else None,
        keep=settings.mailbox_keep,
    ).serve()


@dlq_app.command("replay")
def dlq_replay(
    limit: Annotated[int | None, typer.Option(help="Replay at most this many")] = None,
) -> None:
    """Send dead letters back to their topics, to the agent that gave up on them."""
    from core.logging import configure_logging
    from streams.dlq import replay_dead_letters

    settings, _ = _ensure_stack(_settings())
    configure_logging(settings.log_level, settings.log_json)
    typer.echo(f"replayed {replay_dead_letters(settings, limit=limit)} dead letters")


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="The same seed makes the same plan")] = 1,
    api: Annotated[str | None, typer.Option(help="API base URL (default: this config's)")] = None,
    scenario: Annotated[str, typer.Option(help="tiny | small | demo | large")] = "small",
    visits: Annotated[int | None, typer.Option(help="Visits (default: the scenario's)")] = None,
    rate: Annotated[float | None, typer.Option(help="Visitors per second (live mode)")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds")] = None,
    forever: Annotated[bool, typer.Option(help="Go on until Ctrl-C")] = False,
    totals_json: Annotated[Path | None, typer.Option(help="Write the totals here")] = None,
    admin_email: Annotated[str | None, typer.Option(envvar="AQSTREAM_SIMULATE_ADMIN_EMAIL")] = None,
    admin_password: Annotated[
        str | None, typer.Option(envvar="AQSTREAM_SIMULATE_ADMIN_PASSWORD")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 8,
) -> None:
    """Deterministic traffic through the API of a running platform: organizers, events,
    visitors from sources with drop-off, a flash sale, payments, refunds, check-ins; prints the
    totals it produced (docs/simulate.md)."""
    _simulate(seed, api, scenario, visits, rate, duration, forever, totals_json, admin_email,
              admin_password, concurrency)  # fmt: skip


def _simulate(
    seed: int,
    api: str | None,
    scenario: str,
    visits: int | None,
    rate: float | None,
    duration: float | None,
    forever: bool,
    totals_json: Path | None,
    admin_email: str | None,
    admin_password: str | None,
    concurrency: int,
    *,
    progress: bool = True,
    telegram: bool = False,
) -> None:
    import signal

    from aqstream.simulate import (
        SCENARIOS,
        Account,
        Simulation,
        Stopped,
        build_plan,
        summary,
    )
    from core.logging import configure_logging
    from domain.identity.email_verification import signing_key as verification_key

    if scenario not in SCENARIOS:
        typer.secho(f"error: scenario is one of {', '.join(SCENARIOS)}", fg="red", err=True)
        raise typer.Exit(2)
    base = _settings()
    configure_logging(base.log_level, json=False)
    admin = None
    if admin_email:
        admin = Account(admin_email, "Administrator", password=admin_password or "")
    sim = Simulation(
        build_plan(seed, scenario),
        api or f"http://{base.api_host}:{base.api_port}",
        admin=admin,
        # Organizations need a platform admin's approval: an operator's act, as `admin grant`.
        grant_admin=lambda email: _set_admin(email, True),
        concurrency=concurrency,
        max_wait_s=3600 if forever or rate else 120,
        client_secret=base.dashboards_client_secret,
        progress=progress,
        telegram_bot_token=base.telegram_bot_token if telegram else None,
        verification_key=verification_key(base.ticket_signing_key.get_secret_value()),
    )
    signal.signal(signal.SIGTERM, lambda *_: sim.stop.set())
    count = None if forever or duration else (visits or SCENARIOS[scenario].visitors)
    interrupted = False
    try:
        sim.setup(sign_in_all=count is not None and not rate)
        sim.run(count, rate=rate, duration=duration)
    except (KeyboardInterrupt, Stopped):
        interrupted = True
    try:
        if interrupted:
            typer.echo("\nstopping; then the totals are read back (Ctrl-C again to skip) ...")
            sim.halt()
        sim.settle(timeout_s=5 if interrupted else 60)
    except (KeyboardInterrupt, Stopped):
        typer.echo("totals not read back: what the run had seen so far")
    finally:
        sim.close()
    totals = sim.totals()
    typer.echo(summary(totals))
    if totals_json:
        totals_json.write_text(json.dumps(totals, indent=2, sort_keys=True))
        typer.echo(f"wrote {totals_json}")


DEMO_SEED = 1
DEMO_SCENARIO = "demo"


@app.command()
def demo(
    rate: Annotated[float, typer.Option(help="Visitors per second")] = 1.0,
    seed: Annotated[int, typer.Option()] = DEMO_SEED,
    telegram: Annotated[
        bool,
        typer.Option(
            help="Every fourth participant signs up with Telegram (Login Widget data signed "
            "with AQSTREAM_TELEGRAM_BOT_TOKEN): only where the Bot API is a local stand-in"
        ),
    ] = False,
) -> None:
    """Seed the demo (organizers, events, accounts) through the API once it answers, then keep
    gentle live traffic going until stopped (SIGTERM or Ctrl-C), then print its totals: what
    `aqstream run` starts so the dashboards are alive. The same seed finds the same
    organizations again on the next run."""
    base = _settings()
    _wait_http(f"http://{base.api_host}:{base.api_port}/health", timeout=120)
    _simulate(
        seed, None, DEMO_SCENARIO, None, rate, None, True, None, None, None, 4,
        progress=False, telegram=telegram,
    )  # fmt: skip


def demo_accounts(seed: int = DEMO_SEED) -> list[tuple[str, str, str]]:
    """(organization, e-mail, password) of the demo's organizers."""
    from aqstream.simulate import PASSWORD, build_plan

    return [(o.name, o.email, PASSWORD) for o in build_plan(seed, DEMO_SCENARIO).organizers]


@app.command()
def run(
    with_demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Seed the demo and keep live traffic going")
    ] = True,
) -> None:
    """Start the whole platform: local stack, migrations, mailbox, API, jobs, outbox relay,
    stream worker and dashboards, supervised, plus the demo (organizers, events, live traffic).
    Each child's output goes to .aqstream/logs/<child>.log; the terminal shows their warnings
    and errors. Ctrl-C stops everything it started, the demo first (it prints its totals)."""
    from aqstream import migrations
    from aqstream.stack.servers import free_port, port_in_use
    from aqstream.supervisor import Child, Supervisor
    from core.logging import configure_logging
    from core.resources import ensure_bucket

    base = _settings()
    configure_logging(base.log_level, json=False)
    # The terminal is for the URLs and for trouble: not every migration's notes.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
    # Waiting for the local broker is asking it until it answers: the refusals are expected,
    # and the stack reports a broker that never comes.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if port_in_use(base.api_port):
        typer.secho(
            f"error: port {base.api_port} is taken; set AQSTREAM_API_PORT to another port",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    stack = _stack(base)
    typer.echo("starting the local stack ...")
    settings, started = _ensure_stack(base)
    try:
        typer.echo("applying migrations ...")
        migrations.upgrade(settings)
        ensure_bucket(settings)

        # The ports the children are configured with: one taken (e.g. by a second `run`) is
        # replaced by a free one that is none of the others, not yet bound by their children
        # (a free port of the moment can be the one a later child is about to listen on).
        configured = {settings.api_port, settings.api_metrics_port, settings.worker_metrics_port,
                      settings.relay_metrics_port, settings.dashboards_port,
                      settings.mailbox_port, settings.mailbox_smtp_port}  # fmt: skip

        def port(wanted: int) -> int:
            if wanted and not port_in_use(wanted):
                return wanted
            while (chosen := free_port()) in configured:
                pass
            configured.add(chosen)
            return chosen

        mailbox = MailboxAddress(settings.mailbox_host, port(settings.mailbox_port),
                          port(settings.mailbox_smtp_port))  # fmt: skip
        env = {**run_environment(with_demo, base, mailbox), **os.environ, **stack.environment()}
        env["AQSTREAM_MAILBOX_PORT"] = str(mailbox.port)
        env["AQSTREAM_MAILBOX_SMTP_PORT"] = str(mailbox.smtp_port)
        relay_port = settings.relay_metrics_port
        if relay_port and port_in_use(relay_port):
            relay_port = port(0)
            env["AQSTREAM_RELAY_METRICS_PORT"] = str(relay_port)
        dashboards_port = settings.dashboards_port
        if port_in_use(dashboards_port):
            dashboards_port = port(0)
            env["AQSTREAM_DASHBOARDS_PORT"] = str(dashboards_port)
        env |= account_links(settings, dashboards_port)
        me = [sys.executable, "-m", "aqstream"]
        # Started in this order, stopped in the reverse one: the demo first, the mailbox last.
        children = [
            Child("mailbox", [*me, "mailbox"], env),
            Child("api", [*me, "api"], env),
            Child("jobs", [*me, "jobs"], env),
            Child("relay", [*me, "relay"], env),
            Child("worker", [*me, "worker"], env),
            Child("dashboards", [*me, "dashboards"], env),
        ]
        if with_demo:
            local_bot = env.get("AQSTREAM_TELEGRAM_API_BASE") == mailbox.url
            telegram = ["--telegram"] if local_bot else []
            # It reads its totals back when stopped, and they are shown: time to do so.
            children.append(
                Child("demo", [*me, "demo", *telegram], env, echo_on_stop=True,
                      stop_timeout=DEMO_STOP_TIMEOUT_S)
            )  # fmt: skip
        logs = settings.state_dir / "logs"
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        dashboards_url = f"http://{settings.dashboards_host}:{dashboards_port}"

        def announce() -> None:
            _wait_http(f"{api_url}/health", timeout=60)
            typer.secho("\nAqStream is running", fg="green", bold=True)
            typer.echo(f"  API          {api_url}/api/v1")
            typer.echo(f"  API docs     {api_url}/docs")
            typer.echo(f"  health       {api_url}/health   ready {api_url}/ready")
            typer.echo(f"  metrics      {api_url}/metrics")
            typer.echo(f"  dashboards   {dashboards_url}")
            if relay_port:
                relay_url = f"http://{settings.relay_metrics_host}:{relay_port}/metrics"
                typer.echo(f"  relay        {relay_url}")
            typer.echo(f"  mailbox      {mailbox.url}   (e-mails and Telegram messages sent)")
            typer.echo(f"  logs         {logs}/<child>.log   (here: warnings and errors only)")
            _print_status(base)
            if with_demo:
                typer.echo("\nDemo: organizations, events and live traffic are being made; sign")
                typer.echo(f"in to the dashboards ({dashboards_url}) as an organizer:")
                for org, email, password in demo_accounts():
                    typer.echo(f"  {email}  password: {password}  ({org})")
            typer.echo("Press Ctrl-C to stop (the demo then prints its totals).\n")

        def revive_stack() -> None:
            """A crashed PostgreSQL, broker, Redis or S3 comes back on its port; the children
            reconnect by themselves."""
            revived = stack.up()
            if revived:
                typer.secho(f"restarted the local {', '.join(revived)}", fg="yellow", err=True)

        Supervisor(children, watch=revive_stack, log_dir=logs).run(on_started=announce)
    finally:
        stopped = stack.down(only=started)
        typer.echo(f"stopped: {', '.join(stopped) or 'no local servers (they were already up)'}")


DEMO_STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class MailboxAddress:
    """Where `aqstream run`'s mailbox child listens."""

    host: str
    port: int
    smtp_port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def account_links(settings: Settings, dashboards_port: int) -> dict[str, str]:
    """The e-mailed links to the dashboards' account pages (dashboards/account.py) at the port the
    run gives them, unless the user configured their own."""
    host = settings.dashboards_host
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    links = {}
    for name, path in (("password_reset_url", "reset-password"),
                       ("email_verification_url", "verify-email")):  # fmt: skip
        if getattr(settings, name) == Settings.model_fields[name].default:
            links[f"AQSTREAM_{name.upper()}"] = (
                f"http://{host}:{dashboards_port}/{path}?token={{token}}"
            )
    return links


def run_environment(
    with_demo: bool, settings: Settings | None = None, mailbox: MailboxAddress | None = None
) -> dict[str, str]:
    """What `aqstream run` gives its children before the user's environment (which wins).

    Human-readable logs (to the children's log files) unless the user asked for JSON, and
    unbuffered output, so the files and the terminal follow as things happen. A secret of this
    run's with which the dashboards (and the demo) sign the address of the browser (or simulated
    participant) they call the API for, so per-address limits count each one. With the
    ``mailbox``: e-mail goes to its SMTP server unless an SMTP server is configured (in the
    environment or .env, as ``settings`` read them), and Telegram to its Bot API stand-in, with
    a bot token and a webhook secret of this run's and the API's webhook registered there,
    unless a bot token or a Bot API is configured. With the demo
    only: its organizations' payments fail one time in ten (the sandbox's failure rate, scoped
    to the demo's organization slugs, so an organization of your own pays as it would without
    the demo)."""
    import secrets

    settings = settings or Settings()
    env = {
        "AQSTREAM_LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
        "AQSTREAM_DASHBOARDS_CLIENT_SECRET": secrets.token_hex(32),
    }
    if mailbox is not None and not settings.smtp_host:
        env |= {"AQSTREAM_SMTP_HOST": mailbox.host, "AQSTREAM_SMTP_PORT": str(mailbox.smtp_port)}
    default_api = Settings.model_fields["telegram_api_base"].default
    if (
        mailbox is not None
        and settings.telegram_bot_token is None
        and settings.telegram_api_base == default_api
    ):
        env |= {
            "AQSTREAM_TELEGRAM_API_BASE": mailbox.url,
            "AQSTREAM_TELEGRAM_BOT_TOKEN": f"{secrets.randbelow(10**9)}:{secrets.token_hex(16)}",
            # The API registers its webhook with the stand-in at start-up, so an account links
            # to Telegram locally as it would for real (docs/telegram.md).
            "AQSTREAM_TELEGRAM_WEBHOOK_SECRET": secrets.token_urlsafe(32),
            "AQSTREAM_TELEGRAM_WEBHOOK_URL": f"{settings.api_base_url}/api/v1/telegram/webhook",
        }
    if with_demo:
        env |= {
            "AQSTREAM_PAYMENT_SANDBOX_FAILURE_RATE": "0.1",
            "AQSTREAM_PAYMENT_SANDBOX_FAILURE_SCOPE": f"sim-{DEMO_SEED}-{DEMO_SCENARIO}-",
        }
    return env


def _wait_http(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    typer.secho(f"warning: {url} did not answer within {timeout:.0f}s", fg="yellow", err=True)


# --- generated documents -------------------------------------------------------------------------


@app.command()
def openapi(
    out: Annotated[Path, typer.Option()] = PROJECT_ROOT / "docs" / "openapi.json",
) -> None:
    """Write the OpenAPI schema (committed at docs/openapi.json)."""
    from aqstream.docs import openapi_json

    out.write_text(openapi_json())
    typer.echo(f"wrote {out}")


@app.command()
def schemas(
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; exit 1 if anything is stale")
    ] = False,
) -> None:
    """Write the JSON Schema of every domain event to streams/schemas/ (one per type and
    version) and the AsyncAPI document made from them, docs/asyncapi.yaml."""
    from streams.asyncapi import asyncapi_yaml
    from streams.contracts import SCHEMA_DIR, contract_problems, write_schemas

    document = PROJECT_ROOT / "docs" / "asyncapi.yaml"
    if check:
        problems = contract_problems()
        if not problems and (not document.exists() or document.read_text() != asyncapi_yaml()):
            problems.append("docs/asyncapi.yaml: stale")
        for problem in problems:
            typer.echo(f"  {problem}")
        if problems:
            typer.secho("event contracts are stale: run `aqstream schemas`", fg="red", err=True)
            raise typer.Exit(1)
        typer.echo("event schemas and docs/asyncapi.yaml are current")
        return
    changed = write_schemas()
    for path in changed:
        typer.echo(f"wrote {path.relative_to(PROJECT_ROOT)}")
    problems = contract_problems()  # what writing cannot fix: files of removed events
    for problem in problems:
        typer.secho(f"  {problem}", fg="yellow", err=True)
    typer.echo(f"{len(changed)} schema(s) changed in {SCHEMA_DIR.relative_to(PROJECT_ROOT)}")
    if not problems and (not document.exists() or document.read_text() != asyncapi_yaml()):
        document.write_text(asyncapi_yaml())
        typer.echo(f"wrote {document.relative_to(PROJECT_ROOT)}")


@app.command()
def asyncapi(
    out: Annotated[Path, typer.Option()] = PROJECT_ROOT / "docs" / "asyncapi.yaml",
) -> None:
    """Write the AsyncAPI document of the topics (docs/asyncapi.yaml) from the catalog and
    schemas (`aqstream schemas` does it too)."""
    from streams.asyncapi import asyncapi_yaml

    out.write_text(asyncapi_yaml())
    typer.echo(f"wrote {out}")


@app.command("config-doc")
def config_doc(
    out: Annotated[Path, typer.Option()] = PROJECT_ROOT / "docs" / "configuration.md",
) -> None:
    """Write docs/configuration.md from the Settings class."""
    from aqstream.docs import configuration_md

    out.write_text(configuration_md())
    typer.echo(f"wrote {out}")


if __name__ == "__main__":
    app()
