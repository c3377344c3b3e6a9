"""The pages' callbacks, called directly: what they render from the analytics API's documented
answers (no servers), and what they do without a session."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import pytest
from dash import no_update

from dashboards import event, exports, figures, overview
from dashboards.app import choose_org, page_for, signin_page
from dashboards.client import ApiError, Unauthorized
from dashboards.components import api_problem

NOW = datetime(2027, 4, 1, 9, 30, tzinfo=UTC)
EVENT_ID = "0190f0c0-0000-7000-8000-000000000001"
TT = "0190f0c0-0000-7000-8000-0000000000aa"


def dashboard(**changes) -> dict:
    """A dashboard answer in the API's shape (api/analytics/schemas.py: Dashboard)."""
    base = {
        "event_id": EVENT_ID,
        "organization_id": "0190f0c0-0000-7000-8000-0000000000ff",
        "title": "PyCon Berlin",
        "timezone": "Europe/Berlin",
        "starts_at": "2027-04-01T08:00:00Z",
        "ends_at": "2027-04-01T16:00:00Z",
        "status": "published",
        "capacity": 120,
        "sold": 42,
        "range": {"from": "2027-03-01T00:00:00Z", "to": "2027-04-01T09:31:00Z",
                  "granularity": "day"},
        "kpis": {"views": 900, "unique_views": 600, "ticket_selected": 200, "checkout_started": 90,
                 "reservations": 60, "registrations": 45, "confirmations": 42,
                 "cancellations": 3, "checkins": 30, "waitlist": 2,
                 "conversion_rate": 0.075, "attendance_rate": 30 / 42},
        "revenue": [
            {"currency": "EUR", "gross": 250000, "refunds": 4900, "net": 245100, "full": 200000,
             "deposits": 50000, "remainders": 0},
            {"currency": "RUB", "gross": 300000, "refunds": 0, "net": 300000, "full": 300000,
             "deposits": 0, "remainders": 0},
        ],
        "funnel": [
            {"stage": "view", "count": 600, "rate_from_previous": None, "drop_off": None},
            {"stage": "ticket_selected", "count": 200, "rate_from_previous": 1 / 3,
             "drop_off": 400},
            {"stage": "reservation", "count": 60, "rate_from_previous": 0.3, "drop_off": 140},
            {"stage": "registration", "count": 45, "rate_from_previous": 0.75, "drop_off": 15},
            {"stage": "payment", "count": 20, "rate_from_previous": 20 / 45, "drop_off": 25},
            {"stage": "checkin", "count": 15, "rate_from_previous": 0.75, "drop_off": 5},
        ],
        "series": [
            {"bucket": "2027-03-31T22:00:00Z", "views": 500, "unique_views": 300,
             "registrations": 20, "cancellations": 1, "checkins": 0},
            {"bucket": "2027-04-01T07:00:00Z", "views": 400, "unique_views": 300,
             "registrations": 25, "cancellations": 2, "checkins": 30},
        ],
        "revenue_series": [
            {"bucket": "2027-03-31T22:00:00Z", "currency": "EUR", "gross": 150000,
             "refunds": 0, "net": 150000},
            {"bucket": "2027-04-01T07:00:00Z", "currency": "EUR", "gross": 100000,
             "refunds": 4900, "net": 95100},
            {"bucket": "2027-04-01T07:00:00Z", "currency": "RUB", "gross": 300000,
             "refunds": 0, "net": 300000},
        ],
        "ticket_types": [
            {"ticket_type_id": TT, "name": "Standard", "capacity": 100, "sold": 40,
             "registrations": 43, "cancellations": 3, "checkins": 29,
             "revenue": [{"currency": "EUR", "gross": 250000, "refunds": 4900, "net": 245100}]},
            {"ticket_type_id": None, "name": None, "capacity": None, "sold": None,
             "registrations": 2, "cancellations": 0, "checkins": 1, "revenue": []},
        ],
        "sources": [
            {"source": "google", "views": 500, "unique_views": 350, "ticket_selected": 100,
             "checkout_started": 50},
            {"source": "direct", "views": 400, "unique_views": 250, "ticket_selected": 100,
             "checkout_started": 40},
        ],
        "devices": [{"device": "desktop", "views": 900, "unique_views": 600}],
    }  # fmt: skip
    base.update(changes)
    return base


