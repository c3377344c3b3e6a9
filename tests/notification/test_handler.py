"""From consumed events to messages that arrive: each event type the handler answers, fed with
the real outbox rows the platform wrote, delivered to the local Telegram and SMTP servers."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import Engine, text

from domain.checkin import tickets
from domain.notification.channels import Channels
from domain.notification.delivery import deliver
from domain.notification.service import handle
from domain.registration.service import confirm
from domain.uow import UnitOfWork
from tests.factories import (
    Organizer,
    backdate_reservation,
    cancelled_registration,
    join_waitlist,
    registered,
    reserved,
    sweep,
)
from tests.notification.conftest import link_telegram, log_rows, outbox_events


def consume(sessions, row: dict) -> list:
    """What the stream worker does with one record: handle it in a transaction, commit."""
    with UnitOfWork(sessions) as uow:
        queued = handle(uow, row["event_type"], row["payload"], {"event_id": str(row["id"])})
        uow.commit()
    return queued


def send(sessions, channels: Channels, queued: list):
    return asyncio.run(deliver(sessions, channels, queued))


def expected_qr(owner_engine: Engine, settings, registration_id: str) -> bytes:
    with owner_engine.connect() as conn:
        secret = conn.execute(
            text("SELECT ticket_secret FROM registrations WHERE id = :id"), {"id": registration_id}
        ).scalar_one()
    key = settings.ticket_signing_key.get_secret_value().encode()
    return tickets.qr_png(tickets.issue(key, uuid.UUID(registration_id), secret))


def _parts(message) -> dict[str, object]:
    out = {}
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            out["text"] = part.get_content()
        elif part.get_content_type() == "text/html":
            out["html"] = part.get_content()
        elif part.get_filename():
            out[part.get_filename()] = (part.get_content_type(), part.get_content())
    return out


def test_a_free_registration_sends_one_ticket_by_email_with_its_qr_code(
    client, api, admin, owner_engine, sessions, channels, smtp, notify_settings
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(title="Gala <b>night</b> & more")
    user, registration = org.participant(event["id"], ticket_type["id"], quantity=2)
    rows = outbox_events(owner_engine, registration["id"])
    assert [r["event_type"] for r in rows] == ["registration.created", "registration.confirmed"]

    queued = [consume(sessions, row) for row in rows]
    assert [len(q) for q in queued] == [1, 0]  # one ticket per registration, whichever event
    result = send(sessions, channels, queued[0])
    assert (result.sent, result.failed) == (1, 0)

    [mail] = smtp.to(user["email"])
    assert mail["Subject"] == "Your ticket: Gala <b>night</b> & more"
    assert mail["To"] == user["email"]
    assert "no-reply@aqstream.example" in mail["From"]
    parts = _parts(mail)
    assert "you are registered for Gala <b>night</b> & more: 2 ×" in parts["text"]
    assert "Gala &lt;b&gt;night&lt;/b&gt; &amp; more" in parts["html"]
    assert "<b>night</b>" not in parts["html"]
    content_type, png = parts["ticket.png"]
    assert content_type == "image/png"
    assert png == expected_qr(owner_engine, notify_settings, registration["id"])

    [logged] = log_rows(owner_engine, registration_id=registration["id"])
    assert (logged["status"], logged["attempts"], logged["channel"]) == ("sent", 1, "email")
    assert logged["template"] == "ticket" and logged["language"] == "en"
    assert logged["tenant_id"] == uuid.UUID(org.org["id"])
    assert logged["sent_at"] is not None and logged["last_error"] is None


def test_a_telegram_user_gets_the_ticket_as_a_photo_in_russian(
    client, api, admin, owner_engine, sessions, channels, telegram, smtp, notify_settings
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(title="Митап", venue="Москва, Арбат 1")
    user = api.register("Ольга")
    chat_id = link_telegram(owner_engine, user, locale="ru")
    registration = registered(client, event["id"], user, ticket_type_id=ticket_type["id"])
    [created, _] = outbox_events(owner_engine, registration["id"])
    queued = consume(sessions, created)
    assert send(sessions, channels, queued).sent == 1

    [photo] = telegram.to(chat_id)
    assert photo["method"] == "sendPhoto" and photo["photo_type"] == "image/png"
    assert photo["photo"] == expected_qr(owner_engine, notify_settings, registration["id"])
    assert "Здравствуйте, Ольга!" in photo["caption"]
    assert "Вы зарегистрированы на «Митап»" in photo["caption"]
    assert "Где: Москва, Арбат 1" in photo["caption"]
    assert smtp.to(user["email"]) == []  # Telegram is the default once linked
    [logged] = log_rows(owner_engine, registration_id=registration["id"])
    assert (logged["channel"], logged["language"], logged["address"]) == (
        "telegram",
        "ru",
        str(chat_id),
    )


def test_a_redelivered_event_never_sends_twice(
    client, api, admin, owner_engine, sessions, channels, telegram
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event()
    user = api.register("twice")
    chat_id = link_telegram(owner_engine, user)
    registration = registered(client, event["id"], user, ticket_type_id=ticket_type["id"])
    [created, confirmed] = outbox_events(owner_engine, registration["id"])

    first = consume(sessions, created)
    assert send(sessions, channels, first).sent == 1
    # The broker delivers the same records again (a worker restarted before committing offsets).
    for row in (created, confirmed, created):
        assert consume(sessions, row) == []
    again = send(sessions, channels, first)  # and a dispatcher retrying the same ids
    assert (again.sent, again.failed) == (0, 0)

    assert len(telegram.to(chat_id)) == 1
    assert len(log_rows(owner_engine, user_id=user["user"]["id"])) == 1


def test_welcome_is_a_platform_message_only_its_recipient_sees(
    api, owner_engine, app_engine, sessions, channels, smtp, client, admin
) -> None:
    user = api.register("Newcomer")
    [row] = outbox_events(owner_engine, user["user"]["id"], "user.registered")
    [queued] = consume(sessions, row)
    assert queued.tenant_id is None
    assert send(sessions, channels, [queued]).sent == 1
    [mail] = smtp.to(user["email"])
    assert mail["Subject"] == "Welcome to AqStream, Newcomer"

    org = Organizer(client, api, admin)
    for user_id, tenant_id, visible in (
        (user["user"]["id"], "", 1),  # the recipient
        (org.owner["user"]["id"], org.org["id"], 0),  # any tenant's context
        ("", "", 0),  # no context at all
    ):
        with app_engine.connect() as conn, conn.begin():
            conn.execute(
                text(
                    "SELECT set_config('app.user_id', :u, true), set_config('app.tenant_id', :t, true)"
                ),
                {"u": user_id, "t": tenant_id},
            )
            seen = conn.execute(
                text("SELECT count(*) FROM notifications WHERE id = :id"), {"id": queued.id}
            ).scalar()
        assert seen == visible, (user_id, tenant_id)


def test_a_paid_registration_gets_its_ticket_when_confirmed_and_a_receipt(
    client, api, admin, owner_engine, sessions, channels, smtp
) -> None:
    from domain.payment.events import PaymentCompleted

    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(price_amount=2500, title="Paid talk")
    user, registration = org.participant(event["id"], ticket_type["id"])
    assert registration["status"] == "pending_payment"
    [created] = outbox_events(owner_engine, registration["id"], "registration.created")
    assert consume(sessions, created) == []  # no ticket before it is paid

    tenant = uuid.UUID(org.org["id"])
    with UnitOfWork(sessions, tenant_id=tenant) as uow:
        confirm(uow, uuid.UUID(registration["id"]), 2500)
        uow.commit()
    [confirmed] = outbox_events(owner_engine, registration["id"], "registration.confirmed")
    payment = PaymentCompleted(
        aggregate_id=uuid.uuid4(),
        tenant_id=tenant,
        payment_id=uuid.uuid4(),
        registration_id=uuid.UUID(registration["id"]),
        event_id=uuid.UUID(event["id"]),
        user_id=uuid.UUID(user["user"]["id"]),
        provider="sandbox",
        purpose="full",
        currency="EUR",
        amount=2500,
    )
    paid = {"id": uuid.uuid4(), "event_type": "payment.completed", "payload": payment.payload()}
    queued = consume(sessions, confirmed) + consume(sessions, paid)
    assert [n.template for n in queued] == ["ticket", "receipt"]
    assert send(sessions, channels, queued).sent == 2

    subjects = sorted(m["Subject"] for m in smtp.to(user["email"]))
    assert subjects == ["Receipt: 25.00 EUR for Paid talk", "Your ticket: Paid talk"]
    receipt = next(m for m in smtp.to(user["email"]) if m["Subject"].startswith("Receipt"))
    assert str(payment.payment_id) in _parts(receipt)["text"]


def test_an_expired_hold_notifies_its_holder(
    client, api, admin, owner_engine, sessions, channels, smtp
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(title="Workshop")
    user = api.register("holder")
    hold = reserved(client, event["id"], user, ticket_type["id"], quantity=2)
    backdate_reservation(owner_engine, hold["id"])
    sweep(client)
    [expired] = outbox_events(owner_engine, hold["id"], "reservation.expired")
    assert send(sessions, channels, consume(sessions, expired)).sent == 1
    [mail] = smtp.to(user["email"])
    assert mail["Subject"] == "Your hold for Workshop expired"
    assert "the 2 seat(s) held for you at Workshop were released" in _parts(mail)["text"]


def test_a_waitlist_offer_names_the_deadline(
    client, api, admin, owner_engine, sessions, channels, telegram
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(capacity=1, title="Tiny", timezone="Europe/Berlin")
    first, registration = org.participant(event["id"], ticket_type["id"])
    waiter = api.register("waiter")
    chat_id = link_telegram(owner_engine, waiter, locale="ru")
    entry = join_waitlist(client, event["id"], waiter, ticket_type["id"])
    assert entry.status_code == 201, entry.text
    cancelled_registration(client, registration["id"], first)
    sweep(client)
    [offered] = outbox_events(owner_engine, entry.json()["id"], "waitlist.offered")
    assert send(sessions, channels, consume(sessions, offered)).sent == 1
    [message] = telegram.to(chat_id)
    assert message["method"] == "sendMessage"
    assert "забронировано для вас до" in message["text"]
    assert "(Europe/Berlin)" in message["text"]


def test_event_cancellation_reaches_every_registrant_live_when_it_was_cancelled(
    client, api, admin, owner_engine, sessions, channels, smtp, telegram
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(title="Conference")
    early, early_registration = org.participant(event["id"], ticket_type["id"])
    stays, _ = org.participant(event["id"], ticket_type["id"])
    refunded, refunded_registration = org.participant(event["id"], ticket_type["id"])
    chat_id = link_telegram(owner_engine, refunded, locale="ru")
    cancelled_registration(client, early_registration["id"], early)  # before: not notified
    org.moved(event["id"], "cancel", reason="Venue flooded")
    # The payment saga cancels registrations of a cancelled event, maybe before we get to it.
    cancelled_registration(client, refunded_registration["id"], refunded)

    [cancelled] = outbox_events(owner_engine, event["id"], "event.cancelled")
    queued = consume(sessions, cancelled)
    assert sorted(str(n.user_id) for n in queued) == sorted(
        [stays["user"]["id"], refunded["user"]["id"]]
    )
    assert send(sessions, channels, queued).sent == 2
    [mail] = smtp.to(stays["email"])
    assert mail["Subject"] == "Cancelled: Conference"
    assert "Reason: Venue flooded" in _parts(mail)["text"]
    [message] = telegram.to(chat_id)
    assert "«Conference»" in message["text"] and "Причина: Venue flooded" in message["text"]
    assert smtp.to(early["email"]) == []


def test_event_types_that_send_nothing_are_ignored(sessions) -> None:
    with UnitOfWork(sessions) as uow:
        assert (
            handle(uow, "group.created", {"tenant_id": None}, {"event_id": str(uuid.uuid4())}) == []
        )


def test_kafka_style_headers_and_a_missing_event_id(
    client, api, admin, owner_engine, sessions
) -> None:
    user = api.register("headers")
    [row] = outbox_events(owner_engine, user["user"]["id"], "user.registered")
    with UnitOfWork(sessions) as uow:
        queued = handle(
            uow, row["event_type"], row["payload"], [("event_id", str(row["id"]).encode())]
        )
        assert [n.source_event_id for n in queued] == [row["id"]]
    with UnitOfWork(sessions) as uow:
        try:
            handle(uow, row["event_type"], row["payload"], {"correlation_id": "x"})
        except ValueError as exc:
            assert "event id" in str(exc)
        else:
            raise AssertionError("an event without an id must not be handled")


def test_two_workers_handling_the_same_event_at_once_queue_it_once(
    api, owner_engine, sessions
) -> None:
    import threading
    import time

    user = api.register("racer")
    [row] = outbox_events(owner_engine, user["user"]["id"], "user.registered")
    headers = {"event_id": str(row["id"])}
    second: dict = {}

    def other_worker() -> None:
        with UnitOfWork(sessions) as uow:
            second["queued"] = handle(uow, row["event_type"], row["payload"], headers)
            uow.commit()

    with UnitOfWork(sessions) as uow:
        first = handle(uow, row["event_type"], row["payload"], headers)
        thread = threading.Thread(target=other_worker)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()  # waiting on the unique index for our transaction
        uow.commit()
    thread.join(timeout=10)
    assert len(first) == 1 and second["queued"] == []
    assert len(log_rows(owner_engine, user_id=user["user"]["id"])) == 1
