"""The benchmarks' kit: output (``say``, ``show_table``), the machine they ran on, a local stack
with a fresh database (``bench_stack``), an organizer with participants and a published sale made
through the API (``found_world``, ``open_sale``), ``percentile``. Each benchmark is a module of its
own beside it (``bench/flash_sale.py``, ``bench/relay.py``, ...)."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from aqstream import migrations
from aqstream.stack import LocalStack
from core.settings import Settings
from domain.db import uuid7
from domain.identity.tokens import TokenService

try:  # tables (and flash_sale's progress bars) when rich is installed; plain lines otherwise
    from rich.console import Console
    from rich.table import Table

    # As wide as a terminal allows; wide enough for the table when writing to a file or pipe.
    console: Console | None = Console(width=None if sys.stdout.isatty() else 150)
except ImportError:  # pragma: no cover - rich comes with typer
    console = None


def say(message: str = "") -> None:
    if console is not None:
        console.print(message, highlight=False, soft_wrap=True)
    else:
        print(message, flush=True)


def show_table(title: str, head: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A table of the rounds: rich's when it is there, else ``|``-separated lines."""
    if console is not None:
        table = Table(*head, title=title)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        print(" | ".join(head))
        for row in rows:
            print(" | ".join(row))


# --- the machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = int(line.split()[1]) / 1024 / 1024
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(ram_gib, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


# --- the stack and the database -------------------------------------------------------------------


def url_dsn(url) -> str:
    """A SQLAlchemy URL as psycopg's connection string."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def bench_stack(
    state_dir: Path, keep: bool, db_prefix: str = "aqstream_bench_relay"
) -> Iterator[Settings]:
    """The local stack under ``state_dir`` (servers configured through AQSTREAM_* are used
    instead) and a fresh database migrated to head, both removed afterwards."""
    stack = LocalStack(Settings(state_dir=state_dir, log_json=False))
    say(f"starting the local stack in {state_dir} ...")
    try:
        stack.up()
        base = stack.resolved_settings()
        broker = next((r.kind for r in stack.status() if r.name == "kafka"), "")
        say(f"broker: {broker or base.kafka_bootstrap + ' (external)'}")
        name = f"{db_prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(url_dsn(base.owner_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        settings = base.model_copy(
            update={"database_url": base.owner_url.set(database=name).render_as_string(False)}
        )
        try:
            say("applying migrations ...")
            migrations.upgrade(settings)
            yield settings
        finally:
            with psycopg.connect(url_dsn(base.owner_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        if not keep:
            stopped = stack.down()
            say(f"stopped: {', '.join(stopped) or 'nothing'}")


# --- an organizer, participants, a sale -----------------------------------------------------------


@dataclass
class World:
    owner_headers: dict[str, str]
    organization_id: str
    participants: list[uuid.UUID]
    headers: list[dict[str, str]]


@dataclass
class Sale:
    event_id: str
    tenant_id: str
    ticket_types: list[str]
    seats: int

    def ticket_type(self, participant: int) -> str:
        return self.ticket_types[participant % len(self.ticket_types)]


def found_world(url: str, settings: Settings, people: int) -> World:
    """An organizer (through the API, as a person would) and ``people`` participants (rows
    copied in: thousands of argon2 sign-ups are not what is measured)."""
    api = f"{url}/api/v1"
    with httpx.Client(timeout=30) as http:
        email = f"organizer-{uuid.uuid4().hex[:8]}@example.org"
        signup = http.post(
            f"{api}/auth/register",
            json={"email": email, "password": "correct horse battery", "display_name": "Org"},
        )
        signup.raise_for_status()
        owner = {"Authorization": f"Bearer {signup.json()['access_token']}"}
        with psycopg.connect(url_dsn(settings.owner_url), autocommit=True) as conn:
            conn.execute("UPDATE users SET is_platform_admin = true WHERE email = %s", (email,))
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        request = http.post(
            f"{api}/organization-requests", json={"name": "Bench", "slug": slug}, headers=owner
        )
        request.raise_for_status()
        request_id = request.json()["id"]
        http.post(
            f"{api}/organization-requests/{request_id}/approve", headers=owner
        ).raise_for_status()
        org = http.post(f"{api}/organizations", json={"request_id": request_id}, headers=owner)
        org.raise_for_status()

    ids = [uuid7() for _ in range(people)]
    with (
        psycopg.connect(url_dsn(settings.owner_url)) as conn,
        conn.cursor() as cur,
        cur.copy("COPY users (id, email, display_name) FROM STDIN") as copy,
    ):
        for i, uid in enumerate(ids):
            copy.write_row((uid, f"buyer-{uid.hex}@example.org", f"Buyer {i}"))
    tokens = TokenService.from_settings(settings)
    tokens.ttl_s = 3600  # a slow machine must not see them expire mid-run
    headers = [{"Authorization": f"Bearer {tokens.issue(uid)[0]}"} for uid in ids]
    return World(owner, org.json()["id"], ids, headers)


def open_sale(
    url: str, world: World, seats: int, title: str, *, types: int = 1, event_capacity: bool
) -> Sale:
    """A published event whose ``seats`` are split over ``types`` free ticket types."""
    api = f"{url}/api/v1"
    starts = datetime.now(UTC) + timedelta(days=30)
    with httpx.Client(timeout=30, headers=world.owner_headers) as http:
        event = http.post(
            f"{api}/events",
            json={
                "organization_id": world.organization_id,
                "title": title,
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=3)).isoformat(),
                "timezone": "UTC",
                "capacity": seats if event_capacity else None,
            },
        )
        event.raise_for_status()
        event_id = event.json()["id"]
        ticket_types = []
        for k in range(types):
            tt = http.post(
                f"{api}/events/{event_id}/ticket-types",
                json={
                    "name": f"Ticket {k + 1}",
                    "capacity": seats // types + (1 if k < seats % types else 0),
                    "price_amount": 0,
                },
            )
            tt.raise_for_status()
            ticket_types.append(tt.json()["id"])
        http.post(f"{api}/events/{event_id}/publish").raise_for_status()
    return Sale(event_id, world.organization_id, ticket_types, seats)


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    return round(sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))], 1)