def figs(view: event.View) -> list[go.Figure]:
    """The view's figures as Plotly objects: validated against Plotly's schema, and readable."""
    return [go.Figure(f) for f in view.figures]


def fresh() -> dict:
    d = dashboard(sold=0)
    d["kpis"] = {k: 0 for k in d["kpis"]} | {"conversion_rate": None, "attendance_rate": None}
    for key in ("revenue", "series", "revenue_series", "sources", "devices"):
        d[key] = []
    d["funnel"] = [{**s, "count": 0, "rate_from_previous": None} for s in d["funnel"]]
    d["ticket_types"] = [{**d["ticket_types"][0], "sold": 0, "registrations": 0, "revenue": []}]
    return d


# --- event dashboard --------------------------------------------------------------------------


def test_event_cards_read_the_api_figures() -> None:
    v = event.view(dashboard(), NOW)
    assert v.sold == "42 / 120" and v.capacity_note == "78 seats left"
    assert v.revenue == "€2,451.00 · ₽3,000.00"
    assert v.revenue_note.startswith("gross €2,500.00")
    assert v.conversion == "7.5%"
    assert v.attendance == "71.4%" and v.attendance_note == "30 checked in"
    assert v.updated == "Updated 1 Apr 2027, 11:30 · times in Europe/Berlin"


def test_conversion_says_what_it_divides() -> None:
    attributed = {"visits": 600, "converted_visits": 40, "registrations_without_visit": 5}
    assert event.conversion_note(attributed) == (
        "40 of 600 visits registered; 5 registrations without a visit"
    )
    assert event.conversion_note({**attributed, "registrations_without_visit": 0}) == (
        "40 of 600 visits registered"
    )
    assert event.conversion_note({"registrations": 45, "unique_views": 600}) == (
        "45 registrations from 600 unique views"
    )


def test_attendance_before_the_doors_open_is_not_zero() -> None:
    """Registrations but no check-in a day before: "not started", never "0 %"."""
    d = dashboard()
    d["kpis"] = {**d["kpis"], "checkins": 0, "attendance_rate": 0.0}
    day_before = datetime(2027, 3, 31, 8, tzinfo=UTC)
    v = event.view(d, day_before)
    assert v.attendance == "–" and "0" not in v.attendance
    assert v.attendance_note == "not started: doors open 1 Apr 2027, 09:00"
    doors_open = event.view(d, datetime(2027, 4, 1, 7, tzinfo=UTC))
    assert doors_open.attendance == "0.0%"  # the doors are open: nobody came yet is news
    early = {**d, "kpis": {**d["kpis"], "checkins": 2, "attendance_rate": 2 / 42}}
    assert event.view(early, day_before).attendance == "4.8%"  # checked in early: shown


def test_the_live_counter_shows_from_an_hour_before_the_start_to_the_end() -> None:
    d = dashboard()
    assert event.view(d, NOW).live_style == {} and event.view(d, NOW).live == "30"
    assert event.view(d, datetime(2027, 4, 1, 7, 0, tzinfo=UTC)).live_style == {}
    hidden = {"display": "none"}
    assert event.view(d, datetime(2027, 4, 1, 6, 59, tzinfo=UTC)).live_style == hidden
    assert event.view(d, datetime(2027, 4, 1, 16, 1, tzinfo=UTC)).live_style == hidden
    assert event.view(dashboard(status="cancelled"), NOW).live_style == hidden


def test_figures_keep_their_ui_state_across_refreshes() -> None:
    first = figs(event.view(dashboard(), NOW))
    second = figs(event.view(dashboard(), NOW + timedelta(seconds=5)))
    for a, b in zip(first, second, strict=True):
        assert a.layout.uirevision == b.layout.uirevision == f"{EVENT_ID}:day"


def test_series_are_drawn_in_the_event_time_zone() -> None:
    activity = figs(event.view(dashboard(), NOW))[0]
    assert list(activity.data[0].x) == ["2027-04-01 00:00", "2027-04-01 09:00"]
    assert [t.name for t in activity.data] == ["Registrations", "Cancellations", "Check-ins"]


