"""The dashboards in headless Chromium against the real platform: sign in and out, the
organization switcher, the event dashboard's KPI cards equal to the analytics API's answer, the
funnel, tick labels inside their figures, the KPI grid, the locale, the empty state, a future
event's attendance, an event that is not there, the analyst's read-only view, an export from
start to download.

The module shares one Chromium and one dashboards app (conftest's ``browser`` and ``dash_base``);
each test signs in as whom it needs. README screenshots come from ``make screenshots``."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from sqlalchemy import text

from dashboards import event as event_page
from dashboards import format as fmt
from tests.dashboards.conftest import PASSWORD, api_get, now_found, sign_in

pytestmark = pytest.mark.browser

GRAPHS = ("#ev-activity", "#ev-revenue", "#ev-funnel", "#ev-tickets", "#ev-sources")


def wait_text(duo, selector: str, unlike: str = "…", timeout: float = 20) -> str:
    """The text of ``selector`` once it is there and no longer ``unlike`` (the loading mark)."""

    def shown() -> str | None:
        found = duo.driver.find_elements(By.CSS_SELECTOR, selector)
        return found[0].text if found and found[0].text and found[0].text != unlike else None

    return seen(wait_until(shown, f"{selector} never showed", timeout, duo))


def seen(text: str) -> str:
    """Text as WebDriver reports it: no-break spaces read as plain ones."""
    return text.replace(fmt.NBSP, " ").replace("\u202f", " ")


def wait_until(condition, what: str, timeout: float = 20, duo=None):
    """``condition()`` once truthy; on time-out, what the browser shows then, if ``duo``.

    An element that Dash re-rendered between finding and reading it counts as not there yet."""
    deadline = time.monotonic() + timeout

    def attempt():
        try:
            return condition()
        except StaleElementReferenceException:
            return None

    while not (result := attempt()):
        if time.monotonic() > deadline:
            if duo is None:
                pytest.fail(what)
            body = duo.find_element("body").text[:600]
            pytest.fail(f"{what} at {duo.driver.current_url}: {body!r}")
        time.sleep(0.2)
    return result


def wait_text_equal(duo, selector: str, text: str, timeout: float = 30) -> None:
    def shown() -> bool:
        found = duo.driver.find_elements(By.CSS_SELECTOR, selector)
        return bool(found) and seen(found[0].text) == seen(text)

    wait_until(shown, f"{selector} never read {text!r}", timeout, duo)


# Every tick label of a graph against the graph's main SVG: [graph, label, how far out (px)].
CLIPPED_LABELS = """
const out = [], counted = {};
for (const sel of arguments[0]) {
  const graph = document.querySelector(sel + ' .js-plotly-plot');
  const svg = graph && graph.querySelector('svg.main-svg');
  if (!svg) { out.push([sel, 'no figure', 0]); continue; }
  const box = svg.getBoundingClientRect();
  counted[sel] = 0;
  for (const t of graph.querySelectorAll('.xtick text, .ytick text')) {
    const r = t.getBoundingClientRect();
    if (!t.textContent || (r.width === 0 && r.height === 0)) continue;
    counted[sel]++;
    const over = Math.max(box.left - r.left, r.right - box.right, box.top - r.top,
                          r.bottom - box.bottom);
    if (over > 0.5) out.push([sel, t.textContent, over]);
  }
}
return [out, counted];
"""

# Each line of visible cards in the KPI row must end at the row's right edge: no empty column.
KPI_GAPS = """
const row = document.querySelector(arguments[0]);
const box = row.getBoundingClientRect();
const cards = [...row.children].filter(c => c.offsetParent !== null)
  .map(c => c.getBoundingClientRect());
