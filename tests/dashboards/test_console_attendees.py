"""Attendees in headless Chromium against the real platform: an owner pages through the
registrations, searches and filters them, downloads the view as CSV, refunds a paid registration
in part with a reason, checks one in by hand, resends a ticket, cancels one (and reads the API's
refusal of a resend after it), and removes someone from the waitlist; each result is read back
through the API. An analyst reads the list without names, e-mails or a control; a member of
another organization gets "Event not found". Then the page's pure functions, without a browser.

Shares the module's Chromium and dashboards app (conftest's ``browser`` and ``dash_base``)."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from dashboards import console_attendees as att
from dashboards.client import ApiError
from tests.dashboards.conftest import api_get, now_found, sign_in
from tests.dashboards.test_browser import wait_text, wait_until
from tests.dashboards.test_console_events import click, click_xpath, fill, gone_or_hidden
from tests.factories import (
    Organizer,
    cancel_registration,
    join_waitlist,
    outbox_rows,
    paying,
    registered,
    sandbox,
    settle_sandbox,
    sweep,
)

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Attendees:
    organizer: Organizer
    analyst: dict
    event: dict
    standard: dict
    supporter: dict
    people: dict  # name -> (user, registration)
    waiters: list  # (user, entry)

    @property
    def owner(self) -> dict:
        return self.organizer.owner


@pytest.fixture(scope="module")
def attendees(client, api, admin) -> Attendees:
    """An event with 11 free registrations and a paid one (two pages: 10 and 2, with a
    cancelled one: 3), a sold-out ticket type whose freed seat is offered to the first of three
    on its waitlist."""
    sandbox(client).deliver_all(lambda body, headers: 200)  # nothing of another module
    organizer = Organizer(client, api, admin)
    event = organizer.event(title="Attendee Day", timezone="Europe/Berlin")
    standard = organizer.ticket_type(event["id"], name="Standard", capacity=30)
    supporter = organizer.ticket_type(
        event["id"], name="Supporter", capacity=5, price_amount=4000, currency="EUR"
    )
    tiny = organizer.ticket_type(event["id"], name="Tiny", capacity=1)
    organizer.publish(event["id"])
    people = {}
    for name in ["zoe", *(f"guest{i}" for i in range(10))]:
        user = api.register(name)
        people[name] = (user, registered(client, event["id"], user, ticket_type_id=standard["id"]))
    payer = api.register("payer")
    paid = registered(client, event["id"], payer, ticket_type_id=supporter["id"])
    paying(client, paid["id"], payer)
    settle_sandbox(client)
    people["payer"] = (payer, paid)
    holder = api.register("holder")
    people["holder"] = (holder, registered(client, event["id"], holder, ticket_type_id=tiny["id"]))
    waiters = []
    for name in ("offered", "waiter1", "waiter2"):
        user = api.register(name)
        joined = join_waitlist(client, event["id"], user, tiny["id"])
        assert joined.status_code == 201, joined.text
        waiters.append((user, joined.json()))
    # The holder gives the seat back: the first in line is offered it, with a timer.
    assert cancel_registration(client, people["holder"][1]["id"], holder).status_code == 200
    del people["holder"]
    sweep(client)
    return Attendees(
        organizer, organizer.member("analyst"), event, standard, supporter, people, waiters
    )


def attendees_path(event_id: str) -> str:
    return f"/events/{event_id}/attendees"


def rows(duo) -> list[str]:
    """The table's rows' texts, read in one look."""
    return [r.text for r in duo.driver.find_elements(By.CSS_SELECTOR, "#att-rows tbody tr")]


def wait_rows(duo, check, what: str) -> list[str]:
    return wait_until(lambda: (lambda r: r if check(r) else None)(rows(duo)), what, 20, duo)


def choose(duo, selector: str, value: str) -> None:
    def chosen() -> bool:
        found = duo.driver.find_elements(By.CSS_SELECTOR, selector)
        if not found or not found[0].is_enabled():
            return False
        Select(found[0]).select_by_value(value)
        return True

    wait_until(chosen, f"{selector} never took {value!r}", 20, duo)


def open_details(duo, email: str) -> None:
    click_xpath(duo, f"//tr[td[normalize-space()='{email}']]//button")
    wait_until(
        lambda: email in (duo.find_element("#att-detail").text or ""),
        f"the details of {email} never opened",
        20,
        duo,
    )


def done(duo, words: str, selector: str = "#att-action-result .alert") -> str:
    """The action's answer once it says ``words`` (the previous action's answer may still be
    there when the click lands)."""

    def said() -> str | None:
        found = duo.driver.find_elements(By.CSS_SELECTOR, selector)
        return found[0].text if found and words in found[0].text else None

    return wait_until(said, f"{selector} never said {words!r}", 20, duo)


def search(duo, text: str) -> None:
    fill(duo, "#att-q", text)
    duo.find_element("#att-q").send_keys(Keys.ENTER)


@pytest.mark.browser
def test_an_owner_pages_searches_filters_downloads_and_refunds(
    browser, dash_base, live_api, attendees: Attendees
) -> None:
    owner, event = attendees.owner, attendees.event
    sign_in(browser, dash_base, owner, path=attendees_path(event["id"]))
    first = wait_rows(browser, lambda r: len(r) == 10, "the first page never showed 10 rows")
    assert attendees.people["zoe"][0]["email"] in first[0]
    click(browser, "#att-next")
    second = wait_rows(browser, lambda r: len(r) == 3, "the second page never showed 3 rows")
    assert any("cancelled" in r for r in second)  # the holder's, given back
    assert wait_text(browser, "#att-page-info") == "Page 2"
    assert any(attendees.people["payer"][0]["email"] in r for r in second)
    assert not browser.find_element("#att-next").is_enabled()
    click(browser, "#att-prev")
    wait_rows(browser, lambda r: len(r) == 10, "back on the first page")

    search(browser, "ZOE")
    found = wait_rows(browser, lambda r: len(r) == 1, "the search never narrowed to one row")
    assert attendees.people["zoe"][0]["email"] in found[0]
    search(browser, "")
    wait_rows(browser, lambda r: len(r) == 10, "the search never cleared")

    choose(browser, "#att-payment", "paid")
    payer, paid = attendees.people["payer"]
    found = wait_rows(browser, lambda r: len(r) == 1 and payer["email"] in r[0], "paid filter")
    assert "Supporter" in found[0]

    # The CSV of this view: the paid registration only, with its personal columns.
    downloads = Path(browser.download_path)
    before = set(downloads.glob("*.csv"))
    click(browser, "#att-csv")
    files = wait_until(
        lambda: [p for p in set(downloads.glob("*.csv")) - before if p.stat().st_size],
        "no CSV was downloaded",
        20,
        browser,
    )
    time.sleep(0.3)  # the browser renames a finished download; its content is whole then
    table = list(csv.DictReader(io.StringIO(files[0].read_text())))
    assert [r["email"] for r in table] == [payer["email"]]
    assert table[0]["payment"] == "paid"
    assert table[0]["amount_paid"] == "4000"
    assert table[0]["ticket_code"]

    # A partial refund with its reason, without leaving the browser.
    open_details(browser, payer["email"])
    fill(browser, "#att-refund-amount", "15.00")
    fill(browser, "#att-refund-reason", "Parking closed")
    click(browser, "#att-refund-go")
    done(browser, "Refund of")
    [payment] = api_get(live_api, owner, f"/registrations/{paid['id']}/payments")["items"]
    [refund] = payment["refunds"]
    assert (refund["amount"], refund["note"], refund["reason"]) == (
        1500,
        "Parking closed",
        "organizer",
    )
    assert payment["refundable"] == 2500
    wait_until(
        lambda: "Parking closed" in browser.find_element("#att-payments").text,
        "the refund never showed in the payments",
        20,
        browser,
    )
    # Asking for more than is left is the API's refusal, shown as such.
    fill(browser, "#att-refund-amount", "30.00")
    fill(browser, "#att-refund-reason", "Too much")
    click(browser, "#att-refund-go")
    done(browser, "refund_exceeds_paid")


@pytest.mark.browser
def test_an_owner_checks_in_resends_and_cancels(
    browser, dash_base, live_api, attendees: Attendees, owner_engine
) -> None:
    owner, event = attendees.owner, attendees.event
    sign_in(browser, dash_base, owner, path=attendees_path(event["id"]))
    wait_rows(browser, lambda r: len(r) == 10, "no rows")
    guest, reg = attendees.people["guest3"]
    search(browser, guest["email"])
    wait_rows(browser, lambda r: len(r) == 1 and guest["email"] in r[0], "guest3 not found")
    open_details(browser, guest["email"])
    click(browser, "#att-checkin")
    done(browser, "Checked in")
    assert api_get(live_api, owner, f"/registrations/{reg['id']}")["checked_in_at"]
    choose(browser, "#att-checked", "true")
    wait_rows(browser, lambda r: len(r) == 1 and guest["email"] in r[0], "checked-in filter")

    click(browser, "#att-resend")
    done(browser, "on its way")
    [fact] = outbox_rows(owner_engine, reg["id"], "registration.ticket_resent")
    assert fact["payload"]["requested_by"] == owner["user"]["id"]

    other, other_reg = attendees.people["guest5"]
    choose(browser, "#att-checked", att.ANY)
    search(browser, other["email"])
    wait_rows(browser, lambda r: len(r) == 1 and other["email"] in r[0], "guest5 not found")
    open_details(browser, other["email"])
    click(browser, "#att-cancel-open")
    assert "not refunded by cancelling" in wait_text(browser, "#att-cancel-text")
    fill(browser, "#att-cancel-reason", "Asked by phone")
    click(browser, "#att-cancel-confirm")
    done(browser, "Registration cancelled")
    wait_until(lambda: gone_or_hidden(browser, "#att-cancel-text"), "the modal stayed", 10, browser)
    cancelled = api_get(live_api, owner, f"/registrations/{other_reg['id']}")
    assert cancelled["status"] == "cancelled"
    # The API refuses to resend a cancelled registration's ticket: its words are shown.
    click(browser, "#att-resend")
    done(browser, "not_confirmed")


@pytest.mark.browser
def test_an_owner_removes_someone_from_the_waitlist(
    browser, dash_base, live_api, attendees: Attendees
) -> None:
    owner, event = attendees.owner, attendees.event
    (_, offered), (_, first), (_, second) = attendees.waiters
    sign_in(browser, dash_base, owner, path=f"/events/{event['id']}")
    click(browser, "#ev-attendees-link")  # from the event dashboard's header
    offer = wait_text(browser, f"tr[data-entry='{offered['id']}']", unlike="")
    assert "offered" in offer and " s left" in offer, offer
    assert not now_found(
        browser, By.CSS_SELECTOR, f"tr[data-entry='{offered['id']}'] button"
    )  # an offer in flight is not removed: its hold runs out or is cancelled
    assert "waiting" in wait_text(browser, f"tr[data-entry='{first['id']}']", unlike="")
    click(browser, f"tr[data-entry='{first['id']}'] button")
    wait_text(browser, "#att-wl-confirm-text")
    click(browser, "#att-wl-confirm")
    done(browser, "Removed", "#att-wl-done")
    entries = {
        e["id"]: e for e in api_get(live_api, owner, f"/events/{event['id']}/waitlist")["items"]
    }
    assert entries[first["id"]]["status"] == "cancelled"
    assert (entries[second["id"]]["status"], entries[second["id"]]["position"]) == ("waiting", 1)
    assert entries[offered["id"]]["offer_expires_at"]
    wait_until(
        lambda: not now_found(browser, By.CSS_SELECTOR, f"tr[data-entry='{first['id']}']"),
        "the removed entry stayed in the table",
        20,
        browser,
    )


@pytest.mark.browser
def test_an_analyst_reads_without_personal_data_or_controls(
    browser, dash_base, attendees: Attendees
) -> None:
    event = attendees.event
    sign_in(browser, dash_base, attendees.analyst, path=attendees_path(event["id"]))
    first = wait_rows(browser, lambda r: len(r) == 10, "the analyst saw no rows")
    page = browser.find_element("#page").text
    for user, _ in attendees.people.values():
        assert user["email"] not in page
    assert "Standard" in first[0]
    assert not browser.find_element("#att-q").is_enabled()
    choose(browser, "#att-payment", "paid")
    wait_rows(browser, lambda r: len(r) == 1 and "Supporter" in r[0], "paid filter")
    click(browser, "#att-rows tbody tr button")
    assert "Payments and refunds" in wait_text(browser, "#att-detail", unlike="")
    for selector in ("#att-actions", "#att-checkin", "#att-refund-go", "#att-wl-modal"):
        assert not now_found(browser, By.CSS_SELECTOR, selector), selector
    wait_text(browser, "#att-wl-rows", unlike="")
    assert not now_found(browser, By.CSS_SELECTOR, "#att-wl-rows button")


@pytest.mark.browser
def test_a_member_of_another_organization_gets_not_found(
    browser, dash_base, attendees: Attendees
) -> None:
    stranger = attendees.organizer.another().owner
    sign_in(browser, dash_base, stranger, path=attendees_path(attendees.event["id"]))
    assert "Event not found" in wait_text(browser, "#not-found")
    assert not now_found(browser, By.CSS_SELECTOR, "#att-rows")


# --- without a browser ------------------------------------------------------------------------


def reg(**fields) -> dict:
    base = {
        "id": "r1",
        "ticket_type_id": "t1",
        "quantity": 1,
        "status": "confirmed",
        "currency": "EUR",
        "amount_total": 0,
        "amount_paid": 0,
        "checked_in_at": None,
        "created_at": "2027-02-01T10:00:00+00:00",
        "participant": {"user_id": "u1", "display_name": "Ada", "email": "ada@example.org"},
        "ticket_code": "CODE",
    }
    return base | fields


def test_filters_become_the_lists_query() -> None:
    assert att.query(None) == {}
    assert att.query(
        {
            "q": "  ada ",
            "status": att.ANY,
            "ticket_type_id": None,
            "payment": "paid",
            "checked_in": "false",
            "other": "x",
        }
    ) == {"q": "ada", "payment": "paid", "checked_in": "false"}


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, "Free"),
        ({"amount_total": 4000, "amount_paid": 4000}, "Paid"),
        ({"amount_total": 4000, "amount_paid": 1000}, "Deposit paid"),
        ({"amount_total": 4000, "status": "pending_payment"}, "Owing"),
        ({"amount_total": 4000, "status": "cancelled"}, "Unpaid"),
    ],
)
def test_payment_state(fields: dict, state: str) -> None:
    assert att.payment_state(reg(**fields)) == state


def test_personal_data_only_for_managers() -> None:
    names = {"t1": "Standard"}
    [mine] = att.table_rows([reg()], names, "Europe/Berlin", personal=True)
    assert (mine["name"], mine["email"], mine["ticket_type"]) == (
        "Ada",
        "ada@example.org",
        "Standard",
    )
    assert mine["registered"] == "1 Feb 2027, 11:00"  # Berlin in winter: UTC+1
    [theirs] = att.table_rows([reg()], names, "Europe/Berlin", personal=False)
    assert "name" not in theirs and "email" not in theirs

    text = att.csv_text([reg(amount_total=500, amount_paid=500)], names, personal=False)
    assert text.splitlines()[0] == (
        "registration_id,ticket_type,quantity,status,payment,amount_total,amount_paid,"
        "currency,checked_in_at,listed,created_at"
    )
    assert "ada" not in text.lower() and "CODE" not in text
    full = list(csv.DictReader(io.StringIO(att.csv_text([reg()], names, personal=True))))
    assert (full[0]["email"], full[0]["ticket_code"], full[0]["payment"]) == (
        "ada@example.org",
        "CODE",
        "free",
    )


def test_the_participants_choice_to_leave_the_list_shows() -> None:
    hidden = reg(listed=False)
    rows = csv.DictReader(io.StringIO(att.csv_text([reg(), hidden], {}, personal=False)))
    assert [row["listed"] for row in rows] == ["true", "false"]
    assert att.listed_text(hidden) == "hidden: the participant left it"
    assert att.listed_text(reg()).startswith("shown by name")


def test_a_participants_name_is_never_a_spreadsheet_formula() -> None:
    hostile = reg(participant={"user_id": "u", "display_name": "=HYPERLINK(1)", "email": "e@x"})
    [row] = csv.DictReader(io.StringIO(att.csv_text([hostile], {}, personal=True)))
    assert row["name"] == "'=HYPERLINK(1)"


@pytest.mark.parametrize(
    ("amount", "reason", "currency", "body", "problem"),
    [
        ("", "Late", "EUR", {"note": "Late"}, None),
        ("12,50", " Late ", "EUR", {"amount": 1250, "note": "Late"}, None),
        ("500", "Late", "JPY", {"amount": 500, "note": "Late"}, None),
        ("1.5", "Late", "JPY", {}, "At most 0 decimals in JPY."),
        ("12.345", "Late", "EUR", {}, "At most 2 decimals in EUR."),
        ("abc", "Late", "EUR", {}, "An amount, e.g. 12.50, or empty for a full refund."),
        ("0", "Late", "EUR", {}, "More than nothing, or empty for a full refund."),
        (
            "10",
            "  ",
            "EUR",
            {},
            "Say why the money goes back (the participant and the books see it).",
        ),
    ],
)
def test_refund_bodies(amount, reason, currency, body, problem) -> None:
    assert att.refund_body(amount, reason, currency) == (body, problem)


def test_offers_count_down_against_the_clock_given() -> None:
    expires = (NOW + timedelta(minutes=4, seconds=5)).isoformat()
    assert att.time_left(expires, NOW) == "4 min 05 s left"
    assert att.time_left(expires, NOW + timedelta(minutes=4)) == "5 s left"
    assert att.time_left(expires, NOW + timedelta(minutes=5)) == "expired, passing on"
    assert att.time_left(None, NOW) == ""


def test_refusals_keep_the_apis_words_and_code() -> None:
    exc = ApiError(
        409, "refund_exceeds_paid", "The refund exceeds what was paid", {"refundable": 2500}
    )
    assert att.refusal(exc) == (
        "Refused: The refund exceeds what was paid (refundable: 2500 in minor units) "
        "[refund_exceeds_paid]"
    )
    assert att.refusal(ApiError(409, "not_confirmed", "No ticket")) == (
        "Refused: No ticket [not_confirmed]"
    )


class FakeClient:
    """The API as the card's actions call it: what was sent, and the answers in turn."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.sent: list[tuple] = []

    def post(self, path: str, body=None, **kwargs):
        self.sent.append((path, body, kwargs.get("headers")))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_repeated_click_is_the_same_request() -> None:
    refunded = {"amount": 1500, "currency": "EUR", "status": "requested"}
    client = FakeClient(refunded, refunded, refunded, {"quantity": 2}, {"quantity": 2})
    values = {
        "payment_id": "p1",
        "amount": "15",
        "reason": "Late",
        "currency": "EUR",
        "nonce": "card-1",
    }
    assert att.act(client, "att-refund-go", "r1", values) == (True, "Refund of €15.00 requested.")
    att.act(client, "att-refund-go", "r1", values)
    att.act(client, "att-refund-go", "r1", {**values, "amount": "16"})
    keys = [headers["X-Idempotency-Key"] for _, _, headers in client.sent]
    assert keys[0] == keys[1] != keys[2]
    assert client.sent[0][:2] == ("/payments/p1/refund", {"amount": 1500, "note": "Late"})
    assert keys[0] != att.refund_key("card-2", "p1", {"amount": 1500, "note": "Late"})
    att.act(client, "att-checkin", "r1", values)
    att.act(client, "att-checkin", "r1", values)
    assert client.sent[3][1] == client.sent[4][1] == {"nonce": "card-1"}


def test_a_form_that_cannot_be_sent_calls_nothing() -> None:
    client = FakeClient()
    values = {"payment_id": "p1", "amount": "abc", "reason": "Late", "nonce": "n"}
    assert att.act(client, "att-refund-go", "r1", values) == (
        False,
        "An amount, e.g. 12.50, or empty for a full refund.",
    )
    assert att.act(client, "att-refund-go", "r1", {**values, "payment_id": ""})[0] is False
    assert client.sent == []
