"""The team and messages pages (dashboards/console_team.py, dashboards/console_messages.py): the
bodies they send (no browser), and in headless Chromium against the real platform: inviting a
member with a role (accepted through the API), changing a role, the last owner's refused
demotion in the API's words, removing a member, pending invitations revoked, a group with its
invite code, a member who joined with it and a person invited to it by e-mail (then revoked); a
message to one ticket type's attendees previewed in their languages, sent, delivered (the SMTP
stand-in receives it) and followed in the delivery log; an analyst without controls; an outsider
who sees nothing of the organization."""

from __future__ import annotations

import uuid

import httpx
import pytest
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from dashboards import console_messages as messages
from dashboards import console_team as team
from dashboards.client import ApiError
from domain.notification.delivery import Pending
from tests.dashboards.conftest import api_get, now_found, sign_in
from tests.dashboards.test_browser import seen, wait_text, wait_until
from tests.dashboards.test_console_events import click, fill
from tests.factories import Organizer, registered
from tests.notification.conftest import (  # noqa: F401 (fixtures)
    channels,
    log_rows,
    notify_settings,
    set_locale,
    smtp,
    telegram,
)
from tests.notification.test_handler import send

# --- no browser ------------------------------------------------------------------------------------


def test_the_audience_becomes_the_apis_filters() -> None:
    body = messages.message_body("E", " Doors ", "Open at 6\n", messages.AUDIENCE_ALL)
    assert body == {"event_id": "E", "subject": "Doors", "text": "Open at 6"}
    assert messages.message_body("E", "s", "t", messages.CHECKED_IN)["checked_in"] is True
    assert messages.message_body("E", "s", "t", messages.NOT_CHECKED_IN)["checked_in"] is False
    tt = messages.message_body("E", "s", "t", messages.TICKET_TYPE + "T1")
    assert tt["ticket_type_id"] == "T1" and "checked_in" not in tt
    assert messages.missing(messages.message_body("E", " ", None, None)) == (
        "Write the subject and the text."
    )
    assert messages.missing(body) is None
    options = messages.audience_options([{"id": "T1", "name": "VIP"}])
    assert [o["value"] for o in options] == ["all", "in", "out", "tt:T1"]
    assert options[-1]["label"] == "Ticket type: VIP"


def test_refusals_read_in_the_apis_words() -> None:
    refused = ApiError(422, "validation_error", "Invalid request")
    refused.details = [{"loc": ["body", "subject"], "msg": "String should have at most 200"}]
    assert messages.refusal_text(refused) == (
        "subject: String should have at most 200 (validation_error)"
    )
    last = ApiError(409, "last_owner", "The last owner cannot be demoted")
    assert team.refusal_text(last) == "The last owner cannot be demoted (last_owner)"
    assert messages.recipients_text(1) == "1 recipient"
    assert messages.states_text({"sent": 2, "failed": 1, "queued": 0}) == "2 sent · 1 failed"


def test_invitation_bodies_and_the_join_command() -> None:
    assert team.invite_body("  a@example.org ", "analyst") == {
        "email": "a@example.org",
        "role": "analyst",
    }
    assert team.invite_body("", "owner") is None
    assert team.invite_body("b@example.org", "king")["role"] == "moderator"
    snippet = team.join_snippet("http://api", "C0DE")
    assert "http://api/api/v1/group-invites/accept" in snippet and '{"code": "C0DE"}' in snippet
    assert team.invitee({"email": None, "telegram_username": "ann_bot"}) == "@ann_bot"
    assert team.person_invite_body(" ann@example.org ") == {"email": "ann@example.org"}
    assert team.person_invite_body("@ann_bot") == {"telegram_username": "@ann_bot"}
    assert team.person_invite_body("ann_bot") == {"telegram_username": "ann_bot"}
    assert team.person_invite_body("  ") is None


# --- the browser -----------------------------------------------------------------------------------


def by_id(duo, element_id: dict) -> list:
    """Elements of a pattern-matching id (Dash writes it as JSON with sorted keys)."""
    key = "{" + ",".join(f'"{k}":"{element_id[k]}"' for k in sorted(element_id)) + "}"
    return duo.driver.find_elements(By.XPATH, f"//*[@id='{key}']")


def press(duo, element_id: dict) -> None:
    """Click a pattern-matching element once it is there and nothing covers it."""

    def pressed() -> bool:
        found = by_id(duo, element_id)
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

    wait_until(pressed, f"{element_id} never clickable", 20, duo)


