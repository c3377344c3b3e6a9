"""The dashboards in headless Chromium against the real platform: sign in and out, the
organization switcher, the event dashboard's KPI cards equal to the analytics API's answer, the
funnel, the empty state, the analyst's read-only view, an export from start to download.

Screenshots go to $AQSTREAM_SCREENSHOTS when set (``docs/screenshots`` for the README), else to
the test's temporary folder."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from sqlalchemy import text

from dashboards import event as event_page
from dashboards import format as fmt
from tests.dashboards.conftest import PASSWORD, api_get, sign_in, start

pytestmark = pytest.mark.browser


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("AQSTREAM_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_text(duo, selector: str, unlike: str = "…", timeout: float = 20) -> str:
    """The text of ``selector`` once it is there and no longer ``unlike`` (the loading mark)."""

    def shown() -> str | None:
        found = duo.driver.find_elements(By.CSS_SELECTOR, selector)
        return found[0].text if found and found[0].text and found[0].text != unlike else None

    return seen(wait_until(shown, f"{selector} never showed", timeout, duo))


def seen(text: str) -> str:
    """Text as WebDriver reports it: no-break spaces read as plain ones."""
    return text.replace(fmt.NBSP, " ").replace(fmt.GROUP, " ")


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
            where = f" at {duo.driver.current_url}: {duo.find_element('body').text[:600]!r}"
            pytest.fail(what + (where if duo else ""))
        time.sleep(0.2)
    return result


def wait_text_equal(duo, selector: str, text: str, timeout: float = 30) -> None:
    def shown() -> bool:
        found = duo.driver.find_elements(By.CSS_SELECTOR, selector)
        return bool(found) and seen(found[0].text) == seen(text)

    wait_until(shown, f"{selector} never read {text!r}", timeout, duo)


@pytest.fixture(autouse=True)
def _backdated_sales(scenario, owner_engine) -> None:
    """The live event went on sale six hours ago (its tracked visits start five hours ago)."""
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE events SET created_at = now() - interval '6 hours' WHERE id = :id"),
            {"id": scenario.live_event["id"]},
        )


def test_sign_in_switch_organization_sign_out(
    browser, dash_settings, scenario, live_api, tmp_path
) -> None:
    base = start(browser, dash_settings)
    browser.driver.get(f"{base}/")
    wait_until(lambda: "/signin" in browser.driver.current_url, "not sent to sign in")

    browser.wait_for_element("#signin-email").send_keys(scenario.owner["email"])
    browser.find_element("#signin-password").send_keys("not the password")
    browser.find_element("#signin-submit").click()
    browser.wait_for_text_to_equal("#signin-message", "Wrong e-mail or password.")
    assert browser.driver.get_cookie("aq_access") is None
    browser.driver.save_screenshot(str(shots(tmp_path) / "signin.png"))

    sign_in(browser, base, scenario.owner, path=f"/?org={scenario.org_a['id']}")
    wait_text_equal(browser, "h1", scenario.org_a["name"])
    cookie = browser.driver.get_cookie("aq_access")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert browser.driver.execute_script("return document.cookie").find("aq_access") == -1
    table = wait_text(browser, "#ov-content table")
    assert scenario.live_event["title"] in table and scenario.fresh_event["title"] in table
    assert scenario.b_event["title"] not in table
    assert browser.find_element("#role-badge").text == "Owner"

    # The switcher offers exactly the user's organizations; the other one's events replace these.
    browser.find_element("#org-switch").click()
    menu = browser.wait_for_element(".dash-dropdown-options")
    options = wait_until(
        lambda: menu.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option"), "no options"
    )
    mine = api_get(live_api, scenario.owner, "/organizations")
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


def test_event_dashboard_shows_what_the_analytics_api_returns(
    browser, dash_settings, scenario, live_api, tmp_path
) -> None:
    base = start(browser, dash_settings)
    event_id = scenario.live_event["id"]
    sign_in(browser, base, scenario.owner, path=f"/?org={scenario.org_a['id']}")
    wait_text_equal(browser, "h1", scenario.org_a["name"])
    # The overview's figures are the report's (views of the organization in 30 days).
    wait_text(browser, "#ov-views")
    browser.driver.save_screenshot(str(shots(tmp_path) / "overview.png"))

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
    assert wait_text(browser, "#ev-kpi-revenue") == seen(event_page.net_revenue(dashboard))
    assert event_page.net_revenue(dashboard) == f"98,00{fmt.NBSP}€"
    assert wait_text(browser, "#ev-kpi-conversion") == seen(fmt.percent(kpis["conversion_rate"]))
    assert wait_text(browser, "#ev-kpi-attendance") == seen(fmt.percent(kpis["attendance_rate"]))
    # Doors are open: the live counter shows the check-ins.
    assert browser.find_element("#ev-live").is_displayed()
    assert wait_text(browser, "#ev-live-count") == seen(fmt.number(kpis["checkins"]))
    assert not browser.find_element("#ev-empty").is_displayed()

    # The funnel is drawn with the API's counts, stage by stage.
    drawn = wait_until(
        lambda: browser.driver.execute_script(
            "const g = document.querySelector('#ev-funnel .js-plotly-plot');"
            "return g && g.data && g.data[0] && g.data[0].type === 'funnel' ? g.data[0] : null"
        ),
        "no funnel drawn",
    )
    assert drawn["x"] == [s["count"] for s in dashboard["funnel"]]
    bars = browser.find_elements("#ev-funnel .funnellayer .point")
    assert len(bars) == len(dashboard["funnel"])  # one bar drawn per stage
    title = browser.find_element("#ev-title").text
    assert title == scenario.live_event["title"]
    # An auto-refresh keeps the page (no re-rendered layout: the same DOM node stays).
    node = browser.find_element("#ev-kpi-sold")
    time.sleep(dash_settings.dashboards_refresh_s * 2)
    assert browser.find_element("#ev-kpi-sold") == node and seen(node.text) == sold
    browser.driver.set_window_size(1440, 1900)  # the whole dashboard in one picture
    browser.driver.save_screenshot(str(shots(tmp_path) / "event.png"))
    browser.driver.set_window_size(1440, 1000)

    # A fresh event says so instead of drawing empty axes; its owner may publish it.
    browser.driver.get(f"{base}/events/{scenario.fresh_event['id']}")
    browser.wait_for_element("#ev-empty-alert")
    wait_until(lambda: browser.find_element("#ev-empty").is_displayed(), "no empty state")
    assert not browser.find_element("#ev-charts").is_displayed()
    assert "No data yet" in browser.find_element("#ev-empty").text
    assert browser.driver.find_elements(By.XPATH, "//button[normalize-space()='Publish']")


def test_analyst_reads_only_and_an_export_downloads(
    browser, dash_settings, scenario, live_api, export_runner, tmp_path
) -> None:
    base = start(browser, dash_settings)
    analyst = scenario.analyst
    sign_in(browser, base, analyst, path=f"/events/{scenario.fresh_event['id']}")
    wait_text_equal(browser, "#ev-title", scenario.fresh_event["title"])
    assert browser.find_element("#role-badge").text == "Analyst · read-only"
    assert not browser.driver.find_elements(By.XPATH, "//button[normalize-space()='Publish']")

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
    browser.driver.save_screenshot(str(shots(tmp_path) / "exports.png"))

    download = httpx.get(link.get_attribute("href"), timeout=10)
    assert download.status_code == 200
    lines = download.text.strip().splitlines()
    exports = api_get(live_api, analyst, "/analytics/exports", organization_id=scenario.org_a["id"])
    latest = exports[0]
    assert latest["status"] == "succeeded" and latest["personal_data"] is False
    assert lines[0].split(",") == latest["columns"]
    assert len(lines) - 1 == latest["rows"] == len(scenario.registrations)
    assert "@" not in download.text  # no e-mail addresses for an analyst
    assert PASSWORD not in download.text
    recent = browser.find_element("#exp-list").text
    assert "Registrations" in recent and "succeeded" in recent
