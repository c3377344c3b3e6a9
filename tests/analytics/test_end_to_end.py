"""The analytics pipeline end to end with the real relay, broker, worker and warehouse sink:
registrations, payments, a refund, check-ins and the waitlist made through the API and the
domain services, and views tracked through POST /analytics/track, land in the warehouse as one
fact per record (the outbox is the reference) and in the rollups with the expected numbers. Then
a second worker in a new consumer group re-reads every topic from the beginning: every rollup
row stays as it was."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from domain.analytics.facts import DOMAIN_KINDS
from domain.uow import UnitOfWork
from domain.waitlist import service as waitlists
from tests.analytics.conftest import CHROME
from tests.factories import (
    V1,
    Organizer,
    join_waitlist,
    refund,
    registered,
    registration_now,
    reserved,
    settle_sandbox,
    submit_refunds,
)
from tests.worker.conftest import scalar, wait_for
from warehouse.rollups import GRAINS, ROLLUPS
from warehouse.sink import ingest

TRACK = f"{V1}/analytics/track"


def facts_by_kind(engine: Engine, tenant: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, count(*) FROM warehouse.facts WHERE tenant_id = :t GROUP BY kind"),
            {"t": tenant},
        ).all()
    return {kind: n for kind, n in rows}


def outbox_by_kind(engine: Engine, tenant: str) -> dict[str, int]:
    """What the warehouse must hold of the tenant's domain events: one fact per counted row."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_type, count(*) FROM outbox WHERE tenant_id = :t "
                "AND event_type = ANY(:types) GROUP BY event_type"
            ),
            {"t": tenant, "types": list(DOMAIN_KINDS)},
        ).all()
    out: dict[str, int] = {}
    for event_type, n in rows:
        kind = DOMAIN_KINDS[event_type].value
        out[kind] = out.get(kind, 0) + n
    return out


def rollups(engine: Engine, tenant: str) -> dict[str, list[tuple]]:
    """Every rollup row of the tenant (as the owner), per table, in a stable order."""
    out = {}
    with engine.connect() as conn:
        for rollup in ROLLUPS:
            for grain in GRAINS:
                table = rollup.table(grain)
                rows = conn.execute(
                    text(f"SELECT * FROM {table} WHERE tenant_id = :t"), {"t": tenant}
                ).all()
                out[table] = sorted(tuple(map(str, r)) for r in rows)
    return out


def event_totals(engine: Engine, tenant: str, event_id: str) -> dict[str, int]:
    columns = [
        "views",
        "unique_views",
        "ticket_selected",
        "checkout_started",
        "reservations",
        "registrations",
        "registered_seats",
        "confirmations",
        "cancellations",
        "checkins",
        "waitlist_joined",
        "waitlist_left",
    ]
    sums = ", ".join(f"coalesce(sum({c}), 0)" for c in columns)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                f"SELECT {sums} FROM warehouse.event_minute WHERE tenant_id = :t AND event_id = :e"
            ),
            {"t": tenant, "e": event_id},
        ).one()
    return dict(zip(columns, map(int, row), strict=True))