def test_revenue_runs_per_currency_from_the_range_start() -> None:
    fig = figs(event.view(dashboard(), NOW, "30d"))[1]
    eur = next(t for t in fig.data if t.name == "Net, €")
    assert list(eur.y) == [0, 1500, 2451, 2451]  # start, two buckets, held until now
    assert eur.x[0] == "2027-03-01 01:00"  # the range start in Berlin time
    assert eur.x[-1] == "2027-04-01 11:30"  # now
    assert {t.name for t in fig.data} == {"Net, €", "Net, ₽"}
    assert list(fig.layout.xaxis.range) == ["2027-03-01 01:00:00", "2027-04-01 11:30:00"]


def test_the_whole_event_axis_starts_at_the_first_data_not_before() -> None:
    """Created a month ago, first registration last night: the time axes start half a bucket
    before that registration and end now, not at the creation with everything in one edge."""
    d = dashboard()
    d["range"] = {**d["range"], "granularity": "hour"}
    activity, revenue = figs(event.view(d, NOW, "all"))[:2]
    # the first bucket with a registration: 22:00 UTC = 00:00 in Berlin, less half an hour
    assert list(activity.layout.xaxis.range) == ["2027-03-31 23:30:00", "2027-04-01 11:30:00"]
    assert list(revenue.layout.xaxis.range) == list(activity.layout.xaxis.range)
    eur = next(t for t in revenue.data if t.name == "Net, €")
    assert eur.x[0] == "2027-03-31 23:30" and eur.y[0] == 0  # the line starts with the axis
    start, end = event.time_span(fresh(), NOW, "all")  # nothing drawn: the period itself
    assert (start, end) == (datetime(2027, 3, 1, tzinfo=UTC), NOW)


def test_the_first_bucket_shows_whole_when_the_event_was_made_in_it() -> None:
    """The demo's flash sale registers in the minute the event was created: the range starts
    at that minute, and the bucket's side-by-side bars (registrations left of cancellations)
    need the half bucket before it, or the registrations bar is cut off."""
    d = fresh()
    first = datetime(2027, 4, 1, 11, 0, tzinfo=UTC)
    d["range"] = {**d["range"], "from": first.isoformat(), "granularity": "minute"}
    d["series"] = [{"bucket": first.isoformat(), "views": 0, "unique_views": 0,
                    "registrations": 8, "cancellations": 2, "checkins": 0}]  # fmt: skip
    start, _ = event.time_span(d, NOW, "all")
    assert start == first - timedelta(seconds=30)


def test_the_funnel_shows_counts_and_drop_off_shares() -> None:
    funnel = figs(event.view(dashboard(), NOW))[2].data[0]
    assert isinstance(funnel, go.Funnel)
    assert list(funnel.x) == [600, 200, 60, 45, 20, 15]  # as the API answers: never widening
    assert funnel.text[0] == "600"
    assert list(funnel.y)[:2] == ["Viewed", "Chose a ticket"]  # the API's stages, in order
    assert funnel.text[1] == "200 · 66.7% drop-off"
    assert funnel.text[3] == "45 · 25.0% drop-off"
    assert funnel.text[5] == "15 · 25.0% drop-off"


def test_ticket_types_and_sources() -> None:
    tickets, sources = figs(event.view(dashboard(), NOW))[3:]
    assert [list(t.x) for t in tickets.data] == [["Standard"]]
    assert list(tickets.data[0].y) == [2451.0]
    assert list(sources.data[0].y) == ["direct", "google"]  # largest at the top


def test_sources_show_their_conversion_when_the_api_attributes_registrations() -> None:
    rows = [
        {"source": "google", "views": 500, "unique_views": 400, "registrations": 30},
        {"source": "telegram", "views": 90, "unique_views": 80, "conversion_rate": 0.125},
        {"source": "newsletter", "views": 40, "unique_views": 0, "registrations": 0},
    ]
    fig = go.Figure(figures.sources(rows, "r"))
    assert list(fig.data[0].y) == [
        "newsletter", "telegram · 12.5% converted", "google · 7.5% converted"
    ]  # fmt: skip


