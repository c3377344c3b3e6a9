"""POST /api/v1/analytics/track against the real broker: what lands on the tracking topic (key,
headers, value), what is refused whole (nothing sent), bots, the late window, the per-IP rate
limit and a broker that cannot be reached."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from aqstream.stack.servers import free_port
from core.settings import Settings
from domain.contracts import validate_payload
from streams.topics import tracking_topic
from tests.analytics.conftest import CHROME, read_topic
from tests.factories import V1, Organizer, assert_error

TRACK = f"{V1}/analytics/track"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def shop(client, api, admin) -> dict:
    """A published event with two ticket types, another published event, and a draft."""
    org = Organizer(client, api, admin)
    event, standard = org.published_event(capacity=50)
    vip = org.ticket_type(event["id"], name="VIP", capacity=5, price_amount=9900)
    other, other_tt = org.published_event(capacity=5)
    draft = org.event()
    return {
        "org": org.org,
        "owner": org.owner,
        "event": event,
        "standard": standard,
        "vip": vip,
        "other": other,
        "other_tt": other_tt,
        "draft": draft,
    }


def _action(shop: dict, **fields) -> dict:
    return {
        "type": "page_view",
        "event_id": shop["event"]["id"],
        "visitor_id": f"v-{uuid.uuid4().hex[:8]}",
        "session_id": "s-1",
        **fields,
    }


def _mine(event_id: str):
    return lambda item: item.key == event_id.encode()


def _sentinel(track_client: TestClient, track_settings: Settings, event_id: str) -> list:
    """Send one good action marked with a fresh visitor id, and read the event's records up to
    it: whatever a refused batch would have sent before it is in the answer too."""
    marker = f"sentinel-{uuid.uuid4().hex[:8]}"
    body = {
        "events": [
            {"type": "page_view", "event_id": event_id, "visitor_id": marker, "session_id": "x"}
        ]
    }
    assert track_client.post(TRACK, json=body).status_code == 202
    found = []

    def seen(item) -> bool:
        if item.key == event_id.encode():
            found.append(item)
        return item.value["visitor_id"] == marker

    read_topic(track_settings.kafka_bootstrap, tracking_topic(track_settings).name, 1, where=seen)
    return [item for item in found if not item.value["visitor_id"].startswith("sentinel-")]


def test_a_batch_lands_on_the_tracking_topic_with_key_headers_and_value(
    track_client: TestClient, track_settings: Settings, shop: dict
) -> None:
    client_id = str(uuid.uuid4())
    seen_at = datetime.now(UTC) - timedelta(minutes=10)
    batch = [
        _action(
            shop,
            id=client_id,
            utm_source="Newsletter",
            referrer="https://t.co/abc",
            occurred_at=seen_at.isoformat(),
        ),
        _action(
            shop,
            type="ticket_selected",
            ticket_type_id=shop["vip"]["id"],
            referrer="https://www.google.com/search?q=x",
        ),
        _action(
            shop, type="checkout_started", ticket_type_id=shop["standard"]["id"], device="tablet"
        ),
    ]
    before = datetime.now(UTC)
    response = track_client.post(
        TRACK,
        json={"events": batch},
        # a token is accepted and ignored; the User-Agent gives the device
        headers={"Authorization": shop["owner"]["headers"]["Authorization"], "User-Agent": IPHONE},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3, "filtered": 0}

    event_id = shop["event"]["id"]
    records = read_topic(
        track_settings.kafka_bootstrap,
        tracking_topic(track_settings).name,
        3,
        where=_mine(event_id),
    )
    by_type = {r.value["type"]: r for r in records}
    assert set(by_type) == {"page_view", "ticket_selected", "checkout_started"}
    for record in records:
        validate_payload("tracking", 1, record.value)  # the published contract
        assert record.key == event_id.encode()
        assert record.headers["event_id"] == record.value["id"]
        assert record.headers["event_type"] == f"tracking.{record.value['type']}"
        assert record.headers["tenant_id"] == shop["org"]["id"] == record.value["tenant_id"]
        assert record.headers["schema_version"] == "1"
        assert record.headers["aggregate_type"] == "tracking"
        assert record.headers["occurred_at"] == record.value["occurred_at"]
        assert record.headers["content_type"] == "application/json"
        assert record.headers["correlation_id"]  # the request's X-Request-ID
        assert record.value["event_id"] == event_id
        assert before <= datetime.fromisoformat(record.value["received_at"]) <= datetime.now(UTC)
    view = by_type["page_view"].value
    assert view["source"] == "newsletter" and view["device"] == "mobile"
    assert view["ticket_type_id"] is None and view["visitor_id"] == batch[0]["visitor_id"]
    assert datetime.fromisoformat(view["occurred_at"]) == seen_at
    assert view["id"] != client_id  # derived from it (tests/analytics/test_mapping.py)
    selected = by_type["ticket_selected"].value
    assert selected["source"] == "google.com" and selected["ticket_type_id"] == shop["vip"]["id"]
    checkout = by_type["checkout_started"].value
    assert checkout["source"] == "direct" and checkout["device"] == "tablet"
    assert before <= datetime.fromisoformat(checkout["occurred_at"])  # default: now

    # A retry of the first action (same client id): the same record id, which the warehouse
    # stores once.
    again = track_client.post(TRACK, json={"events": [batch[0]]})
    assert again.status_code == 202
    records = read_topic(
        track_settings.kafka_bootstrap,
        tracking_topic(track_settings).name,
        4,
        where=_mine(event_id),
    )
    assert [r.id for r in records].count(view["id"]) == 2


def test_batch_size_is_one_to_a_hundred(track_client: TestClient, shop: dict) -> None:
    assert_error(track_client.post(TRACK, json={"events": []}), 422, "validation_error")
    too_many = [_action(shop) for _ in range(101)]
    assert_error(track_client.post(TRACK, json={"events": too_many}), 422, "validation_error")
    response = track_client.post(TRACK, json={"events": too_many[:100]})
    assert response.status_code == 202 and response.json()["accepted"] == 100


@pytest.mark.parametrize(
    "field",
    [
        {"type": "purchase"},
        {"visitor_id": ""},
        {"visitor_id": "x" * 65},
        {"session_id": ""},
        {"device": "watch"},
        {"event_id": "not-a-uuid"},
        {"extra": 1},
    ],
)
def test_malformed_actions_are_422(track_client: TestClient, shop: dict, field: dict) -> None:
    body = {"events": [_action(shop), _action(shop, **field)]}
    assert_error(track_client.post(TRACK, json=body), 422, "validation_error")


def test_an_unknown_or_unpublished_event_refuses_the_whole_batch(
    track_client: TestClient, track_settings: Settings, shop: dict
) -> None:
    event_id = shop["event"]["id"]
    refused: set[str] = set()
    batch = [
        _action(shop),
        _action(shop, event_id=str(uuid.uuid4())),
        _action(shop),
        _action(shop, event_id=shop["draft"]["id"]),
    ]
    refused |= {a["visitor_id"] for a in batch}
    body = assert_error(track_client.post(TRACK, json={"events": batch}), 409, "unknown_event")
    assert body["details"]["indexes"] == [1, 3]
    assert [p["code"] for p in body["details"]["problems"]] == ["unknown_event"] * 2
    # a ticket type of another event
    batch = [_action(shop, ticket_type_id=shop["other_tt"]["id"]), _action(shop)]
    refused |= {a["visitor_id"] for a in batch}
    body = assert_error(
        track_client.post(TRACK, json={"events": batch}), 409, "unknown_ticket_type"
    )
    assert body["details"]["indexes"] == [0]
    # several reasons: one code for the batch, each problem listed
    batch = [
        _action(shop, event_id=str(uuid.uuid4())),
        _action(shop, ticket_type_id=str(uuid.uuid4())),
    ]
    refused |= {a["visitor_id"] for a in batch}
    body = assert_error(track_client.post(TRACK, json={"events": batch}), 409, "invalid_batch")
    assert body["details"]["indexes"] == [0, 1]
    sent = _sentinel(track_client, track_settings, event_id)
    assert {r.value["visitor_id"] for r in sent} & refused == set()


def test_occurred_at_outside_the_late_window_is_refused(
    track_client: TestClient, track_settings: Settings, shop: dict
) -> None:
    now = datetime.now(UTC)
    late = track_settings.analytics_late_s
    for moment in (now + timedelta(minutes=6), now - timedelta(seconds=late + 60)):
        batch = [_action(shop), _action(shop, occurred_at=moment.isoformat())]
        body = assert_error(
            track_client.post(TRACK, json={"events": batch}), 409, "occurred_at_out_of_range"
        )
        assert body["details"]["indexes"] == [1]
    inside = [
        _action(shop, occurred_at=(now + timedelta(minutes=4)).isoformat()),
        _action(shop, occurred_at=(now - timedelta(seconds=late - 60)).isoformat()),
    ]
    assert track_client.post(TRACK, json={"events": inside}).status_code == 202


def test_bots_are_taken_but_not_sent(
    track_client: TestClient, track_settings: Settings, shop: dict
) -> None:
    event_id = shop["other"]["id"]
    bots = [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "python-requests/2.31.0",
        "",
    ]
    filtered: set[str] = set()
    for ua in bots:
        batch = [_action(shop, event_id=event_id), _action(shop, event_id=event_id)]
        filtered |= {a["visitor_id"] for a in batch}
        response = track_client.post(TRACK, json={"events": batch}, headers={"User-Agent": ua})
        assert response.status_code == 202, (ua, response.text)
        assert response.json() == {"accepted": 0, "filtered": 2}
    # a bot's batch is still checked whole
    bad = [_action(shop, event_id=str(uuid.uuid4()))]
    response = track_client.post(TRACK, json={"events": bad}, headers={"User-Agent": bots[0]})
    assert_error(response, 409, "unknown_event")
    sent = _sentinel(track_client, track_settings, event_id)
    assert {r.value["visitor_id"] for r in sent} & filtered == set()  # none of theirs was sent
    metrics = track_client.get("/metrics").text
    assert 'aqstream_tracking_actions_total{outcome="filtered"}' in metrics


def test_nothing_of_a_refused_batch_is_sent(
    track_client: TestClient, track_settings: Settings, shop: dict
) -> None:
    event_id = shop["other"]["id"]
    batch = [_action(shop, event_id=event_id) for _ in range(5)] + [
        _action(shop, event_id=event_id, ticket_type_id=shop["vip"]["id"])
    ]
    assert_error(track_client.post(TRACK, json={"events": batch}), 409, "unknown_ticket_type")
    sent = _sentinel(track_client, track_settings, event_id)
    assert {r.value["visitor_id"] for r in sent} & {a["visitor_id"] for a in batch} == set()


def test_a_new_ticket_type_is_known_at_once_despite_the_cache(
    client: TestClient, track_client: TestClient, shop: dict
) -> None:
    assert track_client.post(TRACK, json={"events": [_action(shop)]}).status_code == 202  # cached
    response = client.post(
        f"{V1}/events/{shop['event']['id']}/ticket-types",
        json={"name": f"Late {uuid.uuid4().hex[:4]}", "capacity": 3, "price_amount": 0},
        headers=shop["owner"]["headers"],
    )
    assert response.status_code == 201, response.text
    batch = [_action(shop, type="ticket_selected", ticket_type_id=response.json()["id"])]
    assert track_client.post(TRACK, json={"events": batch}).status_code == 202


def test_the_rate_limit_is_per_client_ip(settings: Settings, shop: dict) -> None:
    from api.app import create_app

    limited = settings.model_copy(
        update={
            "topic_namespace": f"aqtest-{uuid.uuid4().hex[:10]}",
            "analytics_track_rate": "3/minute",
        }
    )
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    app = create_app(limited)
    body = {"events": [_action(shop)]}
    with TestClient(app, client=(ip, 40000), headers={"User-Agent": CHROME}) as one:
        for _ in range(3):
            assert one.post(TRACK, json=body).status_code == 202
        response = one.post(TRACK, json=body)
        error = assert_error(response, 429, "rate_limited")
        assert error["details"]["scope"] == "tracking"
        assert int(response.headers["Retry-After"]) >= 1
        assert one.get(f"{V1}/events/{shop['event']['id']}").status_code == 200  # only tracking
    with TestClient(app, client=(ip + "1", 40000), headers={"User-Agent": CHROME}) as other:
        assert other.post(TRACK, json=body).status_code == 202  # another IP: its own limit


def test_an_unreachable_broker_is_503_and_the_api_recovers_without_a_restart(
    settings: Settings, shop: dict
) -> None:
    from api.app import create_app

    down = settings.model_copy(
        update={
            "kafka_bootstrap": f"127.0.0.1:{free_port()}",  # nothing listens there
            "analytics_publish_timeout_s": 1.0,
            "analytics_track_rate": "100000/minute",
        }
    )
    app = create_app(down)
    with TestClient(app, headers={"User-Agent": CHROME}) as broken:
        response = broken.post(TRACK, json={"events": [_action(shop)]})
        assert_error(response, 503, "temporarily_unavailable")
        assert response.headers["Retry-After"] == "1"
        # bots and bad batches need no broker
        bot = broken.post(TRACK, json={"events": [_action(shop)]}, headers={"User-Agent": ""})
        assert bot.json() == {"accepted": 0, "filtered": 1}
        # the broker comes back (here: the right address): the next request goes through
        app.state.aq.settings = settings.model_copy(update={"analytics_publish_timeout_s": 5.0})
        assert broken.post(TRACK, json={"events": [_action(shop)]}).status_code == 202
