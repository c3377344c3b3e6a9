"""Events and tickets in headless Chromium against the real platform: an owner creates an event
through the form (a refused one is created neither half nor whole, its reason at the input that
caused it), edits and publishes it, adds a free and a paid ticket type and edits one; a price
change after a sale shows the API's reason; cancelling asks first and says what happens to paid
registrations; an analyst reads the same page without a control.

Shares the module's Chromium and dashboards app (conftest's ``browser`` and ``dash_base``); every
date is relative to the ``now`` captured by the fixture."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from dashboards import format as fmt
from tests.dashboards.conftest import api_get, now_found, sign_in
from tests.dashboards.test_browser import wait_text, wait_until
from tests.factories import Organizer, image_bytes, registered, reserved
from tests.media.images import pdf_bytes

pytestmark = pytest.mark.browser

BERLIN = ZoneInfo("Europe/Berlin")


@dataclass
class Console:
    organizer: Organizer
    analyst: dict
    now: datetime

    @property
    def owner(self) -> dict:
        return self.organizer.owner

    @property
    def org_id(self) -> str:
        return self.organizer.org["id"]


@pytest.fixture(scope="module")
def console(client, api, admin) -> Console:
    """An organization of its own (the owner's only one: chosen at sign-in) with an analyst."""
    organizer = Organizer(client, api, admin)
    return Console(organizer, organizer.member("analyst"), datetime.now(UTC).replace(microsecond=0))


def fill(duo, selector: str, text: str) -> None:
    """Replace an input's text the way a user does (React sees every key), once it can be typed
    in (a form still opening is not yet)."""

    def typed() -> bool:
        found = now_found(duo, By.CSS_SELECTOR, selector)
        if not found or not found[0].is_displayed() or not found[0].is_enabled():
            return False
        try:
            found[0].send_keys(Keys.CONTROL, "a")
            found[0].send_keys(Keys.DELETE)
            if text:
                found[0].send_keys(text)
        except ElementNotInteractableException:
            return False
        return True

    wait_until(typed, f"{selector} never took text", 20, duo)


def click(duo, selector: str) -> None:
    refused: list[str] = []

    def clicked() -> bool:
        found = now_found(duo, By.CSS_SELECTOR, selector)
        if not found or not found[0].is_displayed() or not found[0].is_enabled():
            refused.append(f"found {len(found)}, not displayed or disabled")
            return False
        duo.driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", found[0]
        )
        try:
            found[0].click()
        except (ElementClickInterceptedException, ElementNotInteractableException) as exc:
            refused.append(" ".join(exc.msg.splitlines()[:2]))
            return False  # still animating in, or under a closing modal's backdrop
        return True

    try:
        wait_until(clicked, f"{selector} never clickable", 20, duo)
    except pytest.fail.Exception as exc:
        raise AssertionError(f"{exc} ({refused[-1:]})") from None


def click_xpath(duo, xpath: str) -> None:
    def clicked() -> bool:
        found = duo.driver.find_elements(By.XPATH, xpath)
        if not found or not found[0].is_displayed():
            return False
        duo.driver.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", found[0]
        )
        try:
            found[0].click()
        except (ElementClickInterceptedException, ElementNotInteractableException):
            return False
        return True

    wait_until(clicked, f"{xpath} never clickable", 20, duo)


def gone_or_hidden(duo, selector: str) -> bool:
    """One look: the element found is the one read (a second lookup can miss a just-closed modal's
    element and raise)."""
    found = now_found(duo, By.CSS_SELECTOR, selector)
    return not found or not found[0].is_displayed()


def gone_or_empty(duo, selector: str) -> bool:
    found = now_found(duo, By.CSS_SELECTOR, selector)
    return not found or not found[0].text


def events_titled(live_api: str, user: dict, org_id: str, title: str) -> list[dict]:
    page = api_get(live_api, user, f"/organizations/{org_id}/events", limit=100)
    return [e for e in page["items"] if e["title"] == title]


def local(moment: datetime) -> str:
    return moment.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M")


def manage_path(event_id: str) -> str:
    return f"/events/{event_id}/manage"