def test_every_axis_fits_its_tick_labels() -> None:
    for fig in figs(event.view(dashboard(), NOW)):
        assert fig.layout.xaxis.automargin is True and fig.layout.yaxis.automargin is True
    assert figs(event.view(dashboard(), NOW))[0].layout.separators == ".,"


def test_a_fresh_event_says_no_data_yet_instead_of_empty_axes() -> None:
    v = event.view(fresh(), NOW)
    assert v.empty_style == {} and v.charts_style == {"display": "none"}
    assert v.conversion == "–" and v.attendance == "–" and v.revenue == "0"
    for fig in figs(v):
        assert not fig.data and fig.layout.xaxis.visible is False
        assert fig.layout.annotations[0].text
    busy = event.view(dashboard(), NOW)
    assert busy.empty_style == {"display": "none"} and busy.charts_style == {}


def test_free_ticket_types_show_seats_sold_without_revenue() -> None:
    d = copy.deepcopy(dashboard())
    d["ticket_types"][0]["revenue"] = []
    fig = go.Figure(figures.ticket_types(d["ticket_types"], "r"))
    assert list(fig.data[0].y) == [40, 0] and fig.data[0].name == "Seats sold"


def test_event_windows_and_their_granularity() -> None:
    e = {"created_at": "2027-03-20T10:00:00Z", "starts_at": "2027-04-01T08:00:00Z"}
    start, end, granularity = event.window("all", e, NOW)
    assert (start, end, granularity) == (
        datetime(2027, 3, 20, 10, tzinfo=UTC),
        datetime(2027, 4, 1, 9, 31, tzinfo=UTC),
        "day",
    )
    assert event.window("24h", e, NOW)[2] == "hour"
    assert event.window("7d", e, NOW)[2] == "hour"
    assert event.window("30d", e, NOW)[2] == "day"
    just_made = {"created_at": "2027-04-01T09:20:40Z", "starts_at": "2027-05-01T08:00:00Z"}
    start, _, granularity = event.window("all", just_made, NOW)  # no hour of nothing before
    assert start == datetime(2027, 4, 1, 9, 20, tzinfo=UTC) and granularity == "minute"


def test_managers_get_actions_analysts_do_not() -> None:
    draft = {"id": "e", "title": "T", "timezone": "UTC", "status": "draft", "organization_id": "o",
             "starts_at": "2027-05-01T08:00:00Z", "ends_at": "2027-05-01T10:00:00Z"}  # fmt: skip

    def actions(e, role):
        return [c.id["action"] for c in _walk(event.header(e, role, NOW)) if _is_action(c)]

    assert len(actions(draft, "owner")) == 1 and len(actions(draft, "moderator")) == 1
    assert actions(draft, "analyst") == [] and actions(draft, None) == []
    ended = {**draft, "status": "published", "ends_at": "2027-03-01T10:00:00Z"}
    assert actions(draft, "owner") == ["publish"]
    assert actions(ended, "owner") == ["complete"] and actions(ended, "analyst") == []

    def door(role):  # the link to the door's check-in: managers only, as the API's check-in
        links = _walk(event.header(draft, role, NOW))
        return [c.href for c in links if getattr(c, "id", None) == "ev-door-link"]

    assert door("owner") == door("moderator") == ["/events/e/door"]
    assert door("analyst") == door(None) == []


def _is_action(component) -> bool:
    ident = getattr(component, "id", None)
    return isinstance(ident, dict) and ident.get("type") == "ev-action"


def text_of(component) -> str:
    """Every text the component and its children show, in order."""
    return " ".join(c for c in _walk(component) if isinstance(c, str))


def _walk(component):
    yield component
    if isinstance(component, str):
        return
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None:
            yield from _walk(child)


# --- overview ---------------------------------------------------------------------------------


