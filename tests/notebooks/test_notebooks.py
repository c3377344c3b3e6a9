"""The analyst notebooks run top to bottom on real exports: a small organization is made
through the API (free, full-price and deposit tickets, payments, a refund, check-ins) and its
tracked traffic through the warehouse sink, exported to Parquet by the real runner, downloaded
from S3 through the presigned URLs, and each notebook is executed with nbclient on that folder.
Their sanity assertions run inside; here their results are checked against the database."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient
from sqlalchemy import text

from core.settings import PROJECT_ROOT
from domain.analytics.facts import Fact, FactKind
from tests.factories import V1, Organizer, paying, refund, registered, settle_sandbox
from warehouse.exports import runner

NOTEBOOKS = PROJECT_ROOT / "notebooks"
SOURCES = {  # visitors who viewed, selected a ticket, started a checkout
    "newsletter": (10, 6, 4),
    "twitter": (6, 2, 1),
    "direct": (3, 1, 1),
}


def _tracked(tenant: uuid.UUID, event: uuid.UUID, ticket_type: uuid.UUID, at: datetime):
    facts = []
    for source, (views, selected, checkouts) in SOURCES.items():
        for i in range(views):
            visitor = f"{source}-{i}"
            common = {"visitor_id": visitor, "session_id": visitor, "source": source,
                      "device": "mobile" if i % 3 == 0 else "desktop"}  # fmt: skip
            moment = at + timedelta(minutes=i)
            facts.append(Fact(uuid.uuid4(), FactKind.PAGE_VIEW, tenant, event, moment, **common))
            if i < selected:
                facts.append(Fact(uuid.uuid4(), FactKind.TICKET_SELECTED, tenant, event,
                                  moment + timedelta(seconds=20), ticket_type_id=ticket_type,
                                  **common))  # fmt: skip
            if i < checkouts:
                facts.append(Fact(uuid.uuid4(), FactKind.CHECKOUT_STARTED, tenant, event,
                                  moment + timedelta(seconds=40), ticket_type_id=ticket_type,
                                  **common))  # fmt: skip
    return facts


# The visitors who started a checkout register (first touch: their one visit's source); the
# other registrations came through the API without a visitor id.
CONVERTING = [f"{source}-{i}" for source, (_, _, checkouts) in SOURCES.items()
              for i in range(checkouts)]  # fmt: skip


def _domain_facts(engine, tenant: str, at: datetime) -> list[Fact]:
    """What the analytics agent would have made of the domain events: one fact per
    registration, completed payment and check-in."""
    t = uuid.UUID(tenant)
    facts = []
    with engine.connect() as conn:
        for i, r in enumerate(conn.execute(
            text("SELECT id, event_id, ticket_type_id, checked_in_at FROM registrations "
                 "WHERE tenant_id = :t ORDER BY id"), {"t": tenant}
        )):  # fmt: skip
            visitor = CONVERTING[i] if i < len(CONVERTING) else None
            facts.append(Fact(uuid.uuid4(), FactKind.REGISTRATION, t, r.event_id, at,
                              ticket_type_id=r.ticket_type_id, registration_id=r.id,
                              visitor_id=visitor))  # fmt: skip
            if r.checked_in_at:
                facts.append(Fact(uuid.uuid4(), FactKind.CHECKIN, t, r.event_id, at,
                                  ticket_type_id=r.ticket_type_id, registration_id=r.id))  # fmt: skip
        for p in conn.execute(
            text("SELECT p.id, p.event_id, p.amount, p.currency, p.purpose::text, "
                 "p.registration_id, r.ticket_type_id FROM payments p JOIN registrations r "
                 "ON r.id = p.registration_id WHERE p.tenant_id = :t AND p.completed_at IS NOT NULL"),
            {"t": tenant},
        ):  # fmt: skip
            facts.append(Fact(p.id, FactKind.PAYMENT, t, p.event_id, at, amount=p.amount,
                              currency=p.currency, purpose=p.purpose,
                              ticket_type_id=p.ticket_type_id,
                              registration_id=p.registration_id))  # fmt: skip
    return facts


@pytest.fixture(scope="module")
def organization(client, api, admin, owner_engine, warehouse_engine) -> Organizer:
    """An event that has taken place: free, full-price and deposit tickets, payments, a partial
    refund, an open remainder, check-ins and no-shows, tracked traffic from three sources."""
    from domain.db import make_sessionmaker
    from warehouse.sink import ingest

    org = Organizer(client, api, admin)
    event = org.event(title="Autumn Conference")
    free = org.ticket_type(event["id"], name="Free", capacity=50)
    full = org.ticket_type(event["id"], name="Supporter", capacity=10, price_amount=4900)
    workshop = org.ticket_type(
        event["id"], name="Workshop", capacity=10, price_amount=10000, deposit_percent=30
    )
    org.publish(event["id"])
    free_regs = [org.participant(event["id"], free["id"], name=f"free{i}")[1] for i in range(5)]
    payments = []
    kinds = [(full, "full")] * 2 + [(workshop, "deposit")] * 2
    for ticket_type, mode in kinds:
        user = api.register("payer")
        registration = registered(
            client, event["id"], user, ticket_type_id=ticket_type["id"], payment_mode=mode
        )
        payments.append((user, registration, paying(client, registration["id"], user)))
    settle_sandbox(client)
    remainder_payer, remainder_registration, _ = payments[2]
    paying(client, remainder_registration["id"], remainder_payer)  # the remainder
    settle_sandbox(client)
    refunded = refund(client, payments[0][2]["id"], org.owner, amount=900)
    assert refunded.status_code == 201, refunded.text
    settle_sandbox(client)
    for registration in (*free_regs[:3], payments[1][1]):
        checked = client.post(
            f"{V1}/registrations/{registration['id']}/check-in", headers=org.owner["headers"]
        )
        assert checked.status_code == 200, checked.text
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    sessions = make_sessionmaker(warehouse_engine)
    facts = _tracked(
        uuid.UUID(org.org["id"]), uuid.UUID(event["id"]), uuid.UUID(free["id"]), hour
    ) + _domain_facts(owner_engine, org.org["id"], hour + timedelta(minutes=30))
    with sessions() as session, session.begin():
        ingest(session, facts)
    # The event is over now (as if time had passed): the unchecked are no-shows.
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE events SET starts_at = now() - interval '1 day', "
                 "ends_at = now() - interval '20 hours' WHERE id = :id"), {"id": event["id"]}
        )  # fmt: skip
    org.event_id = event["id"]  # type: ignore[attr-defined]
    org.tracked_range = (hour - timedelta(hours=1), hour + timedelta(hours=2))  # type: ignore[attr-defined]
    return org


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def exported(organization: Organizer, client, tmp_path_factory) -> Path:
    """The organization's funnel, traffic, payments and attendance as Parquet files, downloaded
    from S3 through the API's presigned URLs, plus an older decoy the notebooks must pass over."""
    folder = tmp_path_factory.mktemp("exports")
    state = client.app.state.aq
    lo, hi = organization.tracked_range
    for dataset in ("traffic", "funnel", "payments", "attendance"):
        # the two the funnel notebook compares: the same closed range, in whole hours
        ranged = {"from": iso(lo), "to": iso(hi)} if dataset in ("traffic", "funnel") else {}
        response = client.post(
            f"{V1}/analytics/export",
            json={"organization_id": organization.org["id"], "dataset": dataset,
                  "format": "parquet", "event_id": organization.event_id, **ranged},
            headers=organization.owner["headers"],
        )  # fmt: skip
        assert response.status_code == 202, response.text
        runner.run_pending(state.sessionmaker, state.s3, state.settings.s3_bucket)
        export = client.get(
            f"{V1}/analytics/exports/{response.json()['id']}", headers=organization.owner["headers"]
        ).json()
        assert export["status"] == "succeeded", export
        download = httpx.get(export["download_url"], timeout=30)
        assert download.status_code == 200
        (folder / export["file_name"]).write_bytes(download.content)
    # An older export of the same kind: a single, wrong payment that must not be read.
    newest = next(folder.glob("payments_*.parquet"))
    pl.read_parquet(newest).head(1).with_columns(pl.lit(1).alias("amount")).write_parquet(
        folder / "payments_old-event_2020-01-01.parquet"
    )
    return folder