def test_an_owner_creates_edits_and_publishes_an_event_with_ticket_types(
    browser, dash_base, live_api, console: Console, tmp_path
) -> None:
    organizer, owner = console.organizer, console.owner
    title = f"Console Meetup {uuid.uuid4().hex[:6]}"
    starts = (console.now.astimezone(BERLIN) + timedelta(days=10)).replace(
        hour=18, minute=0, second=0
    )
    ends = starts + timedelta(hours=3)
    sign_in(browser, dash_base, owner, path="/")
    click(browser, "#ov-new-event")
    fill(browser, "#ce-title", title)
    fill(browser, "#ce-timezone", "Europe/Berlin")
    fill(browser, "#ce-starts_at", local(starts))
    fill(browser, "#ce-ends_at", local(starts - timedelta(hours=1)))  # ends before it starts
    fill(browser, "#ce-online_url", "not a url")
    fill(browser, "#ce-capacity", "80")

    # The API's 422 (a field's location): at the URL input, and nothing created.
    click(browser, "#ce-save")
    assert "web address" in wait_text(browser, "#ce-err-online_url", unlike="")
    assert "is-invalid" in browser.find_element("#ce-online_url").get_attribute("class")
    assert events_titled(live_api, owner, console.org_id, title) == []

    # The API's rule without a location (invalid_schedule): at the end input; still nothing.
    fill(browser, "#ce-online_url", "https://meet.example.org/console")
    click(browser, "#ce-save")
    assert "end after it starts" in wait_text(browser, "#ce-err-ends_at", unlike="")
    wait_until(lambda: gone_or_empty(browser, "#ce-err-online_url"), "URL error stayed", 10)
    assert events_titled(live_api, owner, console.org_id, title) == []

    fill(browser, "#ce-ends_at", local(ends))
    click(browser, "#ce-save")
    assert wait_text(browser, "#ce-flash").startswith("Event created as a draft")
    [created] = events_titled(live_api, owner, console.org_id, title)
    assert browser.driver.current_url.split("?")[0].endswith(manage_path(created["id"]))
    assert created["status"] == "draft" and created["timezone"] == "Europe/Berlin"
    assert fmt.parse_time(created["starts_at"]) == starts
    assert fmt.parse_time(created["ends_at"]) == ends
    assert created["online_url"] == "https://meet.example.org/console"
    assert created["capacity"] == 80 and created["hold_minutes"] == 15

    assert created["refund_days_before_start"] is None  # no refund policy unless set

    # Edit: only what changed is sent; the refund policy is set while still a draft.
    fill(browser, "#ce-title", title + " II")
    fill(browser, "#ce-capacity", "90")
    fill(browser, "#ce-refund_days_before_start", "7")
    fill(browser, "#ce-refund_fee_percent", "10")
    click(browser, "#ce-save")
    wait_until(
        lambda: api_get(live_api, owner, f"/events/{created['id']}")["capacity"] == 90,
        "the edit never reached the API",
        20,
        browser,
    )
    title += " II"
    edited = api_get(live_api, owner, f"/events/{created['id']}")
    assert edited["title"] == title and edited["starts_at"] == created["starts_at"]
    assert (edited["refund_days_before_start"], edited["refund_fee_percent"]) == (7, 10)
    assert edited["refund_fee_amount"] is None
    wait_until(lambda: wait_text(browser, "#ce-heading") == title, "not reloaded", 20, browser)

    # Publishing without a ticket type: the API's reason, the event still a draft.
    click(browser, 'button[id*=\'"action":"publish"\']')
    assert "ticket type" in wait_text(browser, "#ce-action-alert", unlike="")
    assert api_get(live_api, owner, f"/events/{created['id']}")["status"] == "draft"

    # A free ticket type, then a paid one.
    click(browser, "#ce-tt-new")
    fill(browser, "#ce-tt-name", "Community")
    fill(browser, "#ce-tt-capacity", "50")
    click(browser, "#ce-tt-save")
    wait_until(lambda: "Community" in wait_text(browser, "#ce-tt-list"), "no free row", 20, browser)
    click(browser, "#ce-tt-new")
    fill(browser, "#ce-tt-name", "Supporter")
    fill(browser, "#ce-tt-price_amount", "49.50")
    fill(browser, "#ce-tt-capacity", "10")
    fill(browser, "#ce-tt-deposit_percent", "20")
    click(browser, "#ce-tt-save")
    wait_until(lambda: "Supporter" in wait_text(browser, "#ce-tt-list"), "no paid row", 20, browser)
    table = wait_text(browser, "#ce-tt-list")
    assert "free" in table and "€49.50" in table and "20%" in table
    types = {
        t["name"]: t
        for t in api_get(live_api, owner, f"/events/{created['id']}/ticket-types")["items"]
    }
    assert types["Community"]["price_amount"] == 0 and types["Community"]["capacity"] == 50
    assert types["Supporter"]["price_amount"] == 4950 and types["Supporter"]["currency"] == "EUR"
    assert types["Supporter"]["deposit_percent"] == 20

    # Edit one inline: its values fill the form; only the capacity changes.
    click_xpath(browser, "//tr[td[1][normalize-space()='Community']]//button")
    wait_until(
        lambda: browser.find_element("#ce-tt-name").get_attribute("value") == "Community",
        "the edit form was not filled",
        10,
        browser,
    )
    fill(browser, "#ce-tt-capacity", "60")
    click(browser, "#ce-tt-save")
    wait_until(
        lambda: (
            organizer.ticket_type_now(created["id"], types["Community"]["id"])["capacity"] == 60
        ),
        "the ticket type's edit never reached the API",
        20,
        browser,
    )
    assert organizer.ticket_type_now(created["id"], types["Supporter"]["id"])["capacity"] == 10
    wait_until(lambda: "60" in wait_text(browser, "#ce-tt-list"), "not reloaded", 20, browser)

    # Publish; the public link and the snippet name the event and an active ticket type.
    click(browser, 'button[id*=\'"action":"publish"\']')
    wait_until(
        lambda: wait_text(browser, "#ce-status") == "published", "not published", 20, browser
    )
    assert api_get(live_api, owner, f"/events/{created['id']}")["status"] == "published"
    assert wait_text(browser, "#ce-public-url").endswith(f"/api/v1/events/{created['id']}")
    snippet = wait_text(browser, "#ce-snippet")
    assert f"/events/{created['id']}/registrations" in snippet
    assert types["Community"]["id"] in snippet or types["Supporter"]["id"] in snippet
    # Published: what participants relied on is locked, the rest stays editable.
    assert not browser.find_element("#ce-starts_at").is_enabled()
    assert browser.find_element("#ce-title").is_enabled()

    # A cover: the chosen image previewed, then stored through the media API and shown.
    picture = tmp_path / "poster.png"
    picture.write_bytes(image_bytes("PNG", (320, 180)))
    browser.driver.find_element(By.CSS_SELECTOR, "#ce-cover-upload input[type=file]").send_keys(
        str(picture)
    )
    wait_until(
        lambda: (browser.find_element("#ce-cover-preview").get_attribute("src") or "").startswith(
            "data:image/png"
        ),
        "no preview of the chosen image",
        10,
        browser,
    )
    click(browser, "#ce-cover-save")

    def cover_stored() -> bool:
        refused = browser.driver.find_elements(By.CSS_SELECTOR, "#ce-cover-alert")
        assert not (refused and refused[0].text), refused[0].text
        return bool(api_get(live_api, owner, f"/events/{created['id']}")["cover_media_id"])

    wait_until(
        cover_stored,
        "the cover never reached the API",
        20,
        browser,
    )
    current = wait_until(
        lambda: browser.driver.find_elements(By.CSS_SELECTOR, "img#ce-cover-current"),
        "the stored cover is not shown",
        20,
        browser,
    )[0]
    assert current.get_attribute("src").startswith("data:image/webp")