def report() -> dict:
    money = [{"currency": "EUR", "gross": 10000, "refunds": 0, "net": 10000}]
    values = {"views": 100, "unique_views": 80, "registrations": 8, "cancellations": 0,
              "checkins": 4, "conversion_rate": 0.1, "attendance_rate": 0.5, "revenue": money}  # fmt: skip
    before = {**values, "views": 50, "registrations": 10, "revenue": []}
    change = {k: 0 for k in values} | {"revenue": []}
    row = {**values, "event_id": EVENT_ID, "title": "PyCon Berlin", "status": "published",
           "starts_at": "2027-04-01T08:00:00Z", "previous": before, "change": change}  # fmt: skip
    return {
        "organization_id": "o",
        "range": {"from": "2027-03-02T09:31:00Z", "to": "2027-04-01T09:31:00Z"},
        "previous_range": {"from": "2027-01-31T09:31:00Z", "to": "2027-03-02T09:31:00Z"},
        "events": [row],
        "totals": {**values, "previous": before, "change": change},
    }


def test_periods_and_their_caption() -> None:
    p = overview.period("7", None, None, NOW)
    assert (p.start, p.end) == (datetime(2027, 3, 25, 9, 31, tzinfo=UTC), NOW.replace(minute=31))
    custom = overview.period("custom", "2027-03-10", "2027-03-01", NOW)  # either order
    assert (custom.start, custom.end) == (
        datetime(2027, 3, 1, tzinfo=UTC),
        datetime(2027, 3, 11, tzinfo=UTC),
    )
    assert overview.period("custom", None, None, NOW).end - overview.period(
        "custom", None, None, NOW
    ).start == timedelta(days=30)  # custom without dates: 30 days
    assert overview.caption(report()) == (
        "2 Mar 2027 – 1 Apr 2027 compared with 31 Jan 2027 – 2 Mar 2027"
    )


def test_the_overview_lists_every_event_with_changes() -> None:
    events = [
        {"id": EVENT_ID, "title": "PyCon Berlin", "status": "published", "timezone": "UTC",
         "starts_at": "2027-04-01T08:00:00Z"},
        {"id": "quiet", "title": "Meetup", "status": "draft", "timezone": "UTC",
         "starts_at": "2027-06-01T08:00:00Z"},
    ]  # fmt: skip
    page = overview.content(events, report())
    text = text_of(page)
    assert "PyCon Berlin" in text and "Meetup" in text  # the quiet event has a row too
    assert "▲ 100.0%" in text  # views 50 → 100
    assert "▼ 20.0%" in text  # registrations 10 → 8
    assert "▲ new" in text  # revenue from nothing
    assert "/events/" + EVENT_ID in str(page)


def test_the_overview_shows_no_attendance_before_an_event_starts() -> None:
    events = [{"id": EVENT_ID, "title": "PyCon Berlin", "status": "published", "timezone": "UTC",
               "starts_at": "2027-04-01T08:00:00Z"}]  # fmt: skip
    r = report()
    r["events"][0] |= {"checkins": 0, "attendance_rate": 0.0}
    current, previous = overview.rows_of(r)
    before = text_of(
        overview.events_table(events, current, previous, datetime(2027, 3, 20, tzinfo=UTC))
    )
    assert before.endswith("new – not started")
    assert text_of(overview.events_table(events, current, previous, NOW)).endswith(
        "new 0.0% ▼ 100.0%"
    )


def test_an_organization_without_events() -> None:
    empty = {**report(), "events": []}
    assert "No events yet" in str(overview.content([], empty))


# --- exports ----------------------------------------------------------------------------------


def test_export_request_for_the_form() -> None:
    body = exports.request_body("o", "payments", "parquet", "2027-03-01", "2027-03-31", "all")
    assert body == {"organization_id": "o", "dataset": "payments", "format": "parquet",
                    "from": "2027-03-01T00:00:00+00:00", "to": "2027-04-01T00:00:00+00:00"}  # fmt: skip
    assert exports.request_body("o", "funnel", "xlsx", None, None, EVENT_ID)["event_id"] == EVENT_ID


