"""Invitations are delivered, end to end: POST /organizations/{id}/invite -> outbox -> relay ->
Kafka -> the notifications agent of a running worker -> the SMTP stand-in, in the invitee's
language, with the code that admits them and the expiry; the clear code rests nowhere (not in the
outbox, not in the log: the dispatcher draws it when sending). A redelivered record sends nothing
more; an invitation revoked while its message waits (quiet hours) is never sent. An address
without an account gets the e-mail in the inviter's language; a Telegram username of a linked
account gets a Telegram message."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from domain.notification import delivery
from streams.notification import notification_handler
from streams.processor import Deps
from streams.records import Record
from tests.factories import V1, Organizer
from tests.notification.conftest import link_telegram, log_rows, outbox_events, set_locale
from tests.streams.conftest import relays  # noqa: F401  (fixture)
from tests.worker.conftest import (  # noqa: F401  (fixtures)
    _empty_sandbox_queue,
    wait_for,
    worker_settings,
    workers,
)

pytestmark = pytest.mark.slow


def _invite(client, org: Organizer, email: str | None, role: str = "moderator", **to) -> dict:
    response = client.post(
        f"{V1}/organizations/{org.org['id']}/invite",
        json={"email": email, "role": role, **to} if email else {"role": role, **to},
        headers=org.owner["headers"],
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_invitation_reaches_the_invitee_with_its_code(
    client,
    api,
    admin,
    owner_engine,
    smtp,
    channels,
    sessions,
    worker_settings,  # noqa: F811
    relays,  # noqa: F811
    workers,  # noqa: F811
) -> None:
    org = Organizer(client, api, admin)
    invitee = api.register("invitee")
    set_locale(owner_engine, invitee, "ru")
    relays(worker_settings, "relay-invites")
    workers(worker_settings)

    invite = _invite(client, org, invitee["email"])
    token = invite["token"]
    subject = f"owner приглашает вас в {org.org['name']}"  # the owner's display name
    wait_for(
        lambda: [m for m in smtp.to(invitee["email"]) if m["Subject"] == subject],
        60,
        "the invitation e-mail",
    )
    [message] = [m for m in smtp.to(invitee["email"]) if m["Subject"] == subject]
    text_ = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert token in text_ and token in html
    expires = datetime.fromisoformat(invite["expires_at"]).astimezone(UTC)
    assert f"Приглашение действует до {expires:%Y-%m-%d %H:%M} (UTC)" in text_
    assert "роль: moderator" in text_

    # The clear code rests nowhere: the outbox carries the invite's id, the log a placeholder.
    [fact] = outbox_events(owner_engine, org.org["id"], "organization.member.invited")
    assert token not in json.dumps(fact["payload"])
    [row] = wait_for(  # marked sent just after the SMTP server took the message
        lambda: [
            r
            for r in log_rows(owner_engine, template="organization_invite")
            if r["status"] == "sent" and str(r["source_event_id"]) == invite["id"]
        ],
        30,
        "the invitation's log row marked sent",
    )
    assert str(row["source_event_id"]) == fact["payload"]["invite_id"]
    assert token not in row["body_text"] + row["body_html"] + row["subject"]
    assert "[[invite-token]]" in row["body_text"]

    # Redelivered (at least once): nothing more.
    deps = Deps(settings=worker_settings, sessions=sessions, providers=None, channels=channels)
    record = Record(
        topic="aqstream.organization.v1",
        partition=0,
        offset=0,
        key=None,
        value=json.dumps(fact["payload"]).encode(),
        headers={"event_id": str(fact["id"]), "event_type": fact["event_type"]},
    )
    asyncio.run(notification_handler(deps, record))
    assert len(smtp.to(invitee["email"])) == 2  # the welcome and the invitation
    assert len(log_rows(owner_engine, source_event_id=invite["id"])) == 1

    # The code from the message admits them.
    code = text_.split("код приглашения:\n", 1)[1].split()[0]
    accepted = client.post(
        f"{V1}/organization-invites/accept", json={"token": code}, headers=invitee["headers"]
    )
    assert accepted.status_code == 200, accepted.text


def test_a_revoked_invitation_is_not_sent(
    client,
    api,
    admin,
    owner_engine,
    smtp,
    channels,
    sessions,
    worker_settings,  # noqa: F811
    relays,  # noqa: F811
    workers,  # noqa: F811
) -> None:
    org = Organizer(client, api, admin)
    invitee = api.register("quiet-invitee")
    now = datetime.now(UTC)
    window = {
        "start": f"{now - timedelta(hours=1):%H:%M}",
        "end": f"{now + timedelta(hours=1):%H:%M}",
        "timezone": "UTC",
    }
    prefs = client.put(
        f"{V1}/notifications/preferences",
        json={"channel": None, "quiet_hours": window},
        headers=invitee["headers"],
    )
    assert prefs.status_code == 200, prefs.text
    relays(worker_settings, "relay-revoked")
    workers(worker_settings)

    invite = _invite(client, org, invitee["email"])
    wait_for(
        lambda: log_rows(
            owner_engine, template="organization_invite", source_event_id=invite["id"]
        ),
        60,
        "the invitation to be queued",
    )
    [row] = log_rows(owner_engine, template="organization_invite", source_event_id=invite["id"])
    assert row["status"] == "deferred"  # the invitee's quiet hours

    revoked = client.delete(
        f"{V1}/organizations/{org.org['id']}/invitations/{invite['id']}",
        headers=org.owner["headers"],
    )
    assert revoked.status_code == 204, revoked.text
    delivery.deliver_due_blocking(sessions, channels, now=now + timedelta(hours=2))
    [row] = log_rows(owner_engine, template="organization_invite", source_event_id=invite["id"])
    assert row["status"] == "failed" and row["last_error"].startswith("not sent: the invitation")
    assert [m["Subject"] for m in smtp.to(invitee["email"])] == [
        "Welcome to AqStream, quiet-invitee"
    ]


def test_invitations_to_an_address_without_an_account_and_by_telegram(
    client,
    api,
    admin,
    owner_engine,
    smtp,
    telegram,
    worker_settings,  # noqa: F811
    relays,  # noqa: F811
    workers,  # noqa: F811
) -> None:
    org = Organizer(client, api, admin)
    set_locale(owner_engine, org.owner, "ru")  # the inviter's language
    linked = api.register("linked")
    chat = link_telegram(owner_engine, linked, locale="en")
    username = f"Linked_{uuid.uuid4().hex[:8]}"
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET telegram_username = :u WHERE id = :id"),
            {"u": username, "id": linked["user"]["id"]},
        )
    relays(worker_settings, "relay-invites-2")
    workers(worker_settings)

    newcomer = f"newcomer-{uuid.uuid4().hex[:8]}@example.org"
    by_mail = _invite(client, org, newcomer, role="analyst")
    by_telegram = _invite(client, org, None, telegram_username=f"@{username}")

    subject = f"owner приглашает вас в {org.org['name']}"
    wait_for(lambda: smtp.to(newcomer), 60, "the e-mail to an address without an account")
    [mail] = smtp.to(newcomer)
    assert mail["Subject"] == subject
    body = mail.get_body(("plain",)).get_content()
    assert body.startswith("Здравствуйте!") and by_mail["token"] in body
    assert "войдите (или зарегистрируйтесь) с этим адресом почты" in body
    # The log row is marked sent just after the SMTP server took the message.
    [row] = wait_for(
        lambda: [
            r
            for r in log_rows(owner_engine, source_event_id=by_mail["id"])
            if r["status"] == "sent"
        ],
        30,
        "the e-mail's log row marked sent",
    )
    assert row["user_id"] is None

    [message] = wait_for(
        lambda: [m for m in telegram.to(chat) if "invites you" in m.get("text", "")],
        60,
        "the Telegram invitation",
    )
    assert message["method"] == "sendMessage"
    assert message["text"].startswith(
        f"Hello linked,\n\nowner invites you to join {org.org['name']}"
    )
    assert by_telegram["token"] in message["text"]
    assert "sign in with this Telegram account" in message["text"]
    assert by_telegram["token"] not in str(
        log_rows(owner_engine, source_event_id=by_telegram["id"])
    )

    # Signed up later with that address, the newcomer joins with the code from the e-mail.
    code = body.split("код приглашения:\n", 1)[1].split()[0]
    account = client.post(
        f"{V1}/auth/register",
        json={"email": newcomer, "password": "correct horse battery", "display_name": "New"},
    )
    assert account.status_code == 201, account.text
    headers = {"Authorization": f"Bearer {account.json()['access_token']}"}
    joined = client.post(f"{V1}/organization-invites/accept", json={"token": code}, headers=headers)
    assert joined.status_code == 200, joined.text


def test_a_group_invitation_reaches_one_person_who_joins_the_group_with_it(
    client,
    api,
    admin,
    owner_engine,
    smtp,
    worker_settings,  # noqa: F811
    relays,  # noqa: F811
    workers,  # noqa: F811
) -> None:
    """Issue P, item 2, for groups: an invitation to one person, by e-mail, through the pipeline;
    its code makes that account (and no other) a member, who then finds the group's private
    event; a revoked one admits nobody; the organization's own invitations list neither."""
    org = Organizer(client, api, admin)
    group, _member = org.group_with_member()
    private = org.event(publish=False, visibility="private", group_id=group["id"])
    org.ticket_type(private["id"], name="Members", capacity=5)
    org.publish(private["id"])
    invitee, stranger = api.register("group-invitee"), api.register("stranger")
    relays(worker_settings, "relay-group-invites")
    workers(worker_settings)

    def invite(email: str) -> dict:
        response = client.post(
            f"{V1}/groups/{group['id']}/invitations",
            json={"email": email},
            headers=org.owner["headers"],
        )
        assert response.status_code == 201, response.text
        return response.json()

    invitation = invite(invitee["email"])
    assert invitation["group_id"] == group["id"] and invitation["email"] == invitee["email"]
    subject = f"owner invites you to {group['name']}"
    [message] = wait_for(
        lambda: [m for m in smtp.to(invitee["email"]) if m["Subject"] == subject],
        60,
        "the group invitation e-mail",
    )
    text_ = message.get_body(("plain",)).get_content()
    assert f"the group “{group['name']}” of {org.org['name']}" in text_
    assert "POST /api/v1/group-invites/accept" in text_
    code = re.search(r"invitation code:\s+(\S+)", text_).group(1)
    assert code == invitation["token"]
    [fact] = outbox_events(owner_engine, group["id"], "group.member.invited")
    assert code not in json.dumps(fact["payload"])

    # Listed with the group until accepted; never with the organization's own invitations.
    def pending(path: str) -> list[str]:
        page = client.get(f"{V1}{path}", headers=org.owner["headers"])
        assert page.status_code == 200, page.text
        return [i["id"] for i in page.json()["items"]]

    assert pending(f"/groups/{group['id']}/invitations") == [invitation["id"]]
    assert invitation["id"] not in pending(f"/organizations/{org.org['id']}/invitations")
    organization_accept = client.post(
        f"{V1}/organization-invites/accept", json={"token": code}, headers=invitee["headers"]
    )
    assert organization_accept.status_code == 404  # not an invitation to the organization

    # Another account holding the code is refused; the invitee joins and finds the event.
    refused = client.post(
        f"{V1}/group-invites/accept", json={"token": code}, headers=stranger["headers"]
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "invite_mismatch"
    joined = client.post(
        f"{V1}/group-invites/accept", json={"token": code}, headers=invitee["headers"]
    )
    assert joined.status_code == 200, joined.text
    assert joined.json()["id"] == group["id"]
    mine = client.get(f"{V1}/users/me/groups", headers=invitee["headers"]).json()["items"]
    assert group["id"] in [g["id"] for g in mine]
    events = client.get(
        f"{V1}/events", params={"visibility": "private"}, headers=invitee["headers"]
    ).json()["items"]
    assert private["id"] in [e["id"] for e in events]
    assert pending(f"/groups/{group['id']}/invitations") == []
    again = client.post(
        f"{V1}/group-invites/accept", json={"token": code}, headers=invitee["headers"]
    )
    assert again.status_code == 409  # used

    # Revoked: its code admits nobody. Neither or both of code and token: refused.
    second = invite(stranger["email"])
    revoked = client.delete(
        f"{V1}/groups/{group['id']}/invitations/{second['id']}", headers=org.owner["headers"]
    )
    assert revoked.status_code == 204
    late = client.post(
        f"{V1}/group-invites/accept", json={"token": second["token"]}, headers=stranger["headers"]
    )
    assert late.status_code == 409 and late.json()["error"]["details"] == {"status": "expired"}
    both = client.post(
        f"{V1}/group-invites/accept",
        json={"token": second["token"], "code": "x" * 12},
        headers=stranger["headers"],
    )
    assert both.status_code == 422