def test_a_price_change_after_a_sale_and_cancelling(
    browser, dash_base, live_api, console: Console, client, api
) -> None:
    organizer, owner = console.organizer, console.owner
    event, paid = organizer.published_event(
        capacity=5, price_amount=2500, start=console.now + timedelta(days=12)
    )
    registered(client, event["id"], api.register("buyer"), ticket_type_id=paid["id"])
    reserved(client, event["id"], api.register("holder"), paid["id"], quantity=2)
    sign_in(browser, dash_base, owner, path=manage_path(event["id"]))
    # Registered, held and available apart: 1 + 2 of 5 taken.
    row = wait_until(
        lambda: [
            td.text
            for td in browser.driver.find_elements(
                By.XPATH, "//tr[td[1][normalize-space()='Standard']]/td"
            )
        ],
        "no Standard row",
        20,
        browser,
    )
    assert row[3:6] == ["1", "2", "2"], row
    click_xpath(browser, "//tr[td[1][normalize-space()='Standard']]//button")
    wait_until(
        lambda: browser.find_element("#ce-tt-price_amount").get_attribute("value") == "25.00",
        "the edit form was not filled",
        10,
        browser,
    )
    fill(browser, "#ce-tt-price_amount", "30.00")
    click(browser, "#ce-tt-save")
    reason = wait_text(browser, "#ce-tt-err-price_amount", unlike="")
    assert "Prices cannot change once seats are taken" in reason
    assert "Prices cannot change" in wait_text(browser, "#ce-tt-alert", unlike="")
    assert organizer.ticket_type_now(event["id"], paid["id"])["price_amount"] == 2500

    # Cancel asks first, and says what happens to paid registrations; keeping changes nothing.
    click(browser, 'button[id*=\'"action":"cancel"\']')
    assert "refunded automatically" in wait_text(browser, "#ce-cancel-text")
    click(browser, "#ce-cancel-keep")
    wait_until(
        lambda: gone_or_hidden(browser, "#ce-cancel-text"),
        "the confirmation stayed open",
        10,
        browser,
    )
    assert api_get(live_api, owner, f"/events/{event['id']}")["status"] == "published"
    click(browser, 'button[id*=\'"action":"cancel"\']')
    fill(browser, "#ce-cancel-reason", "Venue flooded")
    click(browser, "#ce-cancel-confirm")
    wait_until(
        lambda: wait_text(browser, "#ce-status") == "cancelled", "not cancelled", 20, browser
    )
    assert api_get(live_api, owner, f"/events/{event['id']}")["status"] == "cancelled"
    assert not now_found(browser, By.CSS_SELECTOR, "#ce-save")  # closed: read-only