def test_export_progress_and_download() -> None:
    running = {"id": "x", "dataset": "registrations", "status": "running", "progress": 40,
               "rows": None, "download_url": None}  # fmt: skip
    assert exports.status_view(running)[:3] == (40, "40 %", "Registrations: running")
    done = {**running, "status": "succeeded", "progress": 100, "rows": 1234,
            "download_url": "http://s3/x", "file_name": "registrations_x.csv"}  # fmt: skip
    value, label, line, link = exports.status_view(done)
    assert (value, label) == (100, "100 %") and line == "Registrations: succeeded, 1,234 rows"
    assert link.href == "http://s3/x" and link.download == "registrations_x.csv"
    failed = {**running, "status": "failed", "error": "disk full"}
    assert exports.status_view(failed)[2] == "Registrations: failed (disk full)"
    assert exports.status_view(failed)[3] is None
    assert exports.status_view(None) == (0, "", "", None)
    assert "No exports yet" in str(exports.recent_table([]))
    assert "Download" in str(exports.recent_table([{**done, "created_at": "2027-04-01T08:00Z",
                                                    "format": "csv"}]))  # fmt: skip


# --- the shell --------------------------------------------------------------------------------


ORGS = [{"id": "a", "name": "A", "role": "owner"}, {"id": "b", "name": "B", "role": "analyst"}]


def test_the_organization_chosen_is_always_one_of_the_users() -> None:
    assert choose_org(ORGS, "?org=b", None) == "b"
    assert choose_org(ORGS, "?org=someone-elses", "b") == "b"
    assert choose_org(ORGS, "", "gone") == "a"
    assert choose_org([], "?org=a", "a") is None


class NoSession:
    def client(self):
        raise Unauthorized(401, "not_signed_in", "Sign in first")


def test_nothing_is_decided_before_the_address_is_known() -> None:
    from dash import no_update

    from dashboards.app import load_shell

    # Dash may run the shell's first callback before dcc.Location has read the address: sending
    # to sign-in then would lose where the user was going.
    assert load_shell(NoSession(), None, None, None, None) == (no_update,) * 6


class DeadSession:
    def client(self):
        raise Unauthorized(401, "token_expired", "expired")


def test_pages_without_a_session_send_to_sign_in() -> None:
    page = page_for("/exports", None, "a", ORGS, NoSession(), 5)
    # never signed in: the plain sign-in page, not "your session has ended"
    assert page.href == "/signin?next=/exports" and page.refresh is True
    assert page_for("/exports", None, "a", ORGS, DeadSession(), 5).href == (
        "/signin?message=expired&next=/exports"
    )
    assert "No organization yet" in str(page_for("/", None, None, [], NoSession(), 5))
    assert "Not found" in str(page_for("/nowhere", None, "a", ORGS, NoSession(), 5))
    assert "ov-period" in str(page_for("/", None, "a", ORGS, NoSession(), 5))
    assert "ev-tick" in str(page_for("/events/" + EVENT_ID, None, "a", ORGS, NoSession(), 5))


class Refusing:
    def __init__(self, status: int) -> None:
        self.status = status

    def client(self):
        return self

    def event(self, event_id):
        raise ApiError(self.status, "not_found", "no such event")


def test_an_event_not_there_replaces_the_page_and_stops_loading() -> None:
    out = event.on_tick(Refusing(404), "all", EVENT_ID, ORGS, NOW)
    assert len(out) == event.OUTPUTS
    assert "Event not found" in str(out[0]) and "Loading" not in str(out[0])
    assert out[-2:] == ({"display": "none"}, True)  # the body hidden, the refresh stopped
    assert "Event not found" in str(event.on_tick(Refusing(403), "all", EVENT_ID, ORGS, NOW)[0])
    failing = event.on_tick(Refusing(503), "all", EVENT_ID, ORGS, NOW)  # may pass: keep trying
    assert "The platform answered" in str(failing[-3]) and failing[-1] is no_update


@pytest.mark.parametrize(
    ("status", "shown"),
    [(403, "your role"), (404, "your role"), (500, "The platform answered"), (503, "answered")],
)
def test_api_problems_are_explained(status: int, shown: str) -> None:
    assert shown in str(api_problem(ApiError(status, "code", "message")))


def test_the_sign_in_page_explains_why_it_is_shown() -> None:
    assert "Wrong e-mail or password." in str(signin_page("?message=invalid_credentials"))
    assert "Your session has ended" in str(signin_page("?message=expired&next=/exports"))
    assert "'/exports'" in str(signin_page("?message=expired&next=/exports"))
    assert "evil" not in str(signin_page("?next=//evil.example"))
    assert "signin-message" not in str(signin_page(""))