def _execute(name: str, data: Path, out: Path, monkeypatch) -> dict:
    monkeypatch.setenv("AQSTREAM_NOTEBOOK_DATA", str(data))
    monkeypatch.setenv("AQSTREAM_NOTEBOOK_OUT", str(out))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(out)}}
    ).execute()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
    return json.loads((out / f"{name}.json").read_text())


def _rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def test_the_notebooks_are_checked_in_without_outputs() -> None:
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["attendance_no_shows", "funnel_by_source", "revenue_refunds_deposits"]
    for name in names:
        notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), name


def test_funnel_by_source(exported: Path, tmp_path: Path, organization, owner_engine, monkeypatch):
    results = _execute("funnel_by_source", exported, tmp_path, monkeypatch)
    by_source = {s: (r["views"], r["ticket_selected"], r["checkout_started"])
                 for s, r in results["by_source"].items()}  # fmt: skip
    assert by_source == SOURCES
    (want,) = _rows(
        owner_engine,
        "SELECT count(*) AS registrations, count(checked_in_at) AS checkins FROM registrations "
        "WHERE tenant_id = :t",
        t=organization.org["id"],
    )
    funnel = results["funnel"]
    assert funnel["visits"] == sum(v for v, _, _ in SOURCES.values())  # one visit per visitor
    assert funnel["registration"] == len(CONVERTING)
    assert results["registrations"] == want["registrations"]
    assert results["registrations_without_visit"] == want["registrations"] - len(CONVERTING)
    stages = list(funnel.values())
    assert stages == sorted(stages, reverse=True)  # never wider than the stage before
    for source, (_, _, checkouts) in SOURCES.items():
        row = results["by_source"][source]
        assert (row["visits"], row["converted_visits"]) == (SOURCES[source][0], checkouts)
    lo, hi = organization.tracked_range
    assert results["range"] == {
        "event_id": organization.event_id, "from": lo.isoformat(), "to": hi.isoformat(),
    }  # fmt: skip