def test_documents_an_owner_adds_are_downloaded_and_removed(
    browser, dash_base, live_api, console: Console, client, tmp_path
) -> None:
    """A PDF with a title becomes a document of the event (through the media and attachments
    API), downloads as the bytes uploaded under its name, and goes again; an analyst downloads
    without controls."""
    organizer, owner = console.organizer, console.owner
    event, _ = organizer.published_event(start=console.now + timedelta(days=21))
    sign_in(browser, dash_base, owner, path=manage_path(event["id"]))
    assert "No documents yet" in wait_text(browser, "#ce-att-list")

    data = pdf_bytes(20_000)
    chosen = tmp_path / "Programme 2027.pdf"
    chosen.write_bytes(data)
    browser.driver.find_element(By.CSS_SELECTOR, "#ce-att-upload input[type=file]").send_keys(
        str(chosen)
    )
    assert "Programme 2027.pdf" in wait_text(browser, "#ce-att-chosen")
    click(browser, "#ce-att-add")
    assert "Give the document a title" in wait_text(browser, "#ce-att-alert", unlike="")
    fill(browser, "#ce-att-title", "Programme")
    click(browser, "#ce-att-add")
    assert "Document added" in wait_text(browser, "#ce-flash")
    [listed] = api_get(live_api, owner, f"/events/{event['id']}/attachments")["items"]
    assert (listed["title"], listed["filename"], listed["size_bytes"]) == (
        "Programme",
        "Programme 2027.pdf",
        20_000,
    )
    assert "20.0 KB" in wait_text(browser, "#ce-att-list")

    click(browser, f"button[id*='{listed['id']}'][id*='ce-att-download']")
    downloaded = Path(browser.download_path) / "Programme 2027.pdf"
    wait_until(
        lambda: downloaded.exists() and downloaded.stat().st_size == len(data),
        "the document was not downloaded",
        20,
        browser,
    )
    assert downloaded.read_bytes() == data

    # An analyst downloads too, and has nothing to add or remove with.
    sign_in(browser, dash_base, console.analyst, path=manage_path(event["id"]))
    assert "Programme" in wait_text(browser, "#ce-att-list")
    for selector in ("#ce-att-add", "#ce-att-upload", "button[id*='ce-att-remove']"):
        assert not now_found(browser, By.CSS_SELECTOR, selector), selector

    sign_in(browser, dash_base, owner, path=manage_path(event["id"]))
    click(browser, f"button[id*='{listed['id']}'][id*='ce-att-remove']")
    assert "Document removed" in wait_text(browser, "#ce-flash")
    assert api_get(live_api, owner, f"/events/{event['id']}/attachments")["items"] == []


