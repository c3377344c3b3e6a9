"""The payment state machine, exactly as seed 001 draws it (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidState
from domain.payment.models import PaymentStatus as P
from domain.payment.states import TRANSITIONS, after_refund, check_transition, path_to

SEED_001 = {
    (P.PENDING, P.PROCESSING),
    (P.PROCESSING, P.COMPLETED),
    (P.PROCESSING, P.FAILED),
    (P.COMPLETED, P.REFUNDED),
    (P.COMPLETED, P.PARTIALLY_REFUNDED),
    (P.PARTIALLY_REFUNDED, P.REFUNDED),
}


def test_the_transitions_are_seed_001s() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == SEED_001
    assert set(TRANSITIONS) == set(P)


@pytest.mark.parametrize("current", list(P))
@pytest.mark.parametrize("target", list(P))
def test_illegal_transitions_are_refused_with_the_current_state(current: P, target: P) -> None:
    if (current, target) in SEED_001:
        check_transition(current, target)
        return
    with pytest.raises(InvalidState) as refused:
        check_transition(current, target)
    assert refused.value.code == "invalid_state"
    assert refused.value.details == {"status": current.value, "requested": target.value}


REPORTS = [P.PROCESSING, P.COMPLETED, P.FAILED]


@given(current=st.sampled_from(list(P)), reported=st.sampled_from(REPORTS))
def test_a_report_is_reached_by_legal_steps_or_not_at_all(current: P, reported: P) -> None:
    steps = path_to(current, reported)
    state = current
    for step in steps:
        check_transition(state, step)
        state = step
    assert state == (reported if steps else current)


def test_late_and_contradicting_reports_change_nothing() -> None:
    assert path_to(P.COMPLETED, P.PROCESSING) == []
    assert path_to(P.REFUNDED, P.COMPLETED) == []
    assert path_to(P.FAILED, P.COMPLETED) == []
    assert path_to(P.COMPLETED, P.FAILED) == []
    assert path_to(P.PENDING, P.COMPLETED) == [P.PROCESSING, P.COMPLETED]
    assert path_to(P.PENDING, P.FAILED) == [P.PROCESSING, P.FAILED]


@given(amount=st.integers(1, 10**9), data=st.data())
def test_the_refunded_amount_decides_the_state(amount: int, data) -> None:
    refunded = data.draw(st.integers(0, amount))
    state = after_refund(amount, refunded)
    if refunded == 0:
        assert state == P.COMPLETED
    elif refunded < amount:
        assert state == P.PARTIALLY_REFUNDED
    else:
        assert state == P.REFUNDED
