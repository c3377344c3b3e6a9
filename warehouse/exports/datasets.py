"""What each dataset is: its columns (name, Arrow type, whether it is personal data) and the
query that produces them for the current tenant.

Every query filters on ``tenant_id = app_tenant_id()`` besides row level security: the runner's
transaction names the tenant only, and the explicit filter keeps a future policy (a participant's
own rows, say) from widening an export.

Time ranges: registrations and payments by when the record was made, attendance by the event's
start, traffic by the rollup bucket, the funnel by its facts (visits started and actions taken in
the range). ``from`` is inclusive, ``to`` exclusive.

CSV injection (CWE-1236): a spreadsheet opening a CSV file takes a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return for a formula. For CSV the query prefixes
such values of the string columns with ``'`` (OWASP's advice); Parquet and XLSX keep them exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
from psycopg import sql

from domain.exports.models import Dataset
from domain.exports.service import ExportRequest
from domain.uow import UnitOfWork
from warehouse.queries import FUNNEL as STAGES
from warehouse.queries import visits_sql

TS = pa.timestamp("us", tz="UTC")

# Applied to every string column, ids included (a uuid never starts with these), so that a new
# text column is covered without anyone remembering to mark it.
_NEUTRALISED = sql.SQL(
    "CASE WHEN left({v}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {v} ELSE {v} END"
)


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    expr: str  # SQL expression over the query's aliases
    personal: bool = False


@dataclass(frozen=True)
class Filters:
    event_id: uuid.UUID | None = None
    range_from: datetime | None = None
    range_to: datetime | None = None


@dataclass(frozen=True)
class Part:
    """One SELECT of a dataset (payments is a UNION ALL of two)."""

    columns: tuple[Column, ...]
    from_clause: str  # FROM ... JOIN ..., without WHERE
    tenant_column: str  # e.g. "r.tenant_id"
    event_column: str | None
    time_column: str | None
    personal_joins: str = ""  # joins needed only by personal columns
    condition: str | None = None  # what else a row must satisfy
    # A FROM clause that takes the range itself (time_column None): what a row counts depends
    # on the whole range, not only on its own time (the funnel's visits)
    ranged_from: Callable[[Filters], str] | None = None


@dataclass(frozen=True)
class DatasetSpec:
    dataset: Dataset
    parts: tuple[Part, ...]
    order_by: str = ""

    def columns(self, personal_data: bool) -> list[Column]:
        return [c for c in self.parts[0].columns if personal_data or not c.personal]

    def schema(self, personal_data: bool) -> pa.Schema:
        return pa.schema([(c.name, c.type) for c in self.columns(personal_data)])

    def query(
        self, filters: Filters, personal_data: bool, neutralise_formulas: bool = False
    ) -> sql.Composed:
        """The SELECT, with the filters as literals (it runs inside COPY, which takes no
        parameters); ``neutralise_formulas`` for CSV (see the module's docstring)."""
        selects = []
        for part in self.parts:
            cols = [c for c in part.columns if personal_data or not c.personal]
            select = sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(_expr(c, neutralise_formulas), sql.Identifier(c.name))
                for c in cols
            )
            joins = part.personal_joins if personal_data else ""
            where = [sql.SQL("{} = app_tenant_id()").format(sql.SQL(part.tenant_column))]
            if part.condition:
                where.append(sql.SQL(part.condition))
            if filters.event_id is not None and part.event_column:
                where.append(
                    sql.SQL("{} = {}").format(
                        sql.SQL(part.event_column), sql.Literal(str(filters.event_id))
                    )
                )
            if part.time_column and filters.range_from is not None:
                where.append(
                    sql.SQL("{} >= {}::timestamptz").format(
                        sql.SQL(part.time_column), sql.Literal(filters.range_from.isoformat())
                    )
                )
            if part.time_column and filters.range_to is not None:
                where.append(
                    sql.SQL("{} < {}::timestamptz").format(
                        sql.SQL(part.time_column), sql.Literal(filters.range_to.isoformat())
                    )
                )
            from_clause = part.ranged_from(filters) if part.ranged_from else part.from_clause
            selects.append(
                sql.SQL("SELECT {} FROM {} {} WHERE {}").format(
                    select,
                    sql.SQL(from_clause),
                    sql.SQL(joins),
                    sql.SQL(" AND ").join(where),
                )
            )
        query = sql.SQL(" UNION ALL ").join(selects)
        if self.order_by:
            query = sql.SQL("{} ORDER BY {}").format(query, sql.SQL(self.order_by))
        return query

    def count_query(self, filters: Filters) -> sql.Composed:
        return sql.SQL("SELECT count(*) FROM ({}) q").format(self.query(filters, False))


