"""What a participant's own cancellation gives back, under the event's refund policy.

The organizer sets on the event: refunds until ``refund_days_before_start`` days before the
start (null: cancelling refunds nothing), in full or less a fee, a percent of what was paid
(``paid * percent // 100``: the fee rounds down, in the participant's favour) or a fixed
amount. Pure: the caller passes the time (the API's injected clock), what was paid and what went
or is going back already, so the rule is tested without a database or today's date.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.event.models import Event


class RefundRule(enum.StrEnum):
    FULL = "full"  # before the deadline, no fee
    MINUS_FEE = "minus_fee"  # before the deadline, less the fee
    AFTER_DEADLINE = "after_deadline"  # the deadline passed: nothing
    NO_REFUNDS = "no_refunds"  # the event offers no refund on cancellation
    NOTHING_PAID = "nothing_paid"  # free, or nothing paid yet
    BY_ORGANIZER = "by_organizer"  # an organizer cancelled: refunds are theirs to make
    EVENT_CANCELLED = "event_cancelled"  # the event was cancelled: everything left goes back


@dataclass(frozen=True)
class RefundQuote:
    rule: RefundRule
    amount: int  # what goes back now
    paid: int  # what the registration paid (completed payments)
    fee: int  # what the organizer keeps under the policy
    deadline: datetime | None  # refunds were possible before this moment


def refund_deadline(event: Event) -> datetime | None:
    """The last moment a participant's cancellation refunds anything (None: no policy)."""
    if event.refund_days_before_start is None:
        return None
    return event.starts_at - timedelta(days=event.refund_days_before_start)


def fee_of(event: Event, paid: int) -> int:
    if event.refund_fee_percent is not None:
        return paid * event.refund_fee_percent // 100
    if event.refund_fee_amount is not None:
        return min(paid, event.refund_fee_amount)
    return 0


def quote(event: Event, *, paid: int, refunded: int, now: datetime) -> RefundQuote:
    """The refund of a cancellation at ``now``: what was paid, less the fee, less what was
    already refunded or is being refunded (``refunded``), never below zero."""
    deadline = refund_deadline(event)
    if paid <= 0:
        return RefundQuote(RefundRule.NOTHING_PAID, 0, paid, 0, deadline)
    if deadline is None:
        return RefundQuote(RefundRule.NO_REFUNDS, 0, paid, paid, None)
    if now >= deadline:
        return RefundQuote(RefundRule.AFTER_DEADLINE, 0, paid, paid, deadline)
    fee = fee_of(event, paid)
    amount = max(0, paid - fee - refunded)
    rule = RefundRule.MINUS_FEE if fee else RefundRule.FULL
    return RefundQuote(rule, amount, paid, fee, deadline)