def text_of(duo, element_id: dict) -> str | None:
    found = by_id(duo, element_id)
    return seen(found[0].text) if found else None


def feedback(duo, text: str) -> None:
    def shown() -> bool:
        found = duo.driver.find_elements(By.CSS_SELECTOR, "#team-feedback")
        return bool(found) and text in seen(found[0].text)

    wait_until(shown, f"feedback never said {text!r}", 20, duo)


def choose_role(duo, user_id: str, was: str, role: str) -> None:
    def chosen() -> bool:
        found = by_id(duo, {"type": "team-role", "user": user_id, "was": was})
        if not found:
            return False
        Select(found[0]).select_by_value(role)
        return True

    wait_until(chosen, f"no role select for {user_id}", 20, duo)


def members(live_api: str, owner: dict, org_id: str) -> dict[str, str]:
    items = api_get(live_api, owner, f"/organizations/{org_id}/members", limit=100)["items"]
    return {m["user_id"]: m["role"] for m in items}


def pending(live_api: str, owner: dict, org_id: str) -> list[dict]:
    return api_get(live_api, owner, f"/organizations/{org_id}/invitations", limit=100)["items"]


@pytest.fixture(scope="module")
def organizer(client, api, admin) -> Organizer:
    return Organizer(client, api, admin)


@pytest.mark.browser
def test_an_owner_manages_the_team_and_groups(
    browser, dash_base, live_api, organizer, api, client
) -> None:
    owner, org_id = organizer.owner, organizer.org["id"]
    sign_in(browser, dash_base, owner, f"/team?org={org_id}")
    wait_text(browser, "#team-title")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#nav-team")

    # Invite with a role; the invitee accepts through the API with the token the page shows.
    newcomer = api.register("newcomer")
    fill(browser, "#team-invite-email", newcomer["email"])
    Select(browser.find_element("#team-invite-role")).select_by_value("analyst")
    click(browser, "#team-invite-submit")
    feedback(browser, "Invitation sent.")
    [invite] = [i for i in pending(live_api, owner, org_id) if i["email"] == newcomer["email"]]
    assert invite["role"] == "analyst"
    token = wait_text(browser, "#team-invite-token-value")
    wait_until(lambda: text_of(browser, {"type": "team-invite", "invite": invite["id"]}),
               "the invitation is not listed", 20, browser)  # fmt: skip
    accepted = httpx.post(f"{live_api}/api/v1/organization-invites/accept",
                          json={"token": token}, headers=newcomer["headers"])  # fmt: skip
    assert accepted.status_code == 200, accepted.text
    assert pending(live_api, owner, org_id) == []
    uid = newcomer["user"]["id"]
    browser.driver.get(f"{dash_base}/team?org={org_id}")
    wait_until(lambda: text_of(browser, {"type": "team-member", "user": uid}),
               "the new member is not listed", 20, browser)  # fmt: skip

    # A role changed; the last owner refused demotion, in the API's words.
    choose_role(browser, uid, "analyst", "moderator")
    feedback(browser, "Role changed to Moderator.")
    assert members(live_api, owner, org_id)[uid] == "moderator"
    choose_role(browser, owner["user"]["id"], "owner", "analyst")
    feedback(browser, "The last owner cannot be demoted (last_owner)")
    assert members(live_api, owner, org_id)[owner["user"]["id"]] == "owner"

    # Removed after the confirmation.
    press(browser, {"type": "team-remove", "user": uid})
    click(browser, "#team-remove-yes")
    feedback(browser, "Member removed.")
    assert uid not in members(live_api, owner, org_id)
    wait_until(lambda: not by_id(browser, {"type": "team-member", "user": uid}),
               "the removed member is still listed", 20, browser)  # fmt: skip

    # A pending invitation revoked.
    fill(browser, "#team-invite-email", f"later-{uuid.uuid4().hex[:6]}@example.org")
    click(browser, "#team-invite-submit")
    feedback(browser, "Invitation sent.")
    [later] = pending(live_api, owner, org_id)
    revoke = {"type": "team-revoke", "invite": later["id"]}
    press(browser, revoke)
    feedback(browser, "Invitation revoked.")
    assert pending(live_api, owner, org_id) == []

    # A group: created, its invite code, a member who joined with it, its private event.
    name = f"Core {uuid.uuid4().hex[:6]}"
    fill(browser, "#team-group-name", name)
    click(browser, "#team-group-create")
    feedback(browser, f"Group {name} created.")
    groups = api_get(live_api, owner, f"/organizations/{org_id}/groups", limit=100)["items"]
    [group] = [g for g in groups if g["name"] == name]
    private = organizer.event(title="Members only", visibility="private", group_id=group["id"])
    invite_button = {"type": "team-group-invite", "group": group["id"]}
    press(browser, invite_button)
    code = wait_text(browser, "#team-group-code-value")
    assert code in wait_text(browser, "#team-group-snippet")
    joiner = api.register("joiner")
    joined = httpx.post(f"{live_api}/api/v1/group-invites/accept", json={"code": code},
                        headers=joiner["headers"])  # fmt: skip
    assert joined.status_code == 200, joined.text
    browser.driver.get(f"{dash_base}/team?org={org_id}")
    wait_until(lambda: text_of(browser, {"type": "team-group-members", "group": group["id"]})
               == "joiner", "the group's member is not shown", 20, browser)  # fmt: skip
    assert (
        text_of(browser, {"type": "team-group-events", "group": group["id"]}) == (private["title"])
    )

    # One person invited to the group by e-mail (the message carries the token), listed with
    # its expiry, then revoked; an empty addressee is refused on the page.
    def invitations() -> list[dict]:
        path = f"/groups/{group['id']}/invitations"
        return api_get(live_api, owner, path, limit=100)["items"]

    guest = api.register("guest")
    invitee_input = {"type": "team-group-invitee", "group": group["id"]}
    person = {"type": "team-group-person", "group": group["id"]}
    press(browser, person)
    feedback(browser, "Type an e-mail address or a Telegram username.")
    wait_until(lambda: by_id(browser, invitee_input), "no addressee input", 20, browser)
    by_id(browser, invitee_input)[0].send_keys(guest["email"])
    press(browser, person)
    feedback(browser, f"Invitation to {guest['email']} sent.")
    [sent] = invitations()
    assert sent["email"] == guest["email"]
    listed = {"type": "team-group-invitation", "invite": sent["id"]}
    wait_until(lambda: guest["email"] in (text_of(browser, listed) or ""),
               "the group's invitation is not listed", 20, browser)  # fmt: skip
    press(browser, {"type": "team-group-revoke", "group": group["id"], "invite": sent["id"]})
    feedback(browser, "Invitation revoked.")
    assert invitations() == []
    wait_until(lambda: not by_id(browser, listed), "the revoked invitation is still listed",
               20, browser)  # fmt: skip


