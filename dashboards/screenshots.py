"""The README's pictures of the dashboards (``make screenshots``, ``aqstream screenshots``): a
running platform (``make run``) photographed in headless Chromium at a fixed window size, signed
in as one of its organizers: sign-in, the organization overview, the busiest event's dashboard,
exports, and the console: the busiest event's settings and tickets, its attendees, its door,
its messages, and the team. Selenium comes with the dev dependencies (dash[testing]); Chromium and chromedriver are
Debian's ``chromium`` and ``chromium-driver``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx

from dashboards.client import V1

WIDTH, HEIGHT, TALL = 1440, 1000, 1900  # the event dashboard is photographed whole (TALL)
# Every tick label inside its figure: the pictures wait for Plotly's automargin to settle.
_CLIPPED = """
let n = 0;
for (const g of document.querySelectorAll('.js-plotly-plot')) {
  const svg = g.querySelector('svg.main-svg'); if (!svg) return -1;
  const b = svg.getBoundingClientRect();
  for (const t of g.querySelectorAll('.xtick text, .ytick text')) {
    const r = t.getBoundingClientRect();
    if (r.width && (r.left < b.left || r.right > b.right || r.top < b.top || r.bottom > b.bottom))
      n++;
  }
}
return n;
"""


@dataclass(frozen=True)
class Target:
    """What to photograph: the organizer's organization and its busiest event."""

    organization_id: str
    event_id: str | None


def busiest(api_url: str, email: str, password: str, now: datetime) -> Target:
    """The organizer's first organization and its event with the most views in 30 days."""
    with httpx.Client(base_url=api_url.rstrip("/") + V1, timeout=15) as http:
        login = http.post("/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        orgs = http.get("/organizations").raise_for_status().json()["items"]
        if not orgs:
            raise SystemExit(f"{email} belongs to no organization yet: is the demo seeded?")
        org = orgs[0]["id"]
        window = {"from": (now - timedelta(days=30)).isoformat(), "to": now.isoformat()}
        report = http.get(f"/analytics/organizations/{org}/report", params=window)
        rows = report.raise_for_status().json()["events"]
    top = max(rows, key=lambda r: (r["registrations"], r["views"]), default=None)
    return Target(org, top["event_id"] if top else None)


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = (
        shutil.which("chromium") or shutil.which("chrome"),
        shutil.which("chromedriver"),
    )
    if not (chromium and driver):
        raise SystemExit("screenshots need chromium and chromium-driver (apt-get install them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--force-device-scale-factor=1", "--lang=en-GB"):  # fmt: skip
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_window_size(WIDTH, HEIGHT)
    return browser


def _wait(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except StaleElementReferenceException:  # Dash re-rendered it: not there yet
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: {what} (after {timeout:.0f} s)")
        time.sleep(0.25)


def _text(browser, selector: str) -> str:
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def capture(dashboards_url: str, api_url: str, email: str, password: str, out: Path,
            say: Callable[[str], None] = print) -> list[Path]:  # fmt: skip
    """Photographs the pages into ``out``; answers the files written."""
    from selenium.webdriver.common.by import By

    base = dashboards_url.rstrip("/")
    target = busiest(api_url, email, password, datetime.now(UTC))
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    browser = _driver()

    def shot(name: str) -> None:
        time.sleep(0.5)  # the last paint after the content settled
        path = out / f"{name}.png"
        browser.save_screenshot(str(path))
        written.append(path)
        say(f"  {path}")

    try:
        browser.get(f"{base}/signin")
        _wait(lambda: _text(browser, "h1") == "Sign in", "no sign-in page")
        shot("signin")

        browser.get(f"{base}/signin?next={quote(f'/?org={target.organization_id}', safe='')}")
        _wait(lambda: browser.find_elements(By.ID, "signin-email"), "no sign-in form")
        browser.find_element(By.ID, "signin-email").send_keys(email)
        browser.find_element(By.ID, "signin-password").send_keys(password)
        browser.find_element(By.ID, "signin-submit").click()
        _wait(lambda: _text(browser, "#ov-content table"), "the overview never showed its events")
        _wait(lambda: _text(browser, "#ov-views") not in ("", "…"), "no overview figures")
        shot("overview")

        if target.event_id:
            browser.get(f"{base}/events/{target.event_id}")
            _wait(lambda: _text(browser, "#ev-kpi-sold") not in ("", "…"), "no event figures")
            browser.set_window_size(WIDTH, TALL)
            _wait(lambda: browser.execute_script(_CLIPPED) == 0, "charts still drawing", 20)
            shot("event")
            browser.set_window_size(WIDTH, HEIGHT)
        else:
            say("  (no event with activity: event.png left as it was)")

        browser.get(f"{base}/exports")
        _wait(lambda: browser.find_elements(By.ID, "exp-start"), "no exports page")
        _wait(lambda: _text(browser, "#exp-list"), "no list of exports")
        shot("exports")

        if target.event_id:
            event = f"{base}/events/{target.event_id}"
            browser.get(f"{event}/manage")
            _wait(lambda: _text(browser, "#ce-tt-list"), "no ticket types on the manage page")
            shot("console-event")
            browser.get(f"{event}/attendees")
            _wait(lambda: _text(browser, "#att-table tbody"), "no attendees listed")
            shot("console-attendees")
            browser.get(f"{event}/door")
            _wait(lambda: _text(browser, "#door-count") not in ("", "…"), "no door counter")
            shot("console-door")
            browser.get(f"{event}/messages")
            _wait(lambda: browser.find_elements(By.ID, "msg-subject"), "no message form")
            browser.find_element(By.ID, "msg-subject").send_keys("Doors open at 18:30")
            browser.find_element(By.ID, "msg-text").send_keys(
                "See you tonight! Bring your ticket's QR code; the venue opens half an hour early."
            )
            browser.find_element(By.ID, "msg-preview").click()  # a preview sends nothing
            _wait(lambda: _text(browser, "#msg-preview-out"), "no preview of the message")
            shot("console-messages")
        browser.get(f"{base}/team")
        _wait(lambda: _text(browser, "#team-members"), "no team members listed")
        shot("console-team")
    finally:
        browser.quit()
    return written
