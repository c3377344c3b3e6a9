"""Door check-in (dashboards/door.py): the answers' words and colours, a retry that repeats its
nonce, and, in headless Chromium at a phone's size against the real platform, codes typed at the
door (checked in, already in at HH:MM, wrong event, invalid, not confirmed), the counter, the
vendored QR decoder reading a ticket's image under the CSP, and an analyst who sees no door.

The browser tests share the conftest's Chromium and dashboards app (``browser``, ``dash_base``)
and its ``scenario``; ticket codes come from the API's ticket endpoint, as the tickets' holders
get them."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboards import door
from dashboards import format as fmt
from dashboards.client import ApiError
from tests.dashboards.conftest import api_get, now_found, sign_in
from tests.dashboards.test_browser import seen, wait_text, wait_until
from tests.factories import registered

PHONE = (390, 844)  # an iPhone 12-15's viewport, in CSS pixels
TOUCH_PX = 44  # the smallest comfortable touch target (Apple's HIG; WCAG 2.5.5 asks 44 too)

# --- the answers (no browser) ----------------------------------------------------------------


def error(status: int, code: str, details=None) -> ApiError:
    exc = ApiError(status, code, "the API's message")
    exc.details = details
    return exc


@pytest.mark.parametrize(
    ("exc", "kind", "title"),
    [
        (
            error(409, "already_checked_in", {"checked_in_at": "2027-04-01T07:58:30+00:00"}),
            "again",
            "Already checked in at 09:58",  # Berlin in summer: UTC+2
        ),
        (error(409, "already_checked_in"), "again", "Already checked in"),
        (error(409, "not_confirmed", {"status": "pending_payment"}), "stop", "Not confirmed"),
        (error(409, "cancelled"), "stop", "Cancelled"),
        (error(409, "wrong_event"), "stop", "Wrong event"),
        (error(422, "invalid_code"), "stop", "Invalid code"),
        (error(422, "validation_error"), "stop", "Invalid code"),
        (error(403, "insufficient_role"), "stop", "Not allowed"),
        (error(503, "api_unreachable"), "retry", "Not recorded"),
        (error(500, "internal_error"), "retry", "Not recorded"),
    ],
)
def test_each_refusal_has_its_words_and_colour(exc: ApiError, kind: str, title: str) -> None:
    outcome = door.refused(exc, "Europe/Berlin")
    assert (outcome.kind, outcome.title) == (kind, title)
    assert outcome.retry == (kind == "retry")


def test_checked_in_says_the_seats_and_the_time_in_the_events_zone() -> None:
    body = {"quantity": 3, "checked_in_at": "2027-01-15T18:02:00+00:00"}
    outcome = door.checked_in(body, "America/New_York")
    assert (outcome.kind, outcome.title, outcome.detail) == ("ok", "Checked in", "3 seats · 13:02")
    assert door.checked_in({**body, "quantity": 1}, "UTC").detail == "1 seat · 18:02"


class FakeClient:
    """The API as the door calls it: check-in answers in turn, and the stats."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.sent: list[dict] = []

    def post(self, path: str, body: dict):
        self.sent.append(body)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def get(self, path: str):
        assert path.endswith("/check-ins/stats")
        return {"registered": 8, "checked_in": len(self.sent) - 1, "attendance_rate": 0.0}


class FakeSessions:
    def __init__(self, client: FakeClient) -> None:
        self._client = client

    def client(self) -> FakeClient:
        return self._client


def test_a_retry_after_no_answer_repeats_the_scans_nonce() -> None:
    body = {"quantity": 1, "checked_in_at": "2027-04-01T08:00:00+00:00"}
    api = FakeClient(error(503, "api_unreachable"), body)
    event = {"id": str(uuid.uuid4()), "timezone": "Europe/Berlin"}
    scan = {"code": "AQ1.some-code", "nonce": str(uuid.uuid4())}

    shown, retry_style, count = door.on_scan(FakeSessions(api), scan, event)
    assert outcome_of(shown) == "retry" and retry_style == {}
    assert count == "0 / 8"
    # The retry button sends the same scan again: the same nonce, so never counted twice.
    shown, retry_style, count = door.on_scan(FakeSessions(api), scan, event)
    assert outcome_of(shown) == "ok" and retry_style == {"display": "none"}
    assert count == "1 / 8"
    assert api.sent == [{"ticket_code": scan["code"], "nonce": scan["nonce"]}] * 2


def outcome_of(component) -> str:
    return component.to_plotly_json()["props"]["data-outcome"]


# --- in the browser, at a phone's size ----------------------------------------------------------


