"""E-mail verification (issue P, item 7): sign-up e-mails a link through the real pipeline
(the outbox -> the relay -> Kafka -> the notifications agent -> the SMTP stand-in); a paid ticket
is refused with 403 `email_not_verified` until the link is opened; a new address is confirmed
again by a link sent to it, and the old links stop working."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.identity import email_verification, password_reset
from domain.identity.email_verification import signing_key, token_for
from domain.identity.models import User
from tests.factories import V1, Organizer, assert_error, register
from tests.notification.conftest import outbox_events
from tests.worker.conftest import wait_for

PASSWORD = "correct horse battery"
LINK = re.compile(r"https://app\.example/verify\?token=([A-Za-z0-9_-]{75})")
SUBJECT = "Confirm your e-mail address for AqStream"


@pytest.fixture
def verify_settings(worker_settings):
    return worker_settings.model_copy(
        update={"email_verification_url": "https://app.example/verify?token={token}"}
    )


@pytest.fixture
def key(settings) -> bytes:
    return signing_key(settings.ticket_signing_key.get_secret_value())


def _link_token(smtp, email: str, count: int = 1) -> str:
    mails = wait_for(
        lambda: [m for m in smtp.to(email) if m["Subject"] == SUBJECT][count - 1 :],
        60,
        f"verification e-mail {count} to {email}",
    )
    text = mails[0].get_body(("plain",)).get_content()
    html = mails[0].get_body(("html",)).get_content()
    token = LINK.search(text).group(1)
    assert f'href="https://app.example/verify?token={token}"' in html and email in text
    return token


def _confirm(client, token: str):
    return client.post(f"{V1}/auth/email-verification/confirm", json={"token": token})


def test_a_paid_ticket_waits_for_the_address_the_e_mailed_link_confirms(
    client, api, admin, owner_engine, smtp, verify_settings, pipeline
) -> None:
    pipeline(verify_settings, "relay-email-verification")
    organizer = Organizer(client, api, admin)
    event, paid = organizer.published_event(capacity=5, price_amount=2500)
    free = organizer.ticket_type(event["id"], name="Free", capacity=5)
    buyer = api.register("buyer", verified=False)
    assert buyer["user"]["email_verified_at"] is None

    # Before the link: a paid ticket is refused with a stable code and nothing is written; a
    # free one is not.
    refused = register(client, event["id"], buyer, ticket_type_id=paid["id"])
    assert_error(refused, 403, "email_not_verified")
    assert organizer.sold(event["id"], paid["id"]) == 0
    token = _link_token(smtp, buyer["email"])
    [requested] = outbox_events(
        owner_engine, buyer["user"]["id"], "user.email_verification_requested"
    )
    assert token not in str(requested["payload"])  # the event carries no credential
    assert register(client, event["id"], buyer, ticket_type_id=free["id"]).status_code == 201

    # The link confirms the address (signed out: it may be opened on another device); again is
    # harmless and keeps the first time.
    assert _confirm(client, token).status_code == 204
    me = client.get(f"{V1}/users/me", headers=buyer["headers"]).json()
    assert me["email_verified_at"] is not None
    assert _confirm(client, token).status_code == 204
    again = client.get(f"{V1}/users/me", headers=buyer["headers"]).json()
    assert again["email_verified_at"] == me["email_verified_at"]
    assert len(outbox_events(owner_engine, buyer["user"]["id"], "user.email_verified")) == 1
    other_event, other_paid = organizer.published_event(capacity=5, price_amount=900)
    paid_ok = register(client, other_event["id"], buyer, ticket_type_id=other_paid["id"])
    assert paid_ok.status_code == 201, paid_ok.text
    assert paid_ok.json()["status"] == "pending_payment"
    # Asking again once confirmed: refused, nothing sent.
    asked = client.post(f"{V1}/users/me/email-verification", headers=buyer["headers"])
    assert_error(asked, 409, "email_already_verified")

    # A new address: unconfirmed again, a link goes to it, and the old address's link is dead.
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.org"
    moved = client.patch(
        f"{V1}/users/me",
        json={"email": new_email, "current_password": PASSWORD},
        headers=buyer["headers"],
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["email_verified_at"] is None
    third_event, third_paid = organizer.published_event(capacity=5, price_amount=900)
    blocked = register(client, third_event["id"], buyer, ticket_type_id=third_paid["id"])
    assert_error(blocked, 403, "email_not_verified")
    assert_error(_confirm(client, token), 422, "invalid_verification_token")
    new_token = _link_token(smtp, new_email)
    assert _confirm(client, new_token).status_code == 204
    assert (
        register(client, third_event["id"], buyer, ticket_type_id=third_paid["id"]).status_code
        == 201
    )
    # The messages are the user's alone (no tenant), by e-mail, logged as sent.
    with owner_engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(
            text(
                "SELECT channel, tenant_id, address FROM notifications WHERE user_id = :u "
                "AND template = 'email_verification' ORDER BY due_at"
            ),
            {"u": buyer["user"]["id"]},
        ).all()
    assert [(r.channel, r.tenant_id, r.address) for r in rows] == [
        ("email", None, buyer["email"]),
        ("email", None, new_email),
    ]


def test_asking_again_is_spaced_and_accounts_without_e_mail_need_none(
    client, api, owner_engine
) -> None:
    user = api.register("again", verified=False)
    for _ in range(2):
        asked = client.post(f"{V1}/users/me/email-verification", headers=user["headers"])
        assert asked.status_code == 202, asked.text
    # Sign-up's request, then one more: the second ask within a minute sends nothing.
    events = outbox_events(owner_engine, user["user"]["id"], "user.email_verification_requested")
    assert len(events) == 2
    anonymous = client.post(f"{V1}/users/me/email-verification")
    assert anonymous.status_code == 401


def test_bad_forged_and_expired_tokens_are_refused_alike(client, api, key) -> None:
    user = api.register("forger", verified=False)
    user_id = uuid.UUID(user["user"]["id"])
    later = datetime.now(UTC) + timedelta(hours=1)
    for token in (
        "x",
        "!" * 75,
        token_for(key, user_id, user["email"], datetime.now(UTC) - timedelta(seconds=5)),
        token_for(key, user_id, f"other-{user['email']}", later),
        token_for(b"another key", user_id, user["email"], later),
        token_for(key, uuid.uuid4(), user["email"], later),
    ):
        assert_error(_confirm(client, token), 422, "invalid_verification_token")
    me = client.get(f"{V1}/users/me", headers=user["headers"]).json()
    assert me["email_verified_at"] is None
    assert _confirm(client, token_for(key, user_id, user["email"], later)).status_code == 204


# --- rules (no I/O) -------------------------------------------------------------------------------


def test_tokens_bind_the_account_the_address_and_the_expiry() -> None:
    key = signing_key("ticket-key")
    user_id = uuid.UUID("01a25121-6f65-7332-b8cb-8e812fd672af")
    expires = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    token = token_for(key, user_id, "a@example.org", expires)
    assert len(token) == 75 and token == token_for(key, user_id, "a@example.org", expires)
    assert token != token_for(key, user_id, "b@example.org", expires)
    assert token != token_for(key, user_id, "a@example.org", expires + timedelta(seconds=1))
    # Its own key: neither the ticket key nor the password reset key signs it.
    assert key not in (b"ticket-key", password_reset.signing_key("ticket-key"))


def test_only_an_unconfirmed_address_blocks_a_paid_ticket() -> None:
    unconfirmed = User(email="a@example.org", display_name="a")
    confirmed = User(email="a@example.org", display_name="a", email_verified_at=datetime.now(UTC))
    telegram_only = User(telegram_id=7, display_name="t")
    with pytest.raises(Exception) as refused:
        email_verification.require_verified(unconfirmed)
    assert getattr(refused.value, "code", None) == "email_not_verified"
    email_verification.require_verified(confirmed)
    email_verification.require_verified(telegram_only)