@pytest.fixture(scope="module")
def attended(organizer, api, client, owner_engine) -> dict:
    """A published event with two ticket types; two VIP attendees (one reads Russian) and one
    Standard."""
    event, standard = organizer.published_event(title="Team Meetup")
    vip = organizer.ticket_type(event["id"], name="VIP", capacity=10)
    people = {}
    for name, tt in (("Vera", vip), ("Victor", vip), ("Stan", standard)):
        user = api.register(name)
        registered(client, event["id"], user, ticket_type_id=tt["id"])
        people[name] = user
    set_locale(owner_engine, people["Vera"], "ru")
    return {"event": event, "vip": vip, "people": people}


@pytest.mark.browser
def test_an_owner_messages_a_ticket_types_attendees(
    browser,
    dash_base,
    live_api,
    organizer,
    attended,
    owner_engine,
    channels,  # noqa: F811
    smtp,  # noqa: F811
) -> None:
    owner, event = organizer.owner, attended["event"]
    sign_in(browser, dash_base, owner, f"/events/{event['id']}")
    link = wait_until(
        lambda: browser.driver.find_elements(By.CSS_SELECTOR, "#ev-messages-link"),
        "no Message attendees link", 30, browser,
    )  # fmt: skip
    assert seen(link[0].text) == "Message attendees"
    browser.driver.get(f"{dash_base}/events/{event['id']}/manage")
    assert wait_text(browser, "#ce-messages-link") == "Message attendees"
    click(browser, "#ce-messages-link")
    wait_text(browser, "#msg-log-empty")
    Select(browser.find_element("#msg-audience")).select_by_value(
        messages.TICKET_TYPE + attended["vip"]["id"]
    )
    fill(browser, "#msg-subject", "VIP lounge")
    fill(browser, "#msg-text", "The lounge opens at 17:00")
    click(browser, "#msg-preview")
    assert wait_text(browser, "#msg-count") == "Preview: 2 recipients"
    russian = wait_until(lambda: text_of(browser, {"type": "msg-preview-lang", "language": "ru"}),
                         "no Russian preview", 20, browser)  # fmt: skip
    assert "RU · 1 recipient" in russian and "о событии «Team Meetup»" in russian
    english = text_of(browser, {"type": "msg-preview-lang", "language": "en"})
    assert "The lounge opens at 17:00" in english and "about Team Meetup" in english
    assert log_rows(owner_engine, event_id=event["id"], template="organizer_message") == []

    click(browser, "#msg-send")
    assert wait_text(browser, "#msg-done") == "Sent to 2 recipients."
    [message] = api_get(live_api, owner, "/notifications/messages", event_id=event["id"])["items"]
    assert (message["subject"], message["recipients"]) == ("VIP lounge", 2)
    rows = log_rows(owner_engine, source_event_id=message["message_id"])
    vip_ids = {attended["people"][n]["user"]["id"] for n in ("Vera", "Victor")}
    assert {str(r["user_id"]) for r in rows} == vip_ids

    # Delivered as the dispatcher does; the log, refreshing, shows it.
    sessions = organizer.client.app.state.aq.sessionmaker
    pending_rows = [Pending(r["id"], r["tenant_id"], r["user_id"]) for r in rows]
    assert send(sessions, channels, pending_rows).sent == 2
    [mail] = smtp.to(attended["people"]["Victor"]["email"])
    assert mail["Subject"] == "VIP lounge"
    assert smtp.to(attended["people"]["Stan"]["email"]) == []
    row = {"type": "msg-row", "message": message["message_id"]}
    wait_until(lambda: (text_of(browser, row) or "").startswith("VIP lounge"), "no log row", 20,
               browser)  # fmt: skip

    def counted_sent() -> bool:
        found = browser.driver.find_elements(By.CSS_SELECTOR, "#msg-log-table td.msg-sent")
        return bool(found) and seen(found[0].text) == "2"  # read once: the log re-renders

    wait_until(counted_sent, "the log never counted 2 sent", 20, browser)
    press(browser, {"type": "msg-open", "message": message["message_id"]})

    def delivered() -> bool:
        found = browser.driver.find_elements(By.CSS_SELECTOR, "#msg-deliveries-table tbody")
        text = seen(found[0].text) if found else ""
        return "Vera" in text and "Victor" in text and text.count("sent") == 2

    wait_until(delivered, "the deliveries never showed both sent", 20, browser)