def _expr(column: Column, neutralise_formulas: bool) -> sql.Composable:
    if neutralise_formulas and column.type == pa.string():
        return _NEUTRALISED.format(v=sql.SQL(f"({column.expr})::text"))
    return sql.SQL(column.expr)


def _c(name: str, type_: pa.DataType, expr: str | None = None, personal: bool = False) -> Column:
    return Column(name, type_, expr or name, personal)


S, I64, I32, B = pa.string(), pa.int64(), pa.int32(), pa.bool_()

_PERSON = "LEFT JOIN users u ON u.id = {}"


def _people(prefix: str) -> tuple[Column, ...]:
    """The personal columns of a participant or payer (``users u``)."""
    return (
        _c(f"{prefix}_name", S, "u.display_name", personal=True),
        _c(f"{prefix}_email", S, "u.email", personal=True),
        _c(f"{prefix}_telegram", S, "u.telegram_username", personal=True),
    )


REGISTRATIONS = DatasetSpec(
    Dataset.REGISTRATIONS,
    (
        Part(
            columns=(
                _c("registration_id", S, "r.id"),
                _c("event_id", S, "r.event_id"),
                _c("event_title", S, "e.title"),
                _c("ticket_type_id", S, "r.ticket_type_id"),
                _c("ticket_type", S, "t.name"),
                _c("participant_id", S, "r.user_id"),
                *_people("participant"),
                _c("status", S, "r.status"),
                _c("payment_mode", S, "r.payment_mode"),
                _c("quantity", I32, "r.quantity"),
                _c("currency", S, "r.currency"),
                _c("amount_total", I64, "r.amount_total"),
                _c("amount_due_now", I64, "r.amount_due_now"),
                _c("amount_paid", I64, "r.amount_paid"),
                _c("created_at", TS, "r.created_at"),
                _c("confirmed_at", TS, "r.confirmed_at"),
                _c("cancelled_at", TS, "r.cancelled_at"),
                _c("cancel_reason", S, "r.cancel_reason"),
                _c("checked_in_at", TS, "r.checked_in_at"),
            ),
            from_clause="registrations r JOIN events e ON e.id = r.event_id "
            "JOIN ticket_types t ON t.id = r.ticket_type_id",
            personal_joins=_PERSON.format("r.user_id"),
            tenant_column="r.tenant_id",
            event_column="r.event_id",
            time_column="r.created_at",
        ),
    ),
)

_MONEY_COLUMNS = (
    "record_type",
    "payment_id",
    "refund_id",
    "registration_id",
    "event_id",
    "event_title",
    "payer_id",
    "payer_name",
    "payer_email",
    "payer_telegram",
    "purpose",
    "provider",
    "status",
    "amount",
    "currency",
    "amount_refunded",
    "refund_reason",
    "created_at",
    "settled_at",
)


def _money(exprs: dict[str, str]) -> tuple[Column, ...]:
    types = {
        "amount": I64,
        "amount_refunded": I64,
        "created_at": TS,
        "settled_at": TS,
    }
    personal = {"payer_name", "payer_email", "payer_telegram"}
    people = {c.name: c.expr for c in _people("payer")}
    return tuple(
        Column(n, types.get(n, S), exprs.get(n) or people[n], n in personal) for n in _MONEY_COLUMNS
    )


