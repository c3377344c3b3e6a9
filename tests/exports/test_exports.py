"""Exports end to end: requested through the API, run by the real runner against PostgreSQL,
written to the S3 server, downloaded through the presigned URL and read back with Polars."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.exports.conftest import Exports, Org
from tests.exports.xlsx import excel_time

DATASETS = ("registrations", "payments", "attendance", "funnel", "traffic")
FORMATS = ("csv", "parquet", "xlsx")
PERSONAL = {
    "participant_name",
    "participant_email",
    "participant_telegram",
    "payer_name",
    "payer_email",
    "payer_telegram",
}


def values(frame, name: str, kind: str = "str") -> list:
    """A column as plain Python values, whatever format it came from (CSV: text; Parquet:
    typed; XLSX: numbers and Excel date serials)."""
    out = []
    for v in frame[name].to_list():
        if v is None or v == "":
            out.append(None)
        elif kind == "int":
            out.append(int(float(v)) if not isinstance(v, int) else v)
        elif kind == "bool":
            out.append(v in (True, "t", "true", 1, 1.0))
        elif kind == "time":
            if isinstance(v, float):
                moment = excel_time(v)
            elif isinstance(v, str):
                moment = datetime.fromisoformat(v)
            else:
                moment = v
            out.append(moment.timestamp())
        else:
            out.append(str(v))
    return out


def by(frame, key: str, *columns: tuple[str, str]) -> dict:
    keys = values(frame, key)
    cols = [values(frame, name, kind) for name, kind in columns]
    return {k: tuple(c[i] for c in cols) for i, k in enumerate(keys)}


def epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def same(a, b) -> bool:
    """Equal, times (epoch floats) within 2 ms: XLSX keeps them as day fractions."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) < 0.002
    return a == b


def expected(exports: Exports, org: Org, dataset: str) -> tuple[str, dict]:
    """The dataset computed from the database directly (as the owner): key column and rows."""
    t = {"t": org.id}
    if dataset == "registrations":
        rows = exports.rows(
            "SELECT id::text, status::text, amount_paid, checked_in_at FROM registrations "
            "WHERE tenant_id = :t",
            **t,
        )
        return "registration_id", {
            r["id"]: (r["status"], r["amount_paid"], epoch(r["checked_in_at"])) for r in rows
        }
    if dataset == "payments":
        rows = exports.rows(
            "SELECT id::text, 'payment' AS kind, amount, status::text FROM payments "
            "WHERE tenant_id = :t UNION ALL "
            "SELECT payment_id::text, 'refund', amount, status::text FROM refunds "
            "WHERE tenant_id = :t",
            **t,
        )
        return "payment_id", {(r["id"], r["kind"]): (r["amount"], r["status"]) for r in rows}
    if dataset == "attendance":
        rows = exports.rows(
            "SELECT id::text, checked_in_at IS NOT NULL AS attended FROM registrations "
            "WHERE tenant_id = :t AND status = 'confirmed'",
            **t,
        )
        return "registration_id", {r["id"]: (r["attended"],) for r in rows}
    if dataset == "funnel":
        # visits (unique page views); every registration is credited to a visit or not
        rows = exports.rows(
            "SELECT count(*) FILTER (WHERE kind = 'page_view' AND is_unique) AS visits, "
            "count(*) FILTER (WHERE kind = 'registration') AS registrations "
            "FROM warehouse.facts WHERE tenant_id = :t",
            **t,
        )
        return "", {k: int(v) for k, v in rows[0].items()}
    rows = exports.rows(
        "SELECT source, sum(views) AS views, sum(ticket_selected) AS selected "
        "FROM warehouse.traffic_hour WHERE tenant_id = :t GROUP BY source",
        **t,
    )
    return "source", {r["source"]: (int(r["views"]), int(r["selected"])) for r in rows}


