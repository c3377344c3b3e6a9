"""Shared by the export tests: one organization with every kind of data an export reads (free
and paid registrations, a cancellation, a check-in, a payment with a refund, tracked traffic and
funnel rollups through the warehouse sink), a second organization to be kept out, and helpers to
run the runner and download what it wrote."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from domain.analytics.facts import Fact, FactKind
from tests.exports.xlsx import read_rows
from tests.factories import (
    V1,
    Organizer,
    cancelled_registration,
    paying,
    refund,
    settle_sandbox,
)
from warehouse.exports import runner


@dataclass
class Org:
    organizer: Organizer
    event: dict
    free: dict
    paid: dict
    analyst: dict
    moderator: dict

    @property
    def id(self) -> str:
        return self.organizer.org["id"]

    @property
    def owner(self) -> dict:
        return self.organizer.owner


def _facts(tenant: str, event: str, ticket_type: str, hour: datetime) -> list[Fact]:
    """Tracked traffic from two sources and a few funnel steps, in one hour."""
    facts = []
    t, e = uuid.UUID(tenant), uuid.UUID(event)
    for i, (source, device) in enumerate(
        [("newsletter", "desktop")] * 5 + [("twitter", "mobile")] * 3 + [("direct", "desktop")]
    ):
        at = hour + timedelta(minutes=i)
        visitor = f"v{i}"
        facts.append(
            Fact(uuid.uuid4(), FactKind.PAGE_VIEW, t, e, at, visitor_id=visitor,
                 session_id=visitor, source=source, device=device)
        )  # fmt: skip
        if i % 2 == 0:
            facts.append(
                Fact(uuid.uuid4(), FactKind.TICKET_SELECTED, t, e, at + timedelta(seconds=10),
                     ticket_type_id=uuid.UUID(ticket_type), visitor_id=visitor,
                     session_id=visitor, source=source, device=device)
            )  # fmt: skip
    facts.append(
        Fact(uuid.uuid4(), FactKind.REGISTRATION, t, e, hour + timedelta(minutes=20),
             ticket_type_id=uuid.UUID(ticket_type))
    )  # fmt: skip
    return facts


def make_org(client: TestClient, api, admin: dict, title: str, warehouse: Engine) -> Org:
    """An organization whose event has a free and a paid ticket type, three free registrations
    (one cancelled, one checked in), a paid one partly refunded, and warehouse rollups."""
    from domain.db import make_sessionmaker
    from warehouse.sink import ingest

    organizer = Organizer(client, api, admin)
    event = organizer.event(title=title)
    free = organizer.ticket_type(event["id"], name="Free", capacity=50)
    paid = organizer.ticket_type(event["id"], name="Supporter", capacity=10, price_amount=4900)
    organizer.publish(event["id"])
    registrations = [
        organizer.participant(event["id"], free["id"], name=f"guest{i}") for i in range(3)
    ]
    user, cancelled = registrations[2]
    cancelled_registration(client, cancelled["id"], user)
    checked = client.post(
        f"{V1}/registrations/{registrations[0][1]['id']}/check-in",
        headers=organizer.owner["headers"],
    )
    assert checked.status_code == 200, checked.text
    payer, paid_registration = organizer.participant(event["id"], paid["id"], name="payer")
    payment = paying(client, paid_registration["id"], payer)
    settle_sandbox(client)
    refunded = refund(client, payment["id"], organizer.owner, amount=900)
    assert refunded.status_code == 201, refunded.text
    settle_sandbox(client)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    sessions = make_sessionmaker(warehouse)
    with sessions() as session, session.begin():
        ingest(session, _facts(organizer.org["id"], event["id"], free["id"], hour))
    return Org(
        organizer, event, free, paid, organizer.member("analyst"), organizer.member("moderator")
    )


@pytest.fixture(scope="module")
def org(client: TestClient, api, admin: dict, warehouse_engine: Engine) -> Org:
    return make_org(client, api, admin, "Spring Meetup", warehouse_engine)


@pytest.fixture(scope="module")
def other(client: TestClient, api, admin: dict, warehouse_engine: Engine) -> Org:
    return make_org(client, api, admin, "Other Org Gala", warehouse_engine)


class Exports:
    """Requests exports through the API, runs them with the real runner, downloads the files."""

    def __init__(self, client: TestClient, owner_engine: Engine) -> None:
        self.client = client
        self.owner_engine = owner_engine
        state = client.app.state.aq
        self.sessions = state.sessionmaker
        self.s3 = state.s3
        self.bucket = state.settings.s3_bucket

    def request(self, org: Org, user: dict | None = None, **body) -> httpx.Response:
        return self.client.post(
            f"{V1}/analytics/export",
            json={"organization_id": org.id, **body},
            headers=(user or org.owner)["headers"],
        )

    def requested(self, org: Org, user: dict | None = None, **body) -> dict:
        response = self.request(org, user, **body)
        assert response.status_code == 202, response.text
        return response.json()

    def get(self, export_id: str, user: dict) -> dict:
        response = self.client.get(f"{V1}/analytics/exports/{export_id}", headers=user["headers"])
        assert response.status_code == 200, response.text
        return response.json()

    def run(self, **options) -> dict:
        return runner.run_pending(self.sessions, self.s3, self.bucket, **options)

    def done(self, org: Org, user: dict | None = None, **body) -> dict:
        """Request, run, answer the export as the API shows it then (succeeded)."""
        user = user or org.owner
        export = self.requested(org, user, **body)
        self.run()
        export = self.get(export["id"], user)
        assert export["status"] == "succeeded", export
        return export

    def download(self, export: dict) -> httpx.Response:
        """GET of the presigned URL, over real HTTP to the S3 server."""
        response = httpx.get(export["download_url"], timeout=30)
        assert response.status_code == 200, response.text
        return response

    def frame(self, export: dict) -> pl.DataFrame:
        data = self.download(export).content
        if export["format"] == "csv":
            return pl.read_csv(io.BytesIO(data), infer_schema=False)
        if export["format"] == "parquet":
            return pl.read_parquet(io.BytesIO(data))
        header, *rows = read_rows(data)
        return (
            pl.DataFrame(
                [
                    dict(zip(header, row + [None] * (len(header) - len(row)), strict=True))
                    for row in rows
                ],
                schema=dict.fromkeys(header, pl.Object),
            )
            if rows
            else pl.DataFrame(schema=dict.fromkeys(header, pl.Object))
        )

    def rows(self, sql: str, **params) -> list[dict]:
        with self.owner_engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]


@pytest.fixture(scope="module")
def exports(client: TestClient, owner_engine: Engine) -> Exports:
    return Exports(client, owner_engine)


@pytest.fixture(autouse=True)
def _no_export_left_active(exports: Exports):
    """Each test starts with no queued or running export (the limit is per organization)."""
    yield
    exports.run()