PAYMENTS = DatasetSpec(
    Dataset.PAYMENTS,
    (
        # A payment's amount is what was paid; amount_refunded how much of it went back since.
        Part(
            columns=_money(
                {
                    "record_type": "'payment'",
                    "payment_id": "p.id",
                    "refund_id": "NULL::uuid",
                    "registration_id": "p.registration_id",
                    "event_id": "p.event_id",
                    "event_title": "e.title",
                    "payer_id": "p.user_id",
                    "purpose": "p.purpose",
                    "provider": "p.provider",
                    "status": "p.status::text",
                    "amount": "p.amount",
                    "currency": "p.currency",
                    "amount_refunded": "p.amount_refunded",
                    "refund_reason": "NULL::text",
                    "created_at": "p.created_at",
                    "settled_at": "coalesce(p.completed_at, p.failed_at)",
                }
            ),
            from_clause="payments p JOIN events e ON e.id = p.event_id",
            personal_joins=_PERSON.format("p.user_id"),
            tenant_column="p.tenant_id",
            event_column="p.event_id",
            time_column="p.created_at",
        ),
        # A refund's amount is what it gives back, of its payment's purpose.
        Part(
            columns=_money(
                {
                    "record_type": "'refund'",
                    "payment_id": "f.payment_id",
                    "refund_id": "f.id",
                    "registration_id": "p.registration_id",
                    "event_id": "p.event_id",
                    "event_title": "e.title",
                    "payer_id": "f.user_id",
                    "purpose": "p.purpose",
                    "provider": "p.provider",
                    "status": "f.status::text",
                    "amount": "f.amount",
                    "currency": "f.currency",
                    "amount_refunded": "NULL::bigint",
                    "refund_reason": "f.reason",
                    "created_at": "f.created_at",
                    "settled_at": "coalesce(f.succeeded_at, f.failed_at)",
                }
            ),
            from_clause="refunds f JOIN payments p ON p.id = f.payment_id "
            "JOIN events e ON e.id = p.event_id",
            personal_joins=_PERSON.format("f.user_id"),
            tenant_column="f.tenant_id",
            event_column="p.event_id",
            time_column="f.created_at",
        ),
    ),
)

ATTENDANCE = DatasetSpec(
    Dataset.ATTENDANCE,
    (
        # Confirmed registrations (the people expected at the door). A no-show is one whose
        # event has ended without a check-in.
        Part(
            columns=(
                _c("registration_id", S, "r.id"),
                _c("event_id", S, "r.event_id"),
                _c("event_title", S, "e.title"),
                _c("event_starts_at", TS, "e.starts_at"),
                _c("event_ends_at", TS, "e.ends_at"),
                _c("ticket_type", S, "t.name"),
                _c("participant_id", S, "r.user_id"),
                *_people("participant"),
                _c("quantity", I32, "r.quantity"),
                _c("checked_in_at", TS, "r.checked_in_at"),
                _c("attended", B, "r.checked_in_at IS NOT NULL"),
                _c("no_show", B, "r.checked_in_at IS NULL AND e.ends_at < now()"),
                _c(
                    "minutes_from_start",
                    I32,
                    "round(extract(epoch FROM r.checked_in_at - e.starts_at) / 60)::int",
                ),
            ),
            from_clause="registrations r JOIN events e ON e.id = r.event_id "
            "JOIN ticket_types t ON t.id = r.ticket_type_id",
            personal_joins=_PERSON.format("r.user_id"),
            tenant_column="r.tenant_id",
            event_column="r.event_id",
            time_column="e.starts_at",
            condition="r.status = 'confirmed'",
        ),
    ),
)


# The warehouse's hourly rollups (both flavours expose them under these names), per event and
# ticket type: tracked views and the funnel stages after them. Tracked stages carry no ticket type
# (a view is of the event), so they sit on the rows whose ticket_type_id is empty.
def _journeys(filters: Filters) -> str:
    """The funnel's visits over the export's range (``warehouse.queries.visits_sql``, the
    dashboard's definitions), per hour of the visits' start, event and first-touch source."""
    where = (
        f"event_id = {sql.Literal(str(filters.event_id)).as_string(None)}"
        if filters.event_id is not None
        else "true"
    )
    lo, hi = (
        sql.Literal(moment.isoformat()).as_string(None) + "::timestamptz" if moment else default
        for moment, default in (
            (filters.range_from, "'-infinity'::timestamptz"),
            (filters.range_to, "'infinity'::timestamptz"),
        )
    )
    return f"({visits_sql(where, lo, hi, bucket=True)}) h JOIN events e ON e.id = h.event_id"


