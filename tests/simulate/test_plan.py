"""The plan is a function of the seed: the same seed makes the same plan (compared as data, not
timing), another seed another; visits do not depend on how many are asked for; the scenario
covers what the generator promises (every source, every stage, deposits, refunds, check-ins,
two currencies, a flash sale); the 30-minute rule of unique views."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from aqstream.simulate import SCENARIOS, SOURCES, FlashSalePlan, build_plan, unique_views


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_same_plan(scenario: str) -> None:
    assert build_plan(7, scenario).as_dict(200) == build_plan(7, scenario).as_dict(200)


def test_different_seeds_differ() -> None:
    plans = [build_plan(seed, "small").as_dict(100) for seed in (1, 2, 3)]
    assert plans[0] != plans[1] != plans[2] != plans[0]
    assert plans[0]["visits"] != plans[1]["visits"]
    assert plans[0]["events"] != plans[1]["events"]


def test_a_visit_is_the_same_however_many_are_asked_for() -> None:
    plan = build_plan(11, "demo")
    assert list(plan.visits(30)) == list(plan.visits(500))[:30]
    forever = plan.visits(None)
    assert [next(forever) for _ in range(30)] == list(plan.visits(30))


def test_the_demo_scenario_covers_what_the_generator_promises() -> None:
    plan = build_plan(3, "demo")
    visits = list(plan.visits(600))
    assert {v.source for v in visits} == {s.name for s in SOURCES}
    stages = Counter(v.stage for v in visits)
    assert set(stages) == {"view", "selected", "checkout", "reserved", "registered", "paid"}
    assert stages["view"] > stages["paid"] > 0  # drop-off
    types = [t for e in plan.events for t in e.ticket_types]
    assert {t.currency for t in types} == {"EUR", "RUB"}
    assert any(t.price_amount == 0 for t in types) and any(t.deposit_percent for t in types)
    assert len({e.size for e in plan.events}) >= 2
    assert sum(v.payments == ("failed",) for v in visits) > 0
    assert sum(v.payment_mode == "deposit" and v.remainder == ("failed", "succeeded")
               for v in visits) > 0  # fmt: skip
    assert {v.refund for v in visits} >= {"full", "partial"}
    assert sum(v.check_in for v in visits) > 0 and sum(v.cancel for v in visits) > 0
    assert sum(len(v.views) > 1 for v in visits) > 0
    [flash] = plan.flash_sales
    assert len(flash.buyers) > next(
        t.capacity for e in plan.events for t in e.ticket_types if t.key == flash.ticket_type
    )


def test_the_live_stream_adds_flash_sales_with_fresh_buyers() -> None:
    plan = build_plan(4, "demo")
    every = SCENARIOS["demo"].flash_every
    stream = plan.stream(None)
    items = [next(stream) for _ in range(every * 3 + 3)]
    bursts = [i for i in items if isinstance(i, FlashSalePlan)]
    assert len(bursts) == 3 and len({b.ticket_type for b in bursts}) == 3
    assert all(b.new_ticket_type and b.new_ticket_type.flash for b in bursts)
    # the live stream is the same for the same seed, burst for burst
    again = plan.stream(None)
    assert [next(again) for _ in range(len(items))] == items
    # nobody buys twice for one event: bursts and visits draw from the same allocation
    seen = {(fs.event, b) for fs in plan.flash_sales for b in fs.buyers}
    for item in items:
        people = item.buyers if isinstance(item, FlashSalePlan) else (item.participant,)
        for p in people:
            if p is not None:
                assert (item.event, p) not in seen
                seen.add((item.event, p))
    # a finite run has the first flash sale only
    assert not any(isinstance(i, FlashSalePlan) for i in plan.stream(every * 2))


def test_source_dependent_drop_off() -> None:
    visits = list(build_plan(5, "large").visits(4000))

    def conversion(source: str) -> float:
        mine = [v for v in visits if v.source == source]
        return sum(v.stage in ("registered", "paid") for v in mine) / len(mine)

    assert conversion("newsletter") > conversion("telegram") > conversion("vk")


def test_a_participant_registers_once_per_event() -> None:
    plan = build_plan(9, "small")
    seen = set()
    for fs in plan.flash_sales:
        seen |= {(fs.event, b) for b in fs.buyers}
    for v in plan.visits(300):
        if v.participant is not None:
            assert (v.event, v.participant) not in seen
            seen.add((v.event, v.participant))


def test_tracked_times_are_inside_the_hour_and_revisits_are_unique_views() -> None:
    for v in build_plan(13, "demo").visits(500):
        assert all(0 < ago < 56 * 60 for ago in v.views)
        times = sorted(v.views, reverse=True)
        gaps = [a - b for a, b in pairwise(times)]
        # close views within 10 minutes, a revisit more than 30 minutes before them
        assert all(g <= 600 or g > 1800 for g in gaps)
        if v.checkout_at is not None:
            assert v.checkout_at <= v.selected_at <= max(v.views)


def test_each_stage_has_what_it_needs() -> None:
    plan = build_plan(42, "demo")
    price = {t.key: t.price_amount for e in plan.events for t in e.ticket_types}
    for v in plan.visits(1000):
        assert (v.participant is not None) == (v.stage in ("reserved", "registered", "paid"))
        if v.stage == "reserved":
            assert v.via_hold  # a hold, given back
        if v.stage == "paid" and price[v.ticket_type]:
            assert v.payments and v.payment_mode in ("full", "deposit")
        if v.remainder:
            assert v.payment_mode == "deposit" and v.payments == ("succeeded",)


def test_unique_views_by_the_30_minute_rule() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(*minutes: float) -> list[datetime]:
        return [t0 + timedelta(minutes=m) for m in minutes]

    assert unique_views(at(0)) == 1
    assert unique_views(at(0, 10, 29)) == 1
    assert unique_views(at(0, 31)) == 2
    assert unique_views(at(45, 0, 5)) == 2  # order of arrival does not matter
    assert unique_views([]) == 0


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_titles_and_names_look_like_real_ones(scenario: str) -> None:
    """Issue N, item 10: no hashes, "(sim N)" or brackets in what people read; uniqueness lives
    in slugs, e-mails and ids."""
    import re

    from aqstream.simulate.plan import person_name

    plan = build_plan(1, scenario)
    readable = [e.title for e in plan.events] + [o.name for o in plan.organizers]
    readable += [person_name(i) for i in range(plan.participants)]
    for text in readable:
        assert not re.search(r"[\[\]()]|\bsim\b|[0-9a-f]{6,}", text), text
    for o in plan.organizers:
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][A-Za-z ]+", o.name), o.name
    titles = [(e.organizer, e.title) for e in plan.events]
    assert len(set(titles)) == len(titles)  # within an organization, one title per event
    assert len({o.slug for o in plan.organizers}) == len(plan.organizers)
    assert all(o.slug.startswith(f"sim-1-{scenario}-") for o in plan.organizers)