def test_the_funnel_notebook_refuses_exports_of_different_ranges(
    exported: Path, tmp_path: Path, monkeypatch
) -> None:
    """Two exports of different ranges (the live demo's two snapshots seconds apart) are not
    compared: the notebook says why, instead of failing an assertion on their numbers."""
    import pyarrow.parquet as pq

    data = tmp_path / "mismatched"
    data.mkdir()
    for path in exported.glob("*.parquet"):
        shutil.copy(path, data / path.name)
    traffic = next(data.glob("traffic_*.parquet"))
    table = pq.read_table(traffic)
    meta = dict(table.schema.metadata) | {b"aqstream.range_to": b"2099-01-01T00:00:00+00:00"}
    pq.write_table(table.replace_schema_metadata(meta), traffic)
    with pytest.raises(Exception, match="cover different events or ranges"):
        _execute("funnel_by_source", data, tmp_path, monkeypatch)


def test_revenue_refunds_deposits(
    exported: Path, tmp_path: Path, organization, owner_engine, monkeypatch
):
    results = _execute("revenue_refunds_deposits", exported, tmp_path, monkeypatch)
    assert results["payments_file"] != "payments_old-event_2020-01-01.parquet"
    (want,) = _rows(
        owner_engine,
        "SELECT sum(amount) AS gross, "
        "sum(amount) FILTER (WHERE purpose = 'deposit') AS deposit, "
        "sum(amount) FILTER (WHERE purpose = 'remainder') AS remainder, "
        "(SELECT sum(amount) FROM refunds WHERE tenant_id = :t AND status = 'succeeded') "
        "AS refunds FROM payments WHERE tenant_id = :t AND completed_at IS NOT NULL",
        t=organization.org["id"],
    )
    eur = results["currencies"]["EUR"]
    assert (eur["gross"], eur["refunds"], eur["deposit"], eur["remainder"]) == (
        want["gross"], want["refunds"], want["deposit"], want["remainder"],
    )  # fmt: skip
    assert eur["net"] == want["gross"] - want["refunds"] == 2 * 4900 + 2 * 3000 + 7000 - 900
    assert (results["deposits"], results["open_remainders"]) == (2, 1)