class CountingSink:
    """The warehouse's sink, remembering which facts it was given (to know a replay is done)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, session, facts):
        result = ingest(session, facts)
        with self.lock:
            self.seen.update(str(f.fact_id) for f in facts)
        return result


@pytest.mark.slow
def test_the_pipeline_fills_the_warehouse_and_a_replay_changes_nothing(
    client, api, admin, owner_engine, worker_settings, relays, analytics_workers
) -> None:
    from api.app import create_app

    org = Organizer(client, api, admin)
    tenant = org.org["id"]
    event, free = org.published_event(capacity=10)
    paid = org.ticket_type(event["id"], name="Supporter", capacity=5, price_amount=5000)
    tiny = org.ticket_type(event["id"], name="Tiny", capacity=1)
    relays(worker_settings, "relay-analytics")
    first = analytics_workers(worker_settings)

    # Tracked: visitor a twice within 30 minutes (one unique view), b once; a selects, checks out.
    now = datetime.now(UTC)
    views = [
        {"type": "page_view", "visitor_id": "a", "occurred_at": now - timedelta(minutes=20)},
        {"type": "page_view", "visitor_id": "a", "occurred_at": now - timedelta(minutes=5)},
        {"type": "page_view", "visitor_id": "b", "utm_source": "newsletter"},
        {"type": "ticket_selected", "visitor_id": "a", "ticket_type_id": paid["id"]},
        {"type": "checkout_started", "visitor_id": "a", "ticket_type_id": paid["id"]},
    ]
    batch = [
        {
            **v,
            "event_id": event["id"],
            "session_id": "s",
            "id": str(uuid.uuid4()),
            **({"occurred_at": v["occurred_at"].isoformat()} if "occurred_at" in v else {}),
        }
        for v in views
    ]
    api_settings = worker_settings.model_copy(update={"analytics_track_rate": "1000/minute"})
    with TestClient(create_app(api_settings), headers={"User-Agent": CHROME}) as tracker:
        assert tracker.post(TRACK, json={"events": batch}).status_code == 202
        assert tracker.post(TRACK, json={"events": batch[:1]}).status_code == 202  # a retry

    # Free: two participants, one cancels, one is checked in; a hold of one seat.
    _, kept = org.participant(event["id"], free["id"])
    _, dropped = org.participant(event["id"], free["id"])
    owner = org.owner["headers"]
    cancelled = client.post(f"{V1}/registrations/{dropped['id']}/cancel", headers=owner)
    assert cancelled.status_code == 200, cancelled.text
    checked = client.post(f"{V1}/registrations/{kept['id']}/check-in", headers=owner)
    assert checked.status_code == 200, checked.text
    reserved(client, event["id"], api.register("holder"), free["id"])
    # Paid: the saga starts the payment, the sandbox pays, the organizer refunds 1000.
    payer = api.register("payer")
    pending = registered(client, event["id"], payer, ticket_type_id=paid["id"])

    def payments() -> list:
        response = client.get(
            f"{V1}/registrations/{pending['id']}/payments", headers=payer["headers"]
        )
        return response.json()["items"] if response.status_code == 200 else []

    [payment] = wait_for(payments, 30, "the saga to start the payment")
    settle_sandbox(client)
    wait_for(
        lambda: registration_now(client, pending["id"], payer)["status"] == "confirmed",
        30,
        "the payment to confirm the registration",
    )
    response = refund(client, payment["id"], org.owner, amount=1000)
    assert response.status_code in (200, 201, 202), response.text
    submit_refunds(client)  # unless the payment workers already handed it over
    settle_sandbox(client)
    wait_for(
        lambda: scalar(
            owner_engine,
            "SELECT count(*) FROM outbox WHERE aggregate_id = :p AND event_type = 'payment.refunded'",
            p=payment["id"],
        ),
        30,
        "the refund",
    )
    # The waitlist: the one seat taken, the next person joins, then leaves.
    org.participant(event["id"], tiny["id"])
    waiting = api.register("waiting")
    joined = join_waitlist(client, event["id"], waiting, tiny["id"])
    assert joined.status_code == 201, joined.text
    with UnitOfWork(
        client.app.state.aq.sessionmaker, user_id=uuid.UUID(waiting["user"]["id"])
    ) as uow:
        waitlists.leave(uow, uuid.UUID(joined.json()["id"]), uuid.UUID(waiting["user"]["id"]))
        uow.commit()

    expected = outbox_by_kind(owner_engine, tenant)
    expected.update({"page_view": 3, "ticket_selected": 1, "checkout_started": 1})
    assert expected == {
        "reservation": 1,
        "registration": 4,
        "confirmation": 4,
        "cancellation": 1,
        "payment": 1,
        "refund": 1,
        "checkin": 1,
        "waitlist_joined": 1,
        "waitlist_left": 1,
        "page_view": 3,
        "ticket_selected": 1,
        "checkout_started": 1,
    }
    wait_for(
        lambda: facts_by_kind(owner_engine, tenant) == expected,
        60,
        "one fact per record in the warehouse",
    )
    totals = {
        "views": 3,
        "unique_views": 2,
        "ticket_selected": 1,
        "checkout_started": 1,
        "reservations": 1,
        "registrations": 4,
        "registered_seats": 4,
        "confirmations": 4,
        "cancellations": 1,
        "checkins": 1,
        "waitlist_joined": 1,
        "waitlist_left": 1,
    }
    wait_for(
        lambda: event_totals(owner_engine, tenant, event["id"]) == totals,
        30,
        "the rollups",
    )
    with owner_engine.connect() as conn:
        money = conn.execute(
            text(
                "SELECT currency, sum(gross), sum(refunds), sum(net), sum(payment_count) "
                "FROM warehouse.revenue_day WHERE tenant_id = :t GROUP BY currency"
            ),
            {"t": tenant},
        ).all()
    assert [tuple(r) for r in money] == [("EUR", 5000, 1000, 4000, 1)]
    assert first.processor is not None and first.processor.dead_letters == 0
    before = rollups(owner_engine, tenant)
    assert before["warehouse.event_minute"], "nothing to compare"
    first.stop()

    # A new consumer group reads every topic from the beginning: nothing changes.
    sink = CountingSink()
    replay = analytics_workers(
        worker_settings.model_copy(update={"worker_group": f"replay-{uuid.uuid4().hex[:6]}"}),
        sink=sink,
    )
    with owner_engine.connect() as conn:
        fact_ids = {
            str(i)
            for (i,) in conn.execute(
                text("SELECT fact_id FROM warehouse.facts WHERE tenant_id = :t"), {"t": tenant}
            )
        }
    wait_for(lambda: sink.seen >= fact_ids, 60, "the replay to reach every fact")
    assert facts_by_kind(owner_engine, tenant) == expected
    assert rollups(owner_engine, tenant) == before
    assert replay.processor is not None and replay.processor.dead_letters == 0
    replay.stop()
