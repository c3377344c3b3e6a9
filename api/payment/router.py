"""Payments (participants pay, organizers refund), provider webhooks, the sandbox's checkout page.

Errors: 409 `nothing_due`, `payment_in_progress`, `event_cancelled`, `remainder_overdue`,
`invalid_state` (details: `status`), `nothing_to_refund`, `refund_exceeds_paid` (details:
`refundable`); 422 `unknown_provider`; 400 `idempotency_key_required`, `invalid_signature`
(details: `reason`), `invalid_webhook`; 409 `unknown_payment` (a webhook to deliver again
later); 502 `payment_provider_rejected`, 503 `payment_provider_unavailable`. See
docs/payments.md.
"""

from __future__ import annotations

import html
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.responses import HTMLResponse

from api.deps import (
    MANAGE_ROLES,
    AnonymousUowDep,
    Membership,
    UowDep,
    optional_membership,
    require_resource_role,
)
from api.errors import ErrorResponse, responses
from api.middleware.idempotency import IdempotencyKey
from api.pagination import Page
from api.payment.schemas import (
    PROVIDER_PATTERN,
    PaymentCreate,
    PaymentOut,
    RefundCreate,
    RefundOut,
    RefundResult,
    WebhookAck,
)
from core.logging import get_logger
from domain.errors import NotFound
from domain.payment import service, webhooks
from domain.payment.errors import WebhookRejected
from domain.payment.models import Payment
from domain.payment.providers import Providers
from domain.payment.providers.sandbox import SandboxProvider
from domain.payment.runtime import PaymentRuntime
from domain.registration.service import get_registration
from domain.uow import UnitOfWork

log = get_logger(__name__)

router = APIRouter(tags=["payments"])
webhook_router = APIRouter(tags=["webhooks"])
sandbox_router = APIRouter(include_in_schema=False)


async def get_providers(request: Request) -> Providers:
    runtime: PaymentRuntime = request.app.state.payments
    return runtime.providers


ProvidersDep = Annotated[Providers, Depends(get_providers)]
PaymentMember = Annotated[Membership | None, Depends(optional_membership("payments", "payment_id"))]
PaymentManager = Annotated[
    Membership, Depends(require_resource_role("payments", "payment_id", *MANAGE_ROLES))
]
RegistrationMember = Annotated[
    Membership | None, Depends(optional_membership("registrations", "registration_id"))
]

_PROVIDER_ERRORS: dict[int | str, dict] = {
    502: {"model": ErrorResponse, "description": "The payment provider refused the request"},
}


def _out(uow: UnitOfWork, payment: Payment) -> PaymentOut:
    refunds = service.refunds_of(uow, [payment.id])
    return PaymentOut(
        id=payment.id,
        registration_id=payment.registration_id,
        event_id=payment.event_id,
        organization_id=payment.tenant_id,
        purpose=payment.purpose,
        provider=payment.provider,
        provider_reference=payment.provider_ref,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        amount_refunded=payment.amount_refunded,
        refundable=service.refundable(uow, payment),
        checkout_url=payment.checkout_url,
        client_secret=payment.client_secret if payment.user_id == uow.user_id else None,
        failure_code=payment.failure_code,
        created_at=payment.created_at,
        completed_at=payment.completed_at,
        refunds=[RefundOut.model_validate(r) for r in refunds],
    )