def test_attendance_no_shows(
    exported: Path, tmp_path: Path, organization, owner_engine, monkeypatch
):
    results = _execute("attendance_no_shows", exported, tmp_path, monkeypatch)
    (want,) = _rows(
        owner_engine,
        "SELECT count(*) AS confirmed, count(checked_in_at) AS attended FROM registrations "
        "WHERE tenant_id = :t AND status = 'confirmed'",
        t=organization.org["id"],
    )
    assert results["registrations"] == want["confirmed"]
    assert results["attended"] == want["attended"] == 4
    assert results["no_shows"] == want["confirmed"] - want["attended"]
    (event,) = results["events"].values()
    assert event["ended"] is True


def test_a_folder_without_exports_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Exception, match=r"No attendance_\*\.parquet"):
        _execute("attendance_no_shows", empty, tmp_path, monkeypatch)
    assert not (tmp_path / "attendance_no_shows.json").exists()
    shutil.rmtree(empty)


def test_traffic_and_funnel_agree_over_a_range_that_cuts_an_hour(
    organization: Organizer, client
) -> None:
    """Issue N, item 4: a range in whole minutes that ends inside an hour (as the README's range
    ending a minute ago does) counts the same visits in both exports: traffic sums the minute
    rollups inside the range, not the whole hour it cuts."""
    state = client.app.state.aq
    hour = organization.tracked_range[0] + timedelta(hours=1)  # the tracked views' hour
    lo, hi = hour, hour + timedelta(minutes=5)  # views at minutes 0..9: 5, 5 and 3 are inside

    def export(dataset: str, event: bool = True) -> pl.DataFrame:
        one = {"event_id": organization.event_id} if event else {}  # else the organization's
        response = client.post(
            f"{V1}/analytics/export",
            json={"organization_id": organization.org["id"], "dataset": dataset,
                  "format": "parquet", **one, "from": iso(lo), "to": iso(hi)},
            headers=organization.owner["headers"],
        )  # fmt: skip
        assert response.status_code == 202, response.text
        runner.run_pending(state.sessionmaker, state.s3, state.settings.s3_bucket)
        done = client.get(
            f"{V1}/analytics/exports/{response.json()['id']}", headers=organization.owner["headers"]
        ).json()
        assert done["status"] == "succeeded", done
        return pl.read_parquet(httpx.get(done["download_url"], timeout=30).content)

    def per_source(frame: pl.DataFrame, column: str) -> dict[str, int]:
        sums = (
            frame.filter(pl.col("source").is_not_null())
            .group_by("source")
            .agg(pl.col(column).sum())
        )
        return dict(sums.iter_rows())

    expected = {"newsletter": 5, "twitter": 5, "direct": 3}
    assert per_source(export("traffic"), "unique_views") == expected
    assert per_source(export("funnel"), "visits") == expected
    # the README's: a whole organization's, no event named
    assert per_source(export("traffic", event=False), "unique_views") == expected
    assert per_source(export("funnel", event=False), "visits") == expected
