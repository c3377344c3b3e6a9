"""The sharded seat counters (migration 0023) against a single counter, on the real database.

A property test drives random claims, releases and resizes through the SQL functions and
compares every answer and every total with a one-row model; a concurrency test has many
connections take the last seats at once: no oversell, and a refusal only when the total room
could not fit the quantity.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from core.settings import Settings
from tests.factories import Organizer

SHARDS = 16


@pytest.fixture(scope="module")
def venue(client, api, admin) -> dict:
    """A published event (no event-wide capacity) to hang counters on: its tenant and id."""
    organizer = Organizer(client, api, admin)
    event, _ = organizer.published_event(capacity=1)
    return {"tenant": event["organization_id"], "event": event["id"]}


def _shards(conn: Connection, counter: uuid.UUID) -> list[tuple[int, int, int]]:
    return [
        tuple(r)
        for r in conn.execute(
            text(
                "SELECT shard, capacity, sold FROM seat_counters"
                " WHERE counter_id = :c ORDER BY shard"
            ),
            {"c": counter},
        )
    ]


# --- against a single counter -------------------------------------------------------------------

claim = st.tuples(st.just("claim"), st.integers(1, 12))
release = st.tuples(st.just("release"), st.integers(0, 1_000))  # which held claim
resize = st.tuples(st.just("resize"), st.integers(0, 60))
operations = st.lists(st.one_of(claim, claim, release, resize), max_size=50)


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(capacity=st.integers(0, 50), ops=operations)
def test_shards_answer_as_one_counter(
    owner_engine: Engine, venue: dict, capacity: int, ops: list[tuple[str, int]]
) -> None:
    counter = uuid.uuid4()
    sold = 0  # the model: one counter, (capacity, sold)
    held: list[tuple[int, int]] = []  # (shard, quantity) of each claim not given back
    with owner_engine.connect() as conn, conn.begin():
        conn.execute(
            text("SELECT seat_counter_open(:t, :e, :c, :n, 0)"),
            {"t": venue["tenant"], "e": venue["event"], "c": counter, "n": capacity},
        )
        for op, arg in ops:
            if op == "claim":
                shard = conn.scalar(text("SELECT seat_take(:c, :q)"), {"c": counter, "q": arg})
                fits = sold + arg <= capacity
                assert (shard is not None) == fits, (
                    op,
                    arg,
                    capacity,
                    sold,
                    _shards(conn, counter),
                )
                if fits:
                    assert 0 <= shard < SHARDS
                    sold += arg
                    held.append((shard, arg))
            elif op == "release" and held:
                shard, quantity = held.pop(arg % len(held))
                conn.execute(
                    text("SELECT seat_give(:c, :q, :s)"), {"c": counter, "q": quantity, "s": shard}
                )
                sold -= quantity
            elif op == "resize":
                nested = conn.begin_nested()
                try:
                    conn.execute(
                        text("SELECT seat_counter_resize(:c, :n)"), {"c": counter, "n": arg}
                    )
                except DBAPIError:
                    nested.rollback()
                    assert arg < sold, "a resize to at least what is sold was refused"
                else:
                    nested.commit()
                    assert arg >= sold, "a resize below what is sold was accepted"
                    capacity = arg
            shards = _shards(conn, counter)
            assert len(shards) == SHARDS
            assert sum(s[1] for s in shards) == capacity
            assert sum(s[2] for s in shards) == sold
            assert all(0 <= s[2] <= s[1] for s in shards)
            # every shard holds exactly the seats it gave and that are still out
            given_by = [0] * SHARDS
            for shard, quantity in held:
                given_by[shard] += quantity
            assert [s[2] for s in shards] == given_by
        conn.rollback()


def test_a_capacity_of_one_lives_in_one_shard(owner_engine: Engine, venue: dict) -> None:
    counter = uuid.uuid4()
    with owner_engine.connect() as conn, conn.begin():
        conn.execute(
            text("SELECT seat_counter_open(:t, :e, :c, 1, 0)"),
            {"t": venue["tenant"], "e": venue["event"], "c": counter},
        )
        assert [s[1] for s in _shards(conn, counter)] == [1] + [0] * (SHARDS - 1)
        take = text("SELECT seat_take(:c, 1)")
        assert conn.scalar(take, {"c": counter}) == 0
        assert conn.scalar(take, {"c": counter}) is None
        conn.rollback()


def test_room_moves_to_fit_a_quantity_no_single_shard_holds(
    owner_engine: Engine, venue: dict
) -> None:
    counter = uuid.uuid4()
    with owner_engine.connect() as conn, conn.begin():
        conn.execute(
            text("SELECT seat_counter_open(:t, :e, :c, 32, 0)"),
            {"t": venue["tenant"], "e": venue["event"], "c": counter},
        )
        shard = conn.scalar(text("SELECT seat_take(:c, 7)"), {"c": counter})  # 2 per shard
        shards = _shards(conn, counter)
        assert shards[shard][1:] == (7, 7)
        assert sum(s[1] for s in shards) == 32
        assert conn.scalar(text("SELECT seat_take(:c, 26)"), {"c": counter}) is None
        assert conn.scalar(text("SELECT seat_take(:c, 25)"), {"c": counter}) is not None
        assert sum(s[2] for s in _shards(conn, counter)) == 32
        conn.rollback()


# --- many at once -------------------------------------------------------------------------------


@dataclass
class Tally:
    taken: int = 0
    refused: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_the_last_seats_never_oversell_and_refusals_mean_no_room(
    client, api, admin, settings: Settings, owner_engine: Engine
) -> None:
    """24 connections, each claiming 2 to 5 seats at a time until it is refused, take the seats
    of a ticket type of 61 seats in an event of 53. Every shard stays within its capacity; the
    seats taken match the counters; no claim was refused while its quantity still fitted (sold
    only grows here, so the room at the end bounds the room at any refusal)."""
    organizer = Organizer(client, api, admin)
    event, tt = organizer.published_event(capacity=61)
    updated = client.put(
        f"/api/v1/events/{event['id']}", json={"capacity": 53}, headers=organizer.owner["headers"]
    )
    assert updated.status_code == 200, updated.text
    dsn = settings.owner_url.set(drivername="postgresql").render_as_string(hide_password=False)
    tally = Tally()
    start = threading.Barrier(24)

    def claimer(quantity: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT set_config('app.tenant_id', %s, false)", (event["organization_id"],)
            )
            start.wait()
            while True:
                try:
                    row = conn.execute(
                        "SELECT claim_seats(%s, %s, true)", (tt["id"], quantity)
                    ).fetchone()
                except psycopg.Error as exc:  # a deadlock or a broken CHECK: a failure
                    with tally.lock:
                        tally.errors.append(repr(exc))
                    return
                with tally.lock:
                    if row[0] != "ok":
                        tally.refused.append((row[0], quantity))
                        return
                    tally.taken += quantity

    threads = [threading.Thread(target=claimer, args=(2 + i % 4,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not tally.errors, "\n".join(tally.errors[:2])
    with owner_engine.connect() as conn:
        tt_shards = _shards(conn, uuid.UUID(tt["id"]))
        event_shards = _shards(conn, uuid.UUID(event["id"]))
    assert all(0 <= sold <= capacity for _, capacity, sold in tt_shards + event_shards)
    assert sum(s[1] for s in tt_shards) == 61
    assert sum(s[1] for s in event_shards) == 53
    tt_sold = sum(s[2] for s in tt_shards)
    assert tt_sold == sum(s[2] for s in event_shards) == tally.taken
    room = 53 - tt_sold
    assert room < 2  # the smallest quantity was refused
    assert len(tally.refused) == 24
    assert {verdict for verdict, _ in tally.refused} == {"event_full"}
    assert all(quantity > room for _, quantity in tally.refused), (room, tally.refused)