@router.post(
    "/payments",
    response_model=PaymentOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": PaymentOut, "description": "A payment of the registration is already "
              "in progress: that one"},
        **responses(400, 401, 404, 409),
        **_PROVIDER_ERRORS,
    },
)  # fmt: skip
def create_payment(
    body: PaymentCreate,
    uow: UowDep,
    key: IdempotencyKey,
    providers: ProvidersDep,
    response: Response,
) -> PaymentOut:
    """Pay what one of your registrations owes now: the full price, the deposit, or (after the
    deposit) the remainder. Requires `X-Idempotency-Key`. The payment completes asynchronously:
    follow `checkout_url` (or confirm with `client_secret`), then watch its `status`."""
    payment, created = service.initiate_payment(
        uow,
        providers,
        body.registration_id,
        payer_id=uow.user_id,
        provider=body.provider,
        request_key=key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return _out(uow, payment)


@router.get("/payments/{payment_id}", response_model=PaymentOut, responses=responses(401, 404))
def get_payment(payment_id: uuid.UUID, member: PaymentMember, uow: UowDep) -> PaymentOut:
    """A payment: the payer's own, or any of the organization's (its members)."""
    return _out(uow, service.get_payment(uow, payment_id))


@router.get(
    "/registrations/{registration_id}/payments",
    response_model=Page[PaymentOut],
    responses=responses(401, 404),
)
def registration_payments(
    registration_id: uuid.UUID, member: RegistrationMember, uow: UowDep
) -> Page[PaymentOut]:
    """The payments of a registration, oldest first: the participant's own, or the
    organization's (a short list: answered whole)."""
    registration = get_registration(uow, registration_id)
    return Page[PaymentOut].whole(_out(uow, p) for p in service.payments_of(uow, registration.id))


@router.post(
    "/payments/{payment_id}/refund",
    response_model=RefundResult,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 404, 409),
)
def refund_payment(
    payment_id: uuid.UUID,
    member: PaymentManager,
    key: IdempotencyKey,
    uow: UowDep,
    providers: ProvidersDep,
    body: RefundCreate | None = None,
) -> RefundResult:
    """Refund a payment in full or in part (owners and moderators); refunds together never
    exceed what was paid. Requires `X-Idempotency-Key`. The refund settles asynchronously
    (`status`); a provider that cannot be reached now gets it later (`requested`)."""
    refund = service.refund_payment(
        uow,
        providers,
        payment_id,
        amount=body.amount if body else None,
        note=body.note if body else None,
        request_key=key,
        requested_by=member.user_id,
    )
    payment = service.get_payment(uow, payment_id)
    return RefundResult(**RefundOut.model_validate(refund).model_dump(), payment=_out(uow, payment))


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


@webhook_router.post(
    "/webhooks/{provider}",
    response_model=WebhookAck,
    responses=responses(400, 404, 409),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The provider's event, exactly as it signed it",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
def receive_webhook(
    provider: Annotated[str, Path(pattern=PROVIDER_PATTERN)],
    request: Request,
    body: RawBody,
    uow: AnonymousUowDep,
    providers: ProvidersDep,
) -> WebhookAck:
    """A payment provider reports an outcome. Authenticated by its signature (400
    `invalid_signature` otherwise, nothing changes); each event is applied once (a repeat
    answers `duplicate`), and out-of-order reports change nothing."""
    try:
        outcome = webhooks.receive(uow, providers, provider, request.headers, body)
    except RecursionError:
        # JSON nested deeper than the parser's recursion (a signed body: parsed after the
        # signature verified). Unreadable, like any malformed event: 400, one warning.
        log.warning("webhook_malformed", provider=provider, error="JSON nested too deeply")
        raise WebhookRejected("The webhook cannot be read", code="invalid_webhook") from None
    return WebhookAck(outcome=outcome)


@sandbox_router.get("/sandbox/checkout/{reference}", response_class=HTMLResponse)
def sandbox_checkout(reference: str, providers: ProvidersDep) -> HTMLResponse:
    """The sandbox provider's checkout page (no money moves; the outcome follows by itself)."""
    try:
        sandbox = providers.get("sandbox")
    except NotFound:
        sandbox = None
    view = sandbox.checkout(reference) if isinstance(sandbox, SandboxProvider) else None
    if view is None:
        return HTMLResponse("<h1>No such sandbox payment</h1>", status_code=404)
    amount = f"{view['amount'] / 100:.2f} {html.escape(view['currency'])}"
    return HTMLResponse(
        "<!doctype html><title>AqStream sandbox checkout</title>"
        f"<h1>Sandbox checkout</h1><p>Payment <code>{html.escape(view['reference'])}</code> "
        f"of <strong>{amount}</strong>.</p><p>This is the sandbox provider: no money moves. "
        f"The outcome is reported to AqStream by webhook in about {view['delay_s']:g} s.</p>"
    )