def found(frame, dataset: str) -> dict:
    if dataset == "registrations":
        return by(
            frame, "registration_id", ("status", "str"), ("amount_paid", "int"),
            ("checked_in_at", "time"),
        )  # fmt: skip
    if dataset == "payments":
        keys = list(zip(values(frame, "payment_id"), values(frame, "record_type"), strict=True))
        amounts, status = values(frame, "amount", "int"), values(frame, "status")
        return {k: (amounts[i], status[i]) for i, k in enumerate(keys)}
    if dataset == "attendance":
        return by(frame, "registration_id", ("attended", "bool"))
    if dataset == "funnel":
        return {
            "visits": sum(values(frame, "visits", "int")),
            "registrations": sum(values(frame, "registrations", "int"))
            + sum(values(frame, "registrations_without_visit", "int")),
        }
    totals: dict = {}
    for source, views, selected in zip(
        values(frame, "source"), values(frame, "views", "int"),
        values(frame, "ticket_selected", "int"), strict=True,
    ):  # fmt: skip
        v, s = totals.get(source, (0, 0))
        totals[source] = (v + views, s + selected)
    return totals


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_and_format_round_trips(
    exports: Exports, org: Org, other: Org, dataset: str, fmt: str
) -> None:
    export = exports.done(org, dataset=dataset, format=fmt)
    frame = exports.frame(export)
    assert frame.columns == export["columns"]
    assert export["rows"] == frame.height
    _, want = expected(exports, org, dataset)
    assert want, f"the fixture made no {dataset} data"
    got = found(frame, dataset)
    assert same(got, want), (got, want)
    # Nothing of the other organization, which has the same kinds of data.
    _, theirs = expected(exports, other, dataset)
    if dataset in ("registrations", "payments", "attendance"):
        assert not set(theirs) & set(found(frame, dataset))
    assert set(values(frame, "event_id")) == {org.event["id"]}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_a_range_with_no_rows_exports_an_empty_file(
    exports: Exports, org: Org, dataset: str, fmt: str
) -> None:
    """A range before anything happened (the README's range a minute after `make run` starts)
    is an empty file with its columns, not a failed export (Arrow refuses an empty CSV)."""
    export = exports.done(
        org, dataset=dataset, format=fmt, **{"from": "2001-01-01T00:00:00Z"},
        to="2001-01-02T00:00:00Z",
    )  # fmt: skip
    assert export["rows"] == 0
    frame = exports.frame(export)
    assert frame.height == 0
    if fmt != "xlsx":  # a sheet with no rows still has its header row; polars reads it as 0x0
        assert frame.columns == export["columns"]


def test_the_file_name_carries_the_event_or_organization_and_the_date(
    exports: Exports, org: Org
) -> None:
    # The day of the request in UTC (not the machine's zone); midnight may pass meanwhile.
    days = [datetime.now(UTC).date().isoformat()]
    export = exports.done(org, dataset="registrations", format="parquet", event_id=org.event["id"])
    whole = exports.done(org, dataset="payments", format="csv")
    days.append(datetime.now(UTC).date().isoformat())
    assert export["file_name"] in {f"registrations_spring-meetup_{day}.parquet" for day in days}
    download = exports.download(export)
    assert export["file_name"] in download.headers["content-disposition"]
    assert download.content[:4] == b"PAR1"
    assert export["size_bytes"] == len(download.content)
    slug = org.organizer.org["slug"]
    assert whole["file_name"] in {f"payments_{slug}_{day}.csv" for day in days}
    assert re.fullmatch(r"[a-z]+_[a-z0-9-]+_\d{4}-\d{2}-\d{2}\.[a-z]+", whole["file_name"])


def test_the_object_is_under_the_tenants_prefix(exports: Exports, org: Org) -> None:
    export = exports.done(org, dataset="attendance", format="csv")
    (row,) = exports.rows("SELECT storage_key FROM exports WHERE id = :id", id=export["id"])
    assert row["storage_key"] == f"tenants/{org.id}/exports/{export['id']}/{export['file_name']}"
    head = exports.s3.head_object(Bucket=exports.bucket, Key=row["storage_key"])
    assert head["ContentLength"] == export["size_bytes"]