@pytest.mark.browser
def test_an_analyst_reads_without_controls(
    browser, dash_base, live_api, organizer, attended
) -> None:
    analyst = organizer.member("analyst")
    org_id, event = organizer.org["id"], attended["event"]
    sign_in(browser, dash_base, analyst, f"/team?org={org_id}")
    wait_text(browser, "#team-members-hidden")
    for control in ("#team-invite-email", "#team-group-create", "#team-members"):
        assert now_found(browser, By.CSS_SELECTOR, control) == []
    browser.driver.get(f"{dash_base}{messages.path(event['id'])}")
    wait_text(browser, "#msg-title")
    wait_until(lambda: browser.driver.find_elements(By.CSS_SELECTOR, "#msg-log > *"),
               "no delivery log", 20, browser)  # fmt: skip
    for control in ("#msg-subject", "#msg-send", "#msg-preview"):
        assert now_found(browser, By.CSS_SELECTOR, control) == []


@pytest.mark.browser
def test_an_outsider_sees_nothing(browser, dash_base, organizer, attended) -> None:
    other = organizer.another()
    sign_in(browser, dash_base, other.owner, messages.path(attended["event"]["id"]))
    wait_text(browser, "#not-found")
    assert now_found(browser, By.CSS_SELECTOR, "#msg-log") == []
    # /team of the first organization: the outsider's own team, none of the first's members.
    browser.driver.get(f"{dash_base}/team?org={organizer.org['id']}")
    title = wait_text(browser, "#team-title")
    assert title == f"Team of {other.org['name']}"
    members_text = wait_text(browser, "#team-members")
    assert organizer.owner["email"] not in members_text