def test_an_analyst_sees_no_edit_controls(browser, dash_base, console: Console) -> None:
    event, _ = console.organizer.published_event(start=console.now + timedelta(days=14))
    sign_in(browser, dash_base, console.analyst, path=manage_path(event["id"]))
    wait_text(browser, "#ce-readonly")
    assert wait_text(browser, "#ce-heading") == event["title"]
    assert "Standard" in wait_text(browser, "#ce-tt-list")
    for selector in ("#ce-save", "#ce-tt-new", "#ce-actions", "#ce-title", "#ce-tt-save"):
        assert not now_found(browser, By.CSS_SELECTOR, selector), selector
    assert not now_found(browser, By.XPATH, "//*[@id='ce-tt-list']//button")
    browser.driver.get(f"{dash_base}/events/new")
    assert "Owners and moderators create events" in wait_text(browser, "#page h2")
    browser.driver.get(f"{dash_base}/")
    wait_text(browser, "#ov-content", unlike="Loading…")
    assert not now_found(browser, By.CSS_SELECTOR, "#ov-new-event")


def test_a_member_of_another_organization_gets_not_found(
    browser, dash_base, console: Console
) -> None:
    stranger = console.organizer.another().owner
    event, _ = console.organizer.published_event(start=console.now + timedelta(days=15))
    sign_in(browser, dash_base, stranger, path=manage_path(event["id"]))
    assert "Event not found" in wait_text(browser, "#not-found")
    assert not now_found(browser, By.CSS_SELECTOR, "#ce-public")


# --- without a browser: how inputs become a body and refusals find their inputs -----------------


def test_refusals_land_at_their_inputs() -> None:
    from dashboards import console_events as ce
    from dashboards.client import ApiError

    located = ApiError(422, "validation_error", "Request validation failed", [
        {"loc": ["body", "online_url"], "msg": "String should match", "type": "string_pattern_mismatch"},
        {"loc": ["body", "capacity"], "msg": "Input should be greater than or equal to 0",
         "type": "greater_than_equal"},
    ])  # fmt: skip
    assert ce.field_errors(located, ce.EVENT_NAMES) == {
        "online_url": "Not a web address: http:// or https://, no spaces",
        "capacity": "Input should be greater than or equal to 0",
    }
    closes = ApiError(422, "invalid_schedule", "Registration must close after it opens")
    assert ce.field_errors(closes, ce.EVENT_NAMES) == {"registration_closes_at": closes.message}
    locked = ApiError(409, "field_locked", "Prices cannot change once seats are taken",
                      {"fields": ["price_amount", "deposit_percent"], "status": "published"})  # fmt: skip
    assert set(ce.field_errors(locked, ce.TICKET_NAMES)) == {"price_amount", "deposit_percent"}
    assert ce.field_errors(ApiError(409, "invalid_state", "Cannot move"), ce.EVENT_NAMES) == {}


def test_inputs_become_the_apis_values_and_only_changes_are_sent() -> None:
    from dashboards import console_events as ce

    start = datetime(2027, 3, 28, 1, 30, 41, tzinfo=UTC)  # a stored instant with seconds
    event = {"timezone": "Europe/Berlin", "starts_at": start.isoformat(), "title": "A",
             "description": None, "capacity": None}  # fmt: skip
    fields = tuple(f for f in ce.EVENT_FIELDS if f.name in event)
    values = [ce.to_input(f, event[f.name], "Europe/Berlin") for f in fields]
    assert "2027-03-28 03:30" in values  # after the spring change: UTC+2
    body, errors = ce.read_form(fields, values, "Europe/Berlin")
    assert errors == {} and ce.changes(fields, body, event) == {}  # shown to the minute: unchanged
    body["capacity"] = 40
    assert ce.changes(fields, body, event) == {"capacity": 40}
    price = next(f for f in ce.TICKET_FIELDS if f.name == "price_amount")
    assert ce.from_input(price, "49.5", None, "EUR") == 4950
    assert ce.from_input(price, "", None, "EUR") == 0  # free
    assert ce.from_input(price, "1200", None, "JPY") == 1200
    with pytest.raises(ValueError, match="decimals"):
        ce.from_input(price, "1.234", None, "EUR")
    _, errors = ce.read_form(
        fields, ["A", "", "Mars/Olympus", "2027-01-01 10:00", ""], "Mars/Olympus"
    )
    assert set(errors) == {"timezone", "starts_at"}  # no zone to read the time in
