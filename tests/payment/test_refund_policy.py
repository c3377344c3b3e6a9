"""The refund policy of a participant's own cancellation as a pure rule: no database, no clock
but the one passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.event.models import Event
from domain.payment.refund_policy import RefundRule, quote, refund_deadline

START = datetime(2031, 3, 10, 18, 0, tzinfo=UTC)


def _event(days: int | None = 7, percent: int | None = None, amount: int | None = None) -> Event:
    return Event(
        starts_at=START,
        refund_days_before_start=days,
        refund_fee_percent=percent,
        refund_fee_amount=amount,
    )


def test_the_deadline_is_the_start_less_the_days() -> None:
    assert refund_deadline(_event(7)) == START - timedelta(days=7)
    assert refund_deadline(_event(0)) == START
    assert refund_deadline(_event(None)) is None


@pytest.mark.parametrize(
    ("now", "rule", "amount"),
    [
        (START - timedelta(days=7, seconds=1), RefundRule.FULL, 5000),
        (START - timedelta(days=7), RefundRule.AFTER_DEADLINE, 0),  # the deadline is too late
        (START + timedelta(days=1), RefundRule.AFTER_DEADLINE, 0),
    ],
)
def test_before_and_after_the_deadline(now: datetime, rule: RefundRule, amount: int) -> None:
    result = quote(_event(7), paid=5000, refunded=0, now=now)
    assert (result.rule, result.amount) == (rule, amount)
    assert result.deadline == START - timedelta(days=7)


def test_fees_round_down_and_never_exceed_what_was_paid() -> None:
    early = START - timedelta(days=30)
    percent = quote(_event(7, percent=15), paid=999, refunded=0, now=early)
    assert (percent.rule, percent.fee, percent.amount) == (RefundRule.MINUS_FEE, 149, 850)
    fixed = quote(_event(7, amount=1000), paid=600, refunded=0, now=early)
    assert (fixed.fee, fixed.amount) == (600, 0)
    assert quote(_event(7, amount=1000), paid=5000, refunded=0, now=early).amount == 4000


def test_what_went_back_already_is_subtracted_never_below_zero() -> None:
    early = START - timedelta(days=30)
    assert quote(_event(7, percent=10), paid=5000, refunded=1000, now=early).amount == 3500
    assert quote(_event(7, percent=10), paid=5000, refunded=4800, now=early).amount == 0


def test_no_policy_and_nothing_paid() -> None:
    early = START - timedelta(days=30)
    none = quote(_event(None), paid=5000, refunded=0, now=early)
    assert (none.rule, none.amount, none.fee) == (RefundRule.NO_REFUNDS, 0, 5000)
    free = quote(_event(7), paid=0, refunded=0, now=early)
    assert (free.rule, free.amount) == (RefundRule.NOTHING_PAID, 0)
