"""Founding an organization in headless Chromium against the real platform, the way a first-time
organizer does it: signed in with no organization, they request one (a refused address name is
marked at its input and nothing is requested), a platform administrator approves it on the review
page, and the requester founds it and lands on its overview, ready for its first event. Checked
through the API at each step. Without a browser: the form's values and the refusals' places."""

from __future__ import annotations

import uuid

import pytest
from selenium.webdriver.common.by import By

from dashboards import console_orgs
from dashboards.client import ApiError
from tests.dashboards.conftest import api_get, now_found, sign_in
from tests.dashboards.test_browser import wait_text, wait_until
from tests.dashboards.test_console_events import click, fill


def requests_of(live_api: str, user: dict) -> list[dict]:
    return api_get(live_api, user, "/organization-requests")["items"]


@pytest.mark.browser
def test_a_first_time_organizer_founds_an_organization_for_a_first_event(
    browser, dash_base, live_api, api, admin
) -> None:
    newcomer = api.register("newcomer")
    suffix = uuid.uuid4().hex[:6]
    name = f"Клуб «Книжный» {suffix}"
    sign_in(browser, dash_base, newcomer)

    # No organization yet: the page says so and offers to found one.
    click(browser, "#found-org")
    assert "No requests yet" in wait_text(browser, "#co-none")
    assert not now_found(browser, By.CSS_SELECTOR, "#co-review-link")  # not an admin

    # The address name is suggested from the name; a bad one typed is refused at its input.
    fill(browser, "#co-name", name)
    wait_until(
        lambda: (
            browser.find_element("#co-slug").get_attribute("placeholder")
            == f"klub-knizhnyi-{suffix}"
        ),
        "no address name suggested",
        20,
        browser,
    )
    fill(browser, "#co-slug", "X!")
    click(browser, "#co-submit")
    assert "lower-case" in wait_text(browser, "#co-err-slug", unlike="")
    assert requests_of(live_api, newcomer) == []

    # Left empty, the suggestion is sent.
    fill(browser, "#co-slug", "")
    fill(browser, "#co-description", "Readings every Thursday")
    click(browser, "#co-submit")
    assert "Request sent" in wait_text(browser, "#co-done")
    [request] = requests_of(live_api, newcomer)
    assert (request["name"], request["slug"], request["status"]) == (
        name,
        f"klub-knizhnyi-{suffix}",
        "pending",
    )
    assert request["description"] == "Readings every Thursday"
    assert "pending" in wait_text(browser, "#co-requests")

    # One pending request at a time: the API's reason, nothing new.
    fill(browser, "#co-name", "Another one")
    click(browser, "#co-submit")
    assert "pending request" in wait_text(browser, "#co-alert", unlike="")
    assert len(requests_of(live_api, newcomer)) == 1

    # The review page is the administrators' only.
    browser.driver.get(f"{dash_base}{console_orgs.REVIEW_PATH}")
    assert "for the platform's administrators" in wait_text(browser, "#page", unlike="Loading…")

    # An administrator approves it with a comment.
    sign_in(browser, dash_base, admin, path=console_orgs.REVIEW_PATH)
    fill(browser, f"input[id*='{request['id']}'][id*='co-comment']", "Welcome aboard")
    click(browser, f"button[id*='{request['id']}'][id*='co-approve']")
    assert "Answer saved" in wait_text(browser, "#co-done")
    [reviewed] = requests_of(live_api, newcomer)
    assert (reviewed["status"], reviewed["review_comment"]) == ("approved", "Welcome aboard")
    assert not now_found(browser, By.CSS_SELECTOR, f"tr[id*='{request['id']}'][id*='co-pending']")

    # The requester founds it and lands on its overview, where the first event starts.
    sign_in(browser, dash_base, newcomer, path=console_orgs.NEW_PATH)
    assert "Welcome aboard" in wait_text(browser, "#co-requests")
    click(browser, f"button[id*='{request['id']}'][id*='co-found']")
    wait_until(
        lambda: (
            "?org=" in browser.driver.current_url
            and browser.driver.find_elements(By.CSS_SELECTOR, "#ov-new-event")
        ),
        "the new organization's overview did not open",
        30,
        browser,
    )
    [org] = api_get(live_api, newcomer, "/organizations")["items"]
    assert (org["slug"], org["role"]) == (f"klub-knizhnyi-{suffix}", "owner")
    assert browser.driver.current_url.endswith(f"/?org={org['id']}")
    click(browser, "#ov-new-event")
    wait_until(
        lambda: browser.driver.find_elements(By.CSS_SELECTOR, "#ce-save"),
        "the new event form did not open",
        20,
        browser,
    )

    # Founded: the request now opens the organization instead.
    browser.driver.get(f"{dash_base}{console_orgs.NEW_PATH}")
    assert "founded" in wait_text(browser, "#co-requests")


def test_the_form_becomes_the_apis_request() -> None:
    assert console_orgs.suggested_slug("Клуб «Книжный» & Co") == "klub-knizhnyi-co"
    assert console_orgs.suggested_slug("Open Air 2027!") == "open-air-2027"
    assert console_orgs.suggested_slug("!!") == ""  # nothing usable: the API will say so
    assert console_orgs.suggested_slug("x" * 100) == "x" * 64
    assert console_orgs.request_body(" Jazz Nights ", "", "  ") == {
        "name": "Jazz Nights",
        "slug": "jazz-nights",
    }
    assert console_orgs.request_body("Jazz", "my-jazz", "Live music") == {
        "name": "Jazz",
        "slug": "my-jazz",
        "description": "Live music",
    }


def test_refusals_land_at_their_inputs() -> None:
    invalid = ApiError(
        422,
        "validation_error",
        "Request validation failed",
        [
            {"loc": ["body", "slug"], "msg": "Value error, invalid_slug", "type": "value_error"},
            {"loc": ["body", "name"], "msg": "String should have at least 2 characters"},
        ],
    )
    assert console_orgs.request_errors(invalid) == {
        "slug": console_orgs.SLUG_HINT,
        "name": "String should have at least 2 characters",
    }
    pending = ApiError(409, "request_pending", "You already have a pending request")
    assert console_orgs.request_errors(pending) == {}  # no input caused it: an alert
    taken = ApiError(409, "organization_exists", "An organization with this slug exists")
    assert console_orgs.request_errors(taken) == {"slug": "An organization with this slug exists"}