const lines = {};
for (const r of cards) (lines[Math.round(r.top)] ||= []).push(r);
const gaps = Object.values(lines).map(l => box.right - Math.max(...l.map(r => r.right)));
return [cards.length, Object.keys(lines).length, gaps];
"""


def labels_inside(duo, graphs=GRAPHS) -> dict:
    """Waits until every tick label lies inside its figure (Plotly's automargin may take a
    redraw); answers how many labels each graph has."""
    report = {}

    def fitting() -> bool:
        clipped, counted = duo.driver.execute_script(CLIPPED_LABELS, list(graphs))
        report.update(clipped=clipped, counted=counted)
        return not clipped

    try:
        wait_until(fitting, "tick labels outside their figure", 10)
    except pytest.fail.Exception:
        pytest.fail(f"tick labels outside their figure: {report['clipped']}")
    return report["counted"]


def no_empty_column(duo, selector: str, cards: int) -> None:
    """At several widths the visible cards fill each line they wrap onto."""
    for width in (1440, 900, 560):
        duo.driver.set_window_size(width, 1000)

        def filled(width=width):
            shown, lines, gaps = duo.driver.execute_script(KPI_GAPS, selector)
            return shown == cards and all(abs(g) <= 1 for g in gaps) and (shown, lines, gaps)

        wait_until(filled, f"{selector}: an empty column at {width}px", 5, duo)
    duo.driver.set_window_size(1440, 1000)


@pytest.fixture(autouse=True)
def _backdated_sales(scenario, owner_engine) -> None:
    """The live event went on sale six hours ago (its tracked visits start five hours ago)."""
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE events SET created_at = now() - interval '6 hours' WHERE id = :id"),
            {"id": scenario.live_event["id"]},
        )


def test_sign_in_switch_organization_sign_out(browser, dash_base, scenario, live_api) -> None:
    base = dash_base
    # A first visit: the plain sign-in page, not "your session has ended".
    browser.driver.delete_all_cookies()
    browser.driver.get(f"{base}/exports")
    wait_until(lambda: "/signin" in browser.driver.current_url, "not sent to sign in")
    browser.wait_for_element("#signin-email")
    assert "session has ended" not in browser.find_element("body").text
    assert not now_found(browser, By.CSS_SELECTOR, "#signin-message")

    browser.wait_for_element("#signin-email").send_keys(scenario.owner["email"])
    browser.find_element("#signin-password").send_keys("not the password")
    browser.find_element("#signin-submit").click()
    browser.wait_for_text_to_equal("#signin-message", "Wrong e-mail or password.")
    assert browser.driver.get_cookie("aq_access") is None

    sign_in(browser, base, scenario.owner, path=f"/?org={scenario.org_a['id']}")
    wait_text_equal(browser, "h1", scenario.org_a["name"])
    cookie = browser.driver.get_cookie("aq_access")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert browser.driver.execute_script("return document.cookie").find("aq_access") == -1
    table = wait_text(browser, "#ov-content table")
    assert scenario.live_event["title"] in table and scenario.fresh_event["title"] in table
    assert scenario.b_event["title"] not in table
    assert browser.find_element("#role-badge").text == "Owner"
    no_empty_column(browser, "#ov-kpis", 5)

    # The switcher offers exactly the user's organizations; the other one's events replace these.
    browser.find_element("#org-switch").click()
    menu = browser.wait_for_element(".dash-dropdown-options")
    options = wait_until(
        lambda: menu.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option"), "no options"
    )
    mine = api_get(live_api, scenario.owner, "/organizations")
    mine = mine["items"]
    assert sorted(o.text for o in options) == sorted(o["name"] for o in mine) and len(mine) == 3
    next(o for o in options if o.text == scenario.org_b["name"]).click()
    wait_text_equal(browser, "h1", scenario.org_b["name"])
    table = wait_text(browser, "#ov-content table")
    assert scenario.b_event["title"] in table and scenario.live_event["title"] not in table

    browser.find_element("#signout").click()
    browser.wait_for_text_to_equal("#signin-message", "You are signed out.")
    assert browser.driver.get_cookie("aq_access") is None
    browser.driver.get(f"{base}/exports")
    wait_until(lambda: "/signin" in browser.driver.current_url, "signed out, still in")
    assert "session has ended" not in browser.find_element("body").text

    # A session that really ended (a token the API refuses) says so.
    browser.driver.add_cookie({"name": "aq_access", "value": "expired.or.revoked", "path": "/"})
    browser.driver.get(f"{base}/exports")
    wait_text_equal(browser, "#signin-message", "Your session has ended: please sign in again.")
    browser.driver.delete_all_cookies()


def test_event_dashboard_shows_what_the_analytics_api_returns(
    browser, dash_base, dash_settings, scenario, live_api
) -> None:
    base = dash_base
    event_id = scenario.live_event["id"]
    sign_in(browser, base, scenario.owner, path=f"/?org={scenario.org_a['id']}")
    wait_text_equal(browser, "h1", scenario.org_a["name"])
    wait_text(browser, "#ov-views")

    # Open the event from the overview, as an organizer does.
    browser.driver.find_element(By.LINK_TEXT, scenario.live_event["title"]).click()
    wait_until(lambda: browser.driver.current_url.endswith(f"/events/{event_id}"), "not opened")
    sold = wait_text(browser, "#ev-kpi-sold")
    owner = scenario.owner
    event = api_get(live_api, owner, f"/events/{event_id}")
    frm, to, granularity = event_page.window("all", event, datetime.now(UTC))
    dashboard = api_get(
        live_api, owner, f"/analytics/events/{event_id}/dashboard",
        **{"from": frm.isoformat(), "to": to.isoformat(), "granularity": granularity},
    )  # fmt: skip
    kpis = dashboard["kpis"]
    assert dashboard["sold"] == 8 and kpis["checkins"] == 4  # what the scenario made
    assert sold == seen(fmt.sold_of(dashboard["sold"], dashboard["capacity"])) == "8 / 70"
    # English, the locale chosen (the owner's, as GET /users/me has it): €98.00, 12.5%.
    assert wait_text(browser, "#ev-kpi-revenue") == seen(event_page.net_revenue(dashboard))
    assert event_page.net_revenue(dashboard) == "€98.00"
    conversion = wait_text(browser, "#ev-kpi-conversion")
    assert conversion == seen(fmt.percent(kpis["conversion_rate"]))
    assert re.fullmatch(r"\d+\.\d%", conversion), conversion
    assert wait_text(browser, "#ev-kpi-attendance") == "50.0%"  # 4 of 8, the doors are open
    # Doors are open: the live counter shows the check-ins.
    assert browser.find_element("#ev-live").is_displayed()
    assert wait_text(browser, "#ev-live-count") == seen(fmt.number(kpis["checkins"]))
    assert not browser.find_element("#ev-empty").is_displayed()

    # The funnel is drawn with the API's stages, in order, never widening.
    drawn = wait_until(
        lambda: browser.driver.execute_script(
            "const g = document.querySelector('#ev-funnel .js-plotly-plot');"
            "return g && g.data && g.data[0] && g.data[0].type === 'funnel' ? "
            "[g.data[0], g.layout.separators] : null"
        ),
        "no funnel drawn",
    )
    funnel, separators = drawn
    assert funnel["x"] == [s["count"] for s in dashboard["funnel"]]
    assert all(a >= b for a, b in zip(funnel["x"], funnel["x"][1:], strict=False)), funnel["x"]
    assert separators == ".,"  # Plotly's numbers read as the cards do
    bars = browser.find_elements("#ev-funnel .funnellayer .point")
    assert len(bars) == len(dashboard["funnel"])  # one bar drawn per stage

    # Every tick label inside its figure (the funnel's stages, the sources' names, the dates).
    counted = labels_inside(browser)
    assert all(counted[g] for g in ("#ev-activity", "#ev-funnel", "#ev-sources")), counted
    # Four cards (no live card outside the doors' hours would make it four; here five).
    no_empty_column(browser, "#ev-kpis", 5)

    title = browser.find_element("#ev-title").text
    assert title == scenario.live_event["title"]
    # An auto-refresh keeps the page (no re-rendered layout: the same DOM node stays).
    node = browser.find_element("#ev-kpi-sold")
    time.sleep(dash_settings.dashboards_refresh_s * 2)
    assert browser.find_element("#ev-kpi-sold") == node and seen(node.text) == sold

    # An event weeks ahead with registrations: attendance has not started, it is not "0 %".
    browser.driver.get(f"{base}/events/{scenario.future_event['id']}")
    wait_text_equal(browser, "#ev-title", scenario.future_event["title"])
    attendance = wait_text(browser, "#ev-kpi-attendance")
    assert attendance == fmt.NONE and "0" not in attendance
    assert wait_text(browser, "#ev-kpi-attendance-note").startswith("not started")
    assert not browser.find_element("#ev-live").is_displayed()
    no_empty_column(browser, "#ev-kpis", 4)  # four cards: four columns, none empty
    labels_inside(browser)

    # An address of no event: the not-found message, and nothing left loading.
    browser.driver.get(f"{base}/events/{uuid.uuid4()}")
    not_found(browser)

    # A fresh event says so instead of drawing empty axes; its owner may publish it.
    browser.driver.get(f"{base}/events/{scenario.fresh_event['id']}")
    browser.wait_for_element("#ev-empty-alert")
    wait_until(lambda: browser.find_element("#ev-empty").is_displayed(), "no empty state")
    assert not browser.find_element("#ev-charts").is_displayed()
    assert "No data yet" in browser.find_element("#ev-empty").text
    assert browser.driver.find_elements(By.XPATH, "//button[normalize-space()='Publish']")


def not_found(duo) -> None:
    """The not-found message, and, after a bounded wait, no "Loading…" and no spinner."""
    wait_text(duo, "#not-found", timeout=20)
    assert "Event not found" in duo.find_element("#not-found").text

    def settled() -> bool:
        body = duo.find_element("body").text
        spinners = [s for s in duo.driver.find_elements(By.CSS_SELECTOR, ".spinner-border")
                    if s.is_displayed()]  # fmt: skip
        return "Loading" not in body and not spinners

    wait_until(settled, "still loading under the not-found message", 10, duo)
    time.sleep(2)  # two refresh periods later, still settled (the refresh has stopped)
    assert settled() and "Event not found" in duo.find_element("#not-found").text


def test_analyst_reads_only_and_an_export_downloads(
    browser, dash_base, scenario, live_api, export_runner
) -> None:
    base = dash_base
    analyst = scenario.analyst
    sign_in(browser, base, analyst, path=f"/events/{scenario.fresh_event['id']}")
    wait_text_equal(browser, "#ev-title", scenario.fresh_event["title"])
    assert browser.find_element("#role-badge").text == "Analyst · read-only"
    assert not now_found(browser, By.XPATH, "//button[normalize-space()='Publish']")

    # Another organization's event: not the analyst's to see, said as plainly as a wrong address.
    browser.driver.get(f"{base}/events/{scenario.b_event['id']}")
    not_found(browser)

    browser.driver.get(f"{base}/exports")
    browser.wait_for_element("#exp-start")
    assert "without personal data" in browser.find_element(".alert").text
    assert browser.find_element("#exp-dataset").get_attribute("value") == "registrations"
    assert browser.find_element("#exp-format input[value='csv']").is_selected()
    browser.find_element("#exp-start").click()
    link = wait_until(
        lambda: browser.driver.find_elements(By.CSS_SELECTOR, "#exp-download-link"),
        "the export never finished",
        timeout=60,
    )[0]
    assert browser.find_element("#exp-progress").text.strip() == "100 %"
    assert "registrations" in link.text

    download = httpx.get(link.get_attribute("href"), timeout=10)
    assert download.status_code == 200
    lines = download.text.strip().splitlines()
    exports = api_get(live_api, analyst, "/analytics/exports", organization_id=scenario.org_a["id"])
    exports = exports["items"]
    latest = exports[0]
    assert latest["status"] == "succeeded" and latest["personal_data"] is False
    assert lines[0].split(",") == latest["columns"]
    # the live event's and the future event's registrations
    assert len(lines) - 1 == latest["rows"] == len(scenario.registrations) + 2
    assert "@" not in download.text  # no e-mail addresses for an analyst
    assert PASSWORD not in download.text
    recent = browser.find_element("#exp-list").text
    assert "Registrations" in recent and "succeeded" in recent