def ticket_code(live_api: str, owner: dict, registration_id: str) -> str:
    return api_get(live_api, owner, f"/registrations/{registration_id}/ticket")["ticket_code"]


def stats_text(live_api: str, owner: dict, event_id: str) -> str:
    return door.counter(api_get(live_api, owner, f"/events/{event_id}/check-ins/stats"))


def type_code(duo, code: str) -> None:
    """A code typed (or pasted) at the door and Enter; the field empties once it is sent."""
    field = duo.wait_for_element("#door-code")
    field.send_keys(code + Keys.ENTER)
    wait_until(lambda: field.get_attribute("value") == "", "the code was not sent", 10, duo)


def answer(duo, kind: str, title: str) -> str:
    """The door's whole answer once it is ``title`` in the colour of ``kind``."""

    def shown():
        found = duo.driver.find_elements(By.CSS_SELECTOR, f"#door-result [data-outcome='{kind}']")
        heading = found and found[0].find_elements(By.CLASS_NAME, "door-result-title")
        return heading and seen(heading[0].text) == title and seen(found[0].text)

    return wait_until(shown, f"no {kind!r} answer {title!r}", 20, duo)


def wait_count(duo, text: str) -> None:
    wait_until(
        lambda: seen(duo.find_element("#door-count").text) == seen(text),
        f"the counter never read {text!r}", 20, duo,
    )  # fmt: skip


PHONE_LAYOUT = """
const page = document.documentElement;
const box = (id) => {  // the counter's number by its card
  const el = document.getElementById(id);
  return (el.closest('.door-counter') || el).getBoundingClientRect();
};
const ids = ['door-count', 'door-result', 'door-camera-start', 'door-code', 'door-submit'];
return {overflow: page.scrollWidth - window.innerWidth, width: window.innerWidth,
        boxes: ids.map((id) => { const r = box(id);
          return [id, r.left, r.right, r.top, r.bottom, r.height]; })};
"""

DECODE = """
const [png, done] = arguments;
new ZXingBrowser.BrowserQRCodeReader()
  .decodeFromImageUrl('data:image/png;base64,' + png)
  .then((result) => done(result.getText()), (err) => done('error: ' + err));
"""


