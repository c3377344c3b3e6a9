"""The payment state machine, exactly as seed 001 draws it, and how a provider's report of a
later state is reached through it."""

from __future__ import annotations

from domain.errors import InvalidState
from domain.payment.models import PaymentStatus

P = PaymentStatus

TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.PENDING: frozenset({P.PROCESSING}),
    P.PROCESSING: frozenset({P.COMPLETED, P.FAILED}),
    P.COMPLETED: frozenset({P.REFUNDED, P.PARTIALLY_REFUNDED}),
    P.PARTIALLY_REFUNDED: frozenset({P.REFUNDED}),
    P.FAILED: frozenset(),
    P.REFUNDED: frozenset(),
}

# States in which money was taken: the payment counts towards its registration and refunds.
PAID = frozenset({P.COMPLETED, P.PARTIALLY_REFUNDED, P.REFUNDED})
REFUNDABLE = frozenset({P.COMPLETED, P.PARTIALLY_REFUNDED})
OPEN = frozenset({P.PENDING, P.PROCESSING})


def check_transition(current: PaymentStatus, target: PaymentStatus) -> None:
    """Raise ``InvalidState`` (409, ``details.status`` = the current state) unless legal."""
    if target not in TRANSITIONS[current]:
        raise InvalidState(
            f"A {current.value} payment cannot become {target.value}",
            details={"status": current.value, "requested": target.value},
        )


def path_to(current: PaymentStatus, reported: PaymentStatus) -> list[PaymentStatus]:
    """The legal steps from ``current`` to the outcome a provider reports; empty when the report
    is stale (a late "processing" after "completed") or contradicts a final state.

    Providers skip states (a card payment succeeds without a "processing" event), so a
    reported completion of a pending payment goes through processing, as the machine demands.
    """
    if reported == current:
        return []
    if reported == P.PROCESSING:
        return [P.PROCESSING] if current == P.PENDING else []
    if reported in (P.COMPLETED, P.FAILED):
        if current == P.PENDING:
            return [P.PROCESSING, reported]
        if current == P.PROCESSING:
            return [reported]
        return []
    raise ValueError(f"providers report processing, completed or failed, not {reported}")


def after_refund(amount: int, amount_refunded: int) -> PaymentStatus:
    """The state a paid payment is in once ``amount_refunded`` of its ``amount`` went back."""
    if amount_refunded == 0:
        return P.COMPLETED
    return P.REFUNDED if amount_refunded >= amount else P.PARTIALLY_REFUNDED
