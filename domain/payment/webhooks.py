"""Provider webhooks: verified first, applied once, in the payment's tenant.

1. The provider checks the signature and reads the event (``WebhookRejected`` otherwise: 400,
   logged, nothing read from or written to the database).
2. The payment is found by the provider's reference through ``payment_by_reference()``, a
   ``SECURITY DEFINER`` function answering only its id and tenant; the transaction then enters
   that tenant, so everything after runs under row level security like any tenant request.
3. The provider's event id is recorded in the inbox (consumer ``webhook.<provider>``), in the
   same transaction as the effect: a duplicate delivery finds it there and changes nothing.
4. The fact is applied through the state machine: a report older than the payment's state
   (a late "processing" after "completed") changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Literal

import structlog
from sqlalchemy import select, text

from domain.db.base import add_unique, uuid7
from domain.errors import Conflict, ValidationFailed
from domain.payment import service
from domain.payment.errors import UnknownPayment, WebhookRejected
from domain.payment.models import Payment, Refund, RefundStatus
from domain.payment.providers import Providers
from domain.payment.providers.base import (
    IgnoredFact,
    MalformedWebhook,
    PaymentFact,
    RefundFact,
    RefundOutcome,
    SignatureError,
)
from domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

# Provider event ids are the provider's strings ("evt_..."); the inbox keys events by UUID.
WEBHOOK_NAMESPACE = uuid.UUID("6f1d4c1e-7b1a-5d3c-9a51-2f0c9e8b7d10")

Outcome = Literal["applied", "unchanged", "duplicate", "ignored"]

_FIND = text("SELECT id, tenant_id FROM payment_by_reference(:provider, :ref)")
_RECORD = text(
    "INSERT INTO inbox (consumer, event_id) VALUES (:consumer, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


def inbox_key(provider: str, event_id: str) -> tuple[str, uuid.UUID]:
    """The inbox row of a provider's event: (consumer, event id)."""
    return f"webhook.{provider}", uuid.uuid5(WEBHOOK_NAMESPACE, f"{provider}:{event_id}")


def receive(
    uow: UnitOfWork,
    providers: Providers,
    provider_name: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Outcome:
    """Verify, deduplicate and apply one delivery; answers what became of it."""
    provider = providers.get(provider_name)
    try:
        fact = provider.parse_webhook(headers, body)
    except SignatureError as exc:
        log.warning("webhook_rejected", provider=provider.name, reason=exc.reason, error=str(exc))
        raise WebhookRejected(
            "The webhook signature does not verify", details={"reason": exc.reason}
        ) from None
    except MalformedWebhook as exc:
        log.warning("webhook_malformed", provider=provider.name, error=str(exc))
        raise WebhookRejected("The webhook cannot be read", code="invalid_webhook") from None
    if isinstance(fact, IgnoredFact):
        log.info("webhook_ignored", provider=provider.name, event_id=fact.event_id, type=fact.type)
        return "ignored"
    found = uow.session.execute(
        _FIND, {"provider": provider.name, "ref": fact.payment_reference}
    ).first()
    if found is None:
        log.warning(
            "webhook_unknown_payment", provider=provider.name, reference=fact.payment_reference
        )
        raise UnknownPayment(
            "No payment with this reference is known yet; deliver again later",
            details={"reference": fact.payment_reference},
        )
    payment_id, tenant_id = found
    uow.enter_tenant(tenant_id)
    consumer, event_key = inbox_key(provider.name, fact.event_id)
    if uow.session.execute(_RECORD, {"consumer": consumer, "event_id": event_key}).first() is None:
        log.info("webhook_duplicate", provider=provider.name, event_id=fact.event_id)
        return "duplicate"
    payment = service.get_payment(uow, payment_id, lock=True)
    if isinstance(fact, PaymentFact) and _other_money(payment, fact.amount, fact.currency):
        # Signed, but not this payment's money (1 RUB reported for 25 EUR): not paid. The
        # delivery is received (so not sent again) and the payment flagged for the organizer.
        log.warning(
            "payment_amount_mismatch",
            provider=provider.name,
            event_id=fact.event_id,
            payment_id=str(payment.id),
            expected=f"{payment.amount} {payment.currency}",
            reported=f"{fact.amount} {fact.currency}",
            status=fact.status.value,
        )
        payment.failure_code = "amount_mismatch"
        return "unchanged"
    if isinstance(fact, PaymentFact):
        changed = service.apply_status(uow, payment, fact.status, fact.failure_code)
    else:
        changed = _apply_refund(uow, payment, fact)
    log.info(
        "webhook_applied" if changed else "webhook_unchanged",
        provider=provider.name,
        event_id=fact.event_id,
        payment_id=str(payment.id),
        status=payment.status.value,
    )
    return "applied" if changed else "unchanged"


def _other_money(payment: Payment, amount: int | None, currency: str | None) -> bool:
    """A report naming another amount or currency than the payment's (unnamed: not checked)."""
    return (amount is not None and amount != payment.amount) or (
        currency is not None and currency.upper() != payment.currency
    )


def _check_refund_report(uow: UnitOfWork, payment: Payment, fact: RefundFact) -> None:
    """A refund we did not record must fit in the payment, in its currency; otherwise it is
    refused (422, logged), and nothing of it is stored: a pending refund larger than the payment
    would block every later refund. (Not what is left of it: reports arrive in any order, and a
    refund reported after a full one may be an earlier attempt that failed.)"""
    wrong_currency = fact.currency is not None and fact.currency.upper() != payment.currency
    if wrong_currency or not 0 < fact.amount <= payment.amount:
        log.warning(
            "refund_report_impossible",
            event_id=fact.event_id,
            payment_id=str(payment.id),
            reported=f"{fact.amount} {fact.currency}",
            payment=f"{payment.amount} {payment.currency}",
        )
        raise ValidationFailed(
            "The provider reports a refund this payment cannot have",
            code="impossible_report",
            details={"amount": payment.amount, "currency": payment.currency},
        )


def _apply_refund(uow: UnitOfWork, payment: Payment, fact: RefundFact) -> bool:
    refund = uow.session.scalar(
        select(Refund)
        .where(Refund.payment_id == payment.id, Refund.provider_ref == fact.refund_reference)
        .with_for_update()
    )
    if refund is None and fact.refund_id is not None:
        refund = uow.session.scalar(
            select(Refund)
            .where(Refund.id == fact.refund_id, Refund.payment_id == payment.id)
            .with_for_update()
        )
        if refund is not None and refund.provider_ref is None:
            refund.provider_ref = fact.refund_reference
    if refund is None:
        # A refund we did not record (made in the provider's dashboard, or ours whose
        # transaction is still open: then the insert below waits for it and conflicts).
        _check_refund_report(uow, payment, fact)
        refund = Refund(
            id=fact.refund_id or uuid7(),
            tenant_id=payment.tenant_id,
            payment_id=payment.id,
            user_id=payment.user_id,
            amount=fact.amount,
            currency=payment.currency,
            status=RefundStatus.PENDING,
            reason="provider",
            request_key=f"provider:{fact.refund_reference}"[:255],
            provider_ref=fact.refund_reference,
        )
        add_unique(
            uow.session,
            refund,
            Conflict("This refund is being recorded; deliver again later", code="unknown_payment"),
        )
    elif refund.amount != fact.amount:
        log.warning(
            "refund_amount_mismatch",
            refund_id=str(refund.id),
            recorded=refund.amount,
            reported=fact.amount,
        )
    return service.apply_refund_outcome(
        uow, payment, refund, RefundOutcome(fact.status), fact.failure_code
    )