# The funnel of visits (docs/analytics.md, "Funnel and attribution"): per hour in which visits
# started, event and first-touch source, the visits and, per stage, those that reached it or a
# later one before the range's end, and the registrations credited to them; rows with no source
# count the registrations of that hour credited to no visit of the range (API-only, or too late).
# Summed over the rows, the dashboard's funnel for the same range.
FUNNEL = DatasetSpec(
    Dataset.FUNNEL,
    (
        Part(
            columns=(
                _c("bucket", TS, "h.bucket"),
                _c("event_id", S, "h.event_id"),
                _c("event_title", S, "e.title"),
                _c("source", S, "h.source"),
                _c("visits", I64, "h.visits"),
                *(_c(stage, I64, f"h.{stage}") for stage in STAGES[1:]),
                _c("registrations", I64, "h.registrations"),
                _c("registrations_without_visit", I64, "h.without_visit"),
            ),
            from_clause="",
            ranged_from=_journeys,
            tenant_column="e.tenant_id",
            event_column=None,
            time_column=None,
            condition="h.part <> 'revenue'",
        ),
    ),
    order_by="bucket, event_id, source NULLS LAST",
)


def _traffic(filters: Filters) -> str:
    """Tracked traffic summed per hour from the minute rollups within the export's range, so a
    range in whole minutes counts exactly what happened inside it (a range that has ended gives
    the same rows every time, and agrees with the funnel's visits over the same range)."""
    where = ["true"]
    for moment, op in ((filters.range_from, ">="), (filters.range_to, "<")):
        if moment is not None:
            where.append(
                f"bucket {op} {sql.Literal(moment.isoformat()).as_string(None)}::timestamptz"
            )
    return (
        "(SELECT tenant_id, event_id, source, device, date_trunc('hour', bucket, 'UTC') AS bucket,"
        " sum(views) AS views, sum(unique_views) AS unique_views,"
        " sum(ticket_selected) AS ticket_selected, sum(checkout_started) AS checkout_started"
        f" FROM analytics.traffic_minute WHERE {' AND '.join(where)}"
        " GROUP BY tenant_id, event_id, source, device, date_trunc('hour', bucket, 'UTC'))"
        " h JOIN events e ON e.id = h.event_id"
    )


# Tracked traffic per hour, event, source (utm_source, else the referrer's host, else "direct")
# and device class; with a range not in whole hours, its first and last hours hold only the
# minutes inside it.
TRAFFIC = DatasetSpec(
    Dataset.TRAFFIC,
    (
        Part(
            columns=(
                _c("bucket", TS, "h.bucket"),
                _c("event_id", S, "h.event_id"),
                _c("event_title", S, "e.title"),
                _c("source", S, "h.source"),
                _c("device", S, "h.device"),
                _c("views", I64, "h.views"),
                _c("unique_views", I64, "h.unique_views"),
                _c("ticket_selected", I64, "h.ticket_selected"),
                _c("checkout_started", I64, "h.checkout_started"),
            ),
            from_clause="",
            ranged_from=_traffic,
            tenant_column="h.tenant_id",
            event_column="h.event_id",
            time_column=None,
        ),
    ),
    order_by="bucket, event_id, source, device",
)

SPECS: dict[Dataset, DatasetSpec] = {
    Dataset.REGISTRATIONS: REGISTRATIONS,
    Dataset.PAYMENTS: PAYMENTS,
    Dataset.ATTENDANCE: ATTENDANCE,
    Dataset.FUNNEL: FUNNEL,
    Dataset.TRAFFIC: TRAFFIC,
}


def spec(dataset: Dataset) -> DatasetSpec:
    return SPECS[dataset]


def count_rows(uow: UnitOfWork, request: ExportRequest) -> int:
    """Rows ``request`` would export, in the unit of work's tenant (row level security)."""
    filters = Filters(request.event_id, request.range_from, request.range_to)
    pg = uow.session.connection().connection.driver_connection
    with pg.cursor() as cursor:
        return cursor.execute(spec(request.dataset).count_query(filters)).fetchone()[0]