def test_personal_data_only_for_owners_and_moderators(exports: Exports, org: Org) -> None:
    for user in (org.owner, org.moderator):
        export = exports.done(org, user, dataset="registrations", format="parquet")
        frame = exports.frame(export)
        assert export["personal_data"] is True
        assert {"participant_name", "participant_email"} <= set(frame.columns)
        names = set(values(frame, "participant_name"))
        assert {"guest0", "guest1"} <= names
        assert all("@example.org" in e for e in values(frame, "participant_email"))
    for dataset, fmt in (("registrations", "csv"), ("payments", "xlsx"), ("attendance", "parquet")):
        export = exports.done(org, org.analyst, dataset=dataset, format=fmt)
        assert export["personal_data"] is False
        assert not PERSONAL & set(export["columns"])
        frame = exports.frame(export)
        assert not PERSONAL & set(frame.columns)
        assert frame.height > 0
        raw = exports.download(export).content
        assert b"@example.org" not in raw and b"guest0" not in raw


def test_an_analyst_gets_no_download_url_for_an_owners_export_with_personal_data(
    exports: Exports, org: Org
) -> None:
    export = exports.done(org, dataset="registrations", format="csv")
    seen = exports.get(export["id"], org.analyst)
    assert seen["status"] == "succeeded"
    assert seen["download_url"] is None
    listed = exports.client.get(
        "/api/v1/analytics/exports",
        params={"organization_id": org.id},
        headers=org.analyst["headers"],
    ).json()["items"]
    assert next(e for e in listed if e["id"] == export["id"])["download_url"] is None


FORMULAS = ('=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)")


def test_csv_quotes_text_a_spreadsheet_would_take_for_a_formula(exports: Exports, org: Org) -> None:
    """CWE-1236: in CSV, text starting with = + - @ (tab, CR) gets a leading ``'``; numbers stay
    as they are, and Parquet and XLSX keep the text exact."""
    organizer = org.organizer.another()  # an organization of its own: org's rows stay as they are
    event = organizer.event(title=FORMULAS[0])
    types = {
        name: organizer.ticket_type(event["id"], name=name, capacity=5)
        for name in (*FORMULAS[1:], "Normal")
    }
    organizer.publish(event["id"])
    for ticket_type in types.values():
        _, registration = organizer.participant(event["id"], ticket_type["id"])
    # "Normal" checked in a month before the event starts: a negative minutes_from_start.
    checked = exports.client.post(
        f"/api/v1/registrations/{registration['id']}/check-in", headers=organizer.owner["headers"]
    )
    assert checked.status_code == 200, checked.text
    formulas = Org(organizer, event, types["Normal"], types["+1"], analyst={}, moderator={})

    def exported(fmt: str) -> tuple[dict, dict]:
        export = exports.done(formulas, dataset="attendance", format=fmt)
        frame = exports.frame(export)
        rows = zip(
            values(frame, "ticket_type"), values(frame, "event_title"),
            values(frame, "participant_name"), values(frame, "minutes_from_start", "int"),
            strict=True,
        )  # fmt: skip
        return {row[0]: row[1:] for row in rows}, export

    csv, export = exported("csv")
    minutes = csv["Normal"][2]
    assert minutes < 0
    title = "'" + FORMULAS[0]
    assert csv == {
        "'+1": (title, "participant", None),
        "'-2": (title, "participant", None),
        "'@SUM(A1)": (title, "participant", None),
        "Normal": (title, "participant", minutes),
    }
    raw = exports.download(export).text.replace("\r\n", "\n")
    assert ',"\'=HYPERLINK(""http://x"",""y"")",' in raw
    assert f",{minutes}\n" in raw  # the number as it is: no quote
    for fmt in ("parquet", "xlsx"):
        exact, _ = exported(fmt)
        assert exact == {
            "+1": (FORMULAS[0], "participant", None),
            "-2": (FORMULAS[0], "participant", None),
            "@SUM(A1)": (FORMULAS[0], "participant", None),
            "Normal": (FORMULAS[0], "participant", minutes),
        }, fmt
