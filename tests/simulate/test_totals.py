"""The generator's totals, read from the API's answers, equal what the transactional tables hold
after a small scenario against the API served over HTTP (payment workers delivering the
sandbox's webhooks, a sweeper offering freed seats to the waitlist)."""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import Engine, text

from aqstream.simulate import Simulation, build_plan
from tests.simulate.conftest import Platform, verification_key


def database_totals(engine: Engine, event_ids: list[str]) -> dict[str, dict]:
    """Per event, what the tables say (as the owner: every tenant)."""
    q = {
        "registrations": "SELECT event_id, count(*) FROM registrations GROUP BY 1",
        "seats": "SELECT event_id, sum(quantity) FROM registrations GROUP BY 1",
        "confirmations": "SELECT event_id, count(*) FROM registrations "
        "WHERE confirmed_at IS NOT NULL GROUP BY 1",
        "cancellations": "SELECT event_id, count(*) FROM registrations "
        "WHERE cancelled_at IS NOT NULL GROUP BY 1",
        "check_ins": "SELECT r.event_id, count(*) FROM check_ins c "
        "JOIN registrations r ON r.id = c.registration_id GROUP BY 1",
        "reservations": "SELECT event_id, count(*) FROM reservations GROUP BY 1",
        "waitlist_joined": "SELECT event_id, count(*) FROM waitlist_entries GROUP BY 1",
        "waitlist_left": "SELECT event_id, count(*) FROM waitlist_entries "
        "WHERE status <> 'waiting' GROUP BY 1",
        "payments_failed": "SELECT event_id, count(*) FROM payments WHERE status = 'failed' "
        "GROUP BY 1",
    }
    out: dict[str, dict] = {
        e: {k: 0 for k in q}
        | {"payments": defaultdict(dict), "refunds": defaultdict(lambda: defaultdict(dict))}
        for e in event_ids
    }
    with engine.connect() as conn:
        for name, sql in q.items():
            for event_id, n in conn.execute(text(sql)):
                if str(event_id) in out:
                    out[str(event_id)][name] = int(n)
        paid = conn.execute(
            text(
                "SELECT event_id, currency, purpose, count(*), sum(amount) FROM payments "
                "WHERE status IN ('completed', 'partially_refunded', 'refunded') GROUP BY 1, 2, 3"
            )
        )
        for event_id, currency, purpose, n, amount in paid:
            if str(event_id) in out:
                out[str(event_id)]["payments"][currency][purpose] = {
                    "count": int(n), "amount": int(amount)
                }  # fmt: skip
        refunded = conn.execute(
            text(
                "SELECT p.event_id, f.currency, p.purpose, count(*), sum(f.amount) FROM refunds f "
                "JOIN payments p ON p.id = f.payment_id WHERE f.status = 'succeeded' "
                "GROUP BY 1, 2, 3"
            )
        )
        for event_id, currency, purpose, n, amount in refunded:
            if str(event_id) in out:
                out[str(event_id)]["refunds"][currency][purpose] = {
                    "count": int(n), "amount": int(amount)
                }  # fmt: skip
    return {e: {k: v if isinstance(v, int) else _plain(v) for k, v in t.items()}
            for e, t in out.items()}  # fmt: skip


def _plain(value):
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, dict) else value


COMPARED = (
    "registrations",
    "seats",
    "confirmations",
    "cancellations",
    "check_ins",
    "reservations",
    "waitlist_joined",
    "waitlist_left",
    "payments_failed",
)


@pytest.mark.slow
def test_the_generators_totals_equal_the_transactional_tables(
    platform: Platform, admin_account, owner_engine
) -> None:
    plan = build_plan(2034, "small")  # its first 40 visits fail a payment and a remainder
    outcomes = []

    def script(outcome: str) -> None:
        outcomes.append(outcome)
        platform.sandbox.script(outcome)

    # Every fourth participant signs up with Telegram, as `aqstream demo --telegram` does.
    sim = Simulation(
        plan, platform.url, admin=admin_account, script_outcome=script, progress=False,
        telegram_bot_token=platform.settings.telegram_bot_token,
        verification_key=verification_key(platform.settings),
    )  # fmt: skip
    try:
        sim.setup()
        sim.run(40)
        sim.settle(timeout_s=60)
    finally:
        sim.close()
    totals = sim.totals()
    assert totals["outcomes"].get("visit_failed", 0) == 0, totals["outcomes"]
    assert "unsettled_at_end" not in totals["outcomes"]
    assert totals["visits"] == 40
    # Events carry the plan's plausible titles, nothing of the run's (issue N, item 10).
    assert sorted(e["title"] for e in sim.events.values()) == sorted(e.title for e in plan.events)
    telegram_ids = [a.telegram_id for a in sim._participants.values() if a.telegram_id]
    assert telegram_ids and all(a.user_id for a in sim._participants.values())
    with owner_engine.connect() as conn:
        linked = conn.execute(
            text("SELECT count(*) FROM users WHERE telegram_id = ANY(:ids) AND email IS NULL"),
            {"ids": telegram_ids},
        ).scalar_one()
    assert linked == len(telegram_ids)  # signed up through POST /auth/telegram
    event_ids = [e["id"] for e in sim.events.values()]
    expected = database_totals(owner_engine, event_ids)
    for event_id in event_ids:
        mine = totals["events"].get(event_id)
        db = expected[event_id]
        if mine is None:  # nobody went past looking at it: nothing in the tables either
            assert all(db[k] == 0 for k in COMPARED) and not db["payments"], (event_id, db)
            continue
        assert {k: mine[k] for k in COMPARED} == {k: db[k] for k in COMPARED}, event_id
        assert mine["payments"] == db["payments"], event_id
        assert mine["refunds"] == db["refunds"], event_id
    everything = totals["all"]
    # The scenario did what it promises: each of these happened at least once.
    for counter in ("registrations", "confirmations", "cancellations", "check_ins",
                    "waitlist_joined", "payments_failed"):  # fmt: skip
        assert everything[counter] > 0, counter
    assert totals["outcomes"].get("sold_out", 0) > 0  # the flash sale
    assert everything["waitlist_left"] > 0  # an offer of a freed seat
    assert {"EUR", "RUB"} <= set(everything["payments"])
    purposes = {p for by in everything["payments"].values() for p in by}
    assert {"full", "deposit"} <= purposes
    assert everything["refunds"]
    # Without a stream worker every payment is one the generator made: the scripted outcomes
    # are exactly the payments' (a failed remainder was tried again).
    assert outcomes.count("failed") == everything["payments_failed"] >= 2