@pytest.mark.browser
def test_door_check_in_on_a_phone(browser, dash_base, scenario, live_api, client, api) -> None:
    owner, event_id = scenario.owner, scenario.live_event["id"]
    tz = scenario.live_event["timezone"]
    first, other = scenario.registrations[0], scenario.registrations[1]
    browser.driver.set_window_size(*PHONE)
    try:
        sign_in(browser, dash_base, owner, path=f"/events/{event_id}")
        browser.wait_for_element("#ev-door-link").click()  # from the event's header
        wait_until(lambda: browser.driver.current_url.endswith(f"/events/{event_id}/door"), "")
        assert wait_text(browser, "#door-title") == scenario.live_event["title"]
        before = stats_text(live_api, owner, event_id)
        # Eight confirmed seats, none checked in: the scenario's check-ins are warehouse facts.
        assert before == "0 / 8"
        wait_count(browser, before)

        # One column, nothing wider than the phone, every control a thumb can hit.
        layout = browser.driver.execute_script(PHONE_LAYOUT)
        assert layout["width"] <= PHONE[0] and layout["overflow"] <= 0, layout
        boxes = {b[0]: b[1:] for b in layout["boxes"]}
        lefts = {round(left) for left, *_ in boxes.values()}
        assert len(lefts) == 1, boxes  # all aligned in one column...
        tops = [boxes[i][2] for i in ("door-count", "door-result", "door-camera-start",
                                       "door-code", "door-submit")]  # fmt: skip
        assert tops == sorted(tops), boxes  # ... one under the other
        for name in ("door-camera-start", "door-code", "door-submit"):
            left, right, _, _, height = boxes[name]
            assert height >= TOUCH_PX and right - left >= PHONE[0] * 0.8, (name, boxes[name])

        # A ticket typed at the door: green, and the counter moves.
        code = ticket_code(live_api, owner, first["id"])
        type_code(browser, code)
        answer(browser, "ok", "Checked in")
        assert (
            browser.find_element("#door-result .door-ok").value_of_css_property("background-color")
            == "rgba(20, 108, 67, 1)"
        )  # #146c43: green
        wait_count(browser, "1 / 8")
        assert stats_text(live_api, owner, event_id) == "1 / 8"
        registration = api_get(live_api, owner, f"/registrations/{first['id']}")
        assert registration["checked_in_at"] is not None
        at = f"{fmt.local_time(registration['checked_in_at'], tz):%H:%M}"

        # The same ticket again (a new scan, a new nonce): amber, in since HH:MM (Berlin time).
        type_code(browser, code)
        answer(browser, "again", f"Already checked in at {at}")
        assert (
            browser.find_element("#door-result .door-again").value_of_css_property(
                "background-color"
            )
            == "rgba(255, 193, 7, 1)"
        )  # #ffc107: amber
        wait_count(browser, "1 / 8")

        # A ticket of another event of the organization: red, and nobody checked in there.
        seat = api_get(live_api, owner, f"/events/{scenario.future_event['id']}/ticket-types")
        elsewhere = registered(
            client, scenario.future_event["id"], api.register("elsewhere"),
            ticket_type_id=seat["items"][0]["id"],
        )  # fmt: skip
        type_code(browser, ticket_code(live_api, owner, elsewhere["id"]))
        answer(browser, "stop", "Wrong event")
        assert (
            api_get(live_api, owner, f"/registrations/{elsewhere['id']}")["checked_in_at"] is None
        )

        # Garbage: red, invalid.
        type_code(browser, "not-a-ticket-" + uuid.uuid4().hex)
        answer(browser, "stop", "Invalid code")

        # A registration waiting for its payment: red, not confirmed.
        paid_type = scenario.registrations[-1]["ticket_type_id"]
        unpaid = registered(client, event_id, api.register("unpaid"), ticket_type_id=paid_type)
        assert unpaid["status"] == "pending_payment"
        type_code(browser, ticket_code(live_api, owner, unpaid["id"]))
        assert "payment is pending" in answer(browser, "stop", "Not confirmed")
        assert (
            browser.find_element("#door-result .door-stop").value_of_css_property(
                "background-color"
            )
            == "rgba(176, 42, 55, 1)"
        )  # #b02a37: red
        assert not browser.find_element("#door-retry").is_displayed()

        # The camera's decoder: the vendored file, loaded on demand from this server under the
        # CSP (no 'unsafe-eval'). Headless Chromium has no camera, so the page says to type the
        # code; the decoder then reads a ticket's QR image, and that code checks in.
        assert not browser.driver.execute_script("return !!window.ZXingBrowser")
        browser.find_element("#door-camera-start").click()
        wait_until(lambda: browser.driver.execute_script("return !!window.ZXingBrowser"),
                   "the QR decoder did not load", 20, browser)  # fmt: skip
        wait_until(lambda: "Type the code" in browser.find_element("#door-camera-status").text,
                   "no word about the missing camera", 20, browser)  # fmt: skip
        png = httpx.get(
            f"{live_api}/api/v1/registrations/{other['id']}/ticket.png", headers=owner["headers"]
        )
        assert png.status_code == 200
        decoded = browser.driver.execute_async_script(
            DECODE, base64.b64encode(png.content).decode()
        )
        assert decoded == ticket_code(live_api, owner, other["id"])
        browser.driver.execute_script(
            "window.dash_clientside.set_props('door-scan', {data: {code: arguments[0], "
            "nonce: crypto.randomUUID()}})",
            decoded,
        )
        answer(browser, "ok", "Checked in")
        wait_count(browser, "2 / 8")
        # Another steward's check-in reaches the counter with the next refresh, without a scan.
        elsewhere_in = httpx.post(
            f"{live_api}/api/v1/registrations/{scenario.registrations[2]['id']}/check-in",
            headers=owner["headers"],
        )
        assert elsewhere_in.status_code == 200, elsewhere_in.text
        wait_count(browser, "3 / 8")
        csp = httpx.get(f"{dash_base}/").headers["Content-Security-Policy"]
        assert "unsafe-eval" not in csp and "script-src 'self'" in csp
        violations = [
            entry for entry in browser.get_logs() or []
            if "Content Security Policy" in entry.get("message", "")
        ]  # fmt: skip
        assert not violations, violations
    finally:
        browser.driver.set_window_size(1440, 1000)


@pytest.mark.browser
def test_an_analyst_has_no_door(browser, dash_base, scenario) -> None:
    event_id = scenario.live_event["id"]
    sign_in(browser, dash_base, scenario.analyst, path=f"/events/{event_id}")
    assert wait_text(browser, "#ev-title") == scenario.live_event["title"]
    wait_until(lambda: browser.find_element("#role-badge").text, "no role badge", 10, browser)
    assert not now_found(browser, By.CSS_SELECTOR, "#ev-door-link")
    assert "Door check-in" not in browser.find_element("#ev-header").text

    browser.driver.get(f"{dash_base}/events/{event_id}/door")
    wait_text(browser, "#not-found")
    assert not now_found(browser, By.CSS_SELECTOR, "#door-code")
    assert not now_found(browser, By.CSS_SELECTOR, "#door-count")
