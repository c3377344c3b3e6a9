"""Overload: a request that cannot get its rows in time is shed with 503 + Retry-After (nothing
written), and the seat counter is taken together with the COMMIT, so a refusal at that point
still rolls back everything the request wrote."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from core.settings import Settings
from tests.factories import Organizer, assert_error, register


@pytest.fixture(scope="module")
def impatient_client(settings: Settings) -> Iterator[TestClient]:
    """The API with a 300 ms statement timeout."""
    from api.app import create_app

    app = create_app(settings.model_copy(update={"db_statement_timeout_ms": 300}))
    with TestClient(app) as client:
        yield client


def test_a_registration_waiting_too_long_for_the_counter_is_shed_with_503(
    client: TestClient, impatient_client: TestClient, api, admin, owner_engine: Engine
) -> None:
    organizer = Organizer(client, api, admin)
    event, tt = organizer.published_event(capacity=5)
    user = api.register("patient")
    locked, release = threading.Event(), threading.Event()

    def hold_the_counter() -> None:
        with owner_engine.begin() as conn:
            conn.execute(
                text("SELECT 1 FROM ticket_types WHERE id = :id FOR UPDATE"), {"id": tt["id"]}
            )
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_counter)
    holder.start()
    try:
        assert locked.wait(10)
        response = register(impatient_client, event["id"], user, ticket_type_id=tt["id"])
    finally:
        release.set()
        holder.join()

    assert_error(response, 503, "temporarily_unavailable")
    assert response.headers["Retry-After"] == "1"
    with owner_engine.connect() as conn:
        rows = conn.scalar(
            text("SELECT count(*) FROM registrations WHERE user_id = :u"), {"u": user["user"]["id"]}
        )
    assert rows == 0
    assert organizer.sold(event["id"], tt["id"]) == 0
    # The counter is free again: the same request now succeeds.
    retry = register(client, event["id"], user, ticket_type_id=tt["id"])
    assert retry.status_code == 201, retry.text
    assert organizer.sold(event["id"], tt["id"]) == 1


def test_a_refusal_sent_with_the_commit_rolls_back_the_whole_request(
    client: TestClient, api, admin, owner_engine: Engine
) -> None:
    """The last seat goes to someone else between the service's checks and the commit: the
    registration row and its outbox events, already written, must not survive."""
    organizer = Organizer(client, api, admin)
    event, tt = organizer.published_event(capacity=1)
    user = api.register("late")
    # Sell the seat behind the API's back, so its own checks still see it free.
    with owner_engine.begin() as conn:
        conn.execute(
            text("UPDATE seat_counters SET sold = capacity WHERE counter_id = :id"),
            {"id": tt["id"]},
        )

    response = register(client, event["id"], user, ticket_type_id=tt["id"])

    assert_error(response, 409, "sold_out")
    with owner_engine.connect() as conn:
        rows = conn.scalar(
            text("SELECT count(*) FROM registrations WHERE user_id = :u"), {"u": user["user"]["id"]}
        )
        events = conn.scalar(
            text(
                "SELECT count(*) FROM outbox "
                "WHERE aggregate_type = 'registration' AND payload->>'user_id' = :u"
            ),
            {"u": user["user"]["id"]},
        )
    assert rows == 0
    assert events == 0
