"""The reminder scheduler: event.reminder through the outbox, once per event, N hours ahead; and
the reminders it leads to."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, text

from domain.notification.service import emit_due_reminders
from tests.factories import Organizer, at, cancelled_registration
from tests.notification.conftest import log_rows, outbox_events
from tests.notification.test_handler import consume, send


def _reminders(owner_engine: Engine, event_id: str) -> int:
    with owner_engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM event_reminders WHERE event_id = :id"), {"id": event_id}
        ).scalar()


def test_a_reminder_is_emitted_once_within_the_lead_time_and_reaches_confirmed_participants(
    client, api, admin, owner_engine, sessions, channels, smtp
) -> None:
    org = Organizer(client, api, admin)
    soon, ticket_type = org.published_event(start=at(hours=2), title="Soon", venue="Hall A")
    later, _ = org.published_event(start=at(hours=30))
    cancelled, _ = org.published_event(start=at(hours=1))
    org.moved(cancelled["id"], "cancel")
    confirmed, _ = org.participant(soon["id"], ticket_type["id"])
    gone, gone_registration = org.participant(soon["id"], ticket_type["id"])
    cancelled_registration(client, gone_registration["id"], gone)

    assert emit_due_reminders(sessions, lead=timedelta(hours=3)) >= 1
    assert emit_due_reminders(sessions, lead=timedelta(hours=3)) == 0  # recorded: once
    [row] = outbox_events(owner_engine, soon["id"], "event.reminder")
    assert row["payload"]["event_id"] == soon["id"]
    assert row["payload"]["lead_hours"] == 3.0
    assert _reminders(owner_engine, soon["id"]) == 1
    assert outbox_events(owner_engine, later["id"], "event.reminder") == []
    assert outbox_events(owner_engine, cancelled["id"], "event.reminder") == []

    queued = consume(sessions, row)
    assert [str(n.user_id) for n in queued] == [confirmed["user"]["id"]]
    assert consume(sessions, row) == []  # redelivered: nothing new
    assert send(sessions, channels, queued).sent == 1
    [mail] = smtp.to(confirmed["email"])
    assert mail["Subject"].startswith("Reminder: Soon starts ")
    assert smtp.to(gone["email"]) == []
    assert [r["template"] for r in log_rows(owner_engine, event_id=soon["id"])] == [
        "event_reminder"
    ]

    # A longer lead time later reaches the other event, still once.
    assert emit_due_reminders(sessions, lead=timedelta(hours=31)) >= 1
    assert len(outbox_events(owner_engine, later["id"], "event.reminder")) == 1
    assert len(outbox_events(owner_engine, soon["id"], "event.reminder")) == 1


def test_a_reminder_for_an_event_cancelled_meanwhile_sends_nothing(
    client, api, admin, owner_engine, sessions
) -> None:
    org = Organizer(client, api, admin)
    event, ticket_type = org.published_event(start=at(hours=1))
    org.participant(event["id"], ticket_type["id"])
    emit_due_reminders(sessions, lead=timedelta(hours=2))
    [row] = outbox_events(owner_engine, event["id"], "event.reminder")
    org.moved(event["id"], "cancel")
    assert consume(sessions, row) == []
