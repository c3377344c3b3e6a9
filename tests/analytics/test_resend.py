"""A tracked action resent with the same id counts once, with or without ``occurred_at``: end to end
(API, broker, worker, warehouse, dashboard), and the API's memory of the times it gave (Redis)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from aqstream.stack.servers import free_port
from core.resources import make_redis
from domain.analytics.tracking import Action, FirstTimes
from tests.analytics.conftest import CHROME
from tests.analytics.test_end_to_end import event_totals, facts_by_kind
from tests.factories import V1, Organizer
from tests.worker.conftest import wait_for

TRACK = f"{V1}/analytics/track"


@pytest.mark.slow
def test_actions_resent_without_occurred_at_count_once(
    client, api, admin, owner_engine, worker_settings, analytics_workers
) -> None:
    from api.app import create_app

    org = Organizer(client, api, admin)
    tenant = org.org["id"]
    event, _ = org.published_event(capacity=10)
    analytics_workers(worker_settings)
    views = [
        {
            "id": str(uuid.uuid4()),
            "type": "page_view",
            "event_id": event["id"],
            "visitor_id": visitor,
            "session_id": "s",
        }
        for visitor in ("a", "b")
    ]
    # The last record of the event's partition: once its fact is stored, so are the views.
    marker = {
        "id": str(uuid.uuid4()),
        "type": "checkout_started",
        "event_id": event["id"],
        "visitor_id": "a",
        "session_id": "s",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    api_settings = worker_settings.model_copy(update={"analytics_track_rate": "1000/minute"})
    with TestClient(create_app(api_settings), headers={"User-Agent": CHROME}) as tracker:
        for body in ({"events": views}, {"events": views}, {"events": [views[1], marker]}):
            response = tracker.post(TRACK, json=body)
            assert response.status_code == 202, response.text

    wait_for(
        lambda: facts_by_kind(owner_engine, tenant).get("checkout_started") == 1,
        60,
        "the marker in the warehouse",
    )
    assert facts_by_kind(owner_engine, tenant) == {"page_view": 2, "checkout_started": 1}
    totals = event_totals(owner_engine, tenant, event["id"])
    assert (totals["views"], totals["unique_views"]) == (2, 2)
    dashboard = client.get(
        f"{V1}/analytics/events/{event['id']}/dashboard", headers=org.owner["headers"]
    )
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.json()["kpis"]["views"] == 2


# --- the memory (real Redis) ----------------------------------------------------------------------


class CountingRedis(redis.Redis):
    """A real client that counts the pipelines it runs (round trips of FirstTimes)."""

    pipelines = 0

    def pipeline(self, *args, **kwargs):
        self.pipelines += 1
        return super().pipeline(*args, **kwargs)


@pytest.fixture
def counting(settings) -> CountingRedis:
    client = make_redis(settings)
    counted = CountingRedis(connection_pool=client.connection_pool)
    yield counted
    counted.close()


def _action(event_id: uuid.UUID, action_id: uuid.UUID | None, at: datetime | None = None) -> Action:
    return Action("page_view", event_id, "v", "s", id=action_id, occurred_at=at)


def test_a_resend_gets_the_time_first_given_to_its_tenant_event_and_id(
    counting: CountingRedis,
) -> None:
    times = FirstTimes(counting)
    tenant, other_tenant, event, other_event = (uuid.uuid4() for _ in range(4))
    action_id = uuid.uuid4()
    first = datetime.now(UTC).replace(microsecond=123456)
    later = first + timedelta(seconds=30)

    assert times.recall([(tenant, _action(event, action_id))], now=first, ttl_s=600) == [first]
    again = times.recall(
        [
            (tenant, _action(event, action_id)),
            (other_tenant, _action(event, action_id)),  # tenants never share a time
            (tenant, _action(other_event, action_id)),  # nor events
            (tenant, _action(event, action_id)),  # twice in one batch: the same time
        ],
        now=later,
        ttl_s=600,
    )
    assert again == [first, later, later, first]
    assert counting.pipelines == 2  # one round trip per batch
    [key] = counting.keys(f"{FirstTimes.PREFIX}:{tenant}:{event}:{action_id}")
    assert 590 <= counting.ttl(key) <= 600  # kept for the late window, not refreshed by a resend


def test_only_actions_with_an_id_and_without_occurred_at_are_remembered(
    counting: CountingRedis,
) -> None:
    times = FirstTimes(counting)
    tenant, event = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    given = now - timedelta(minutes=3)
    batch = [(tenant, _action(event, uuid.uuid4(), given)), (tenant, _action(event, None))]
    assert times.recall(batch, now=now, ttl_s=600) == [given, now]
    assert counting.pipelines == 0  # nothing to remember: no round trip
    assert counting.keys(f"{FirstTimes.PREFIX}:{tenant}:*") == []


def test_without_redis_the_time_is_now(settings) -> None:
    down = make_redis(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}"}))
    now = datetime.now(UTC)
    pending = [(uuid.uuid4(), _action(uuid.uuid4(), uuid.uuid4()))]
    assert FirstTimes(down).recall(pending, now=now, ttl_s=600) == [now]  # fail open
