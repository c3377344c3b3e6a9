"""Request and response bodies of payments, refunds and webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.types import RequestModel
from domain.payment.models import PaymentPurpose, PaymentStatus, RefundStatus

PROVIDER_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class PaymentCreate(RequestModel):
    registration_id: uuid.UUID
    provider: str | None = Field(
        default=None,
        pattern=PROVIDER_PATTERN,
        description="`sandbox` or `stripe` (those enabled); default: the platform's default",
    )


class RefundCreate(RequestModel):
    amount: int | None = Field(
        default=None,
        ge=1,
        le=10**12,
        description="Minor units; omitted: everything that can still be refunded",
    )
    note: str | None = Field(default=None, max_length=500)


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    payment_id: uuid.UUID
    amount: int
    currency: str
    status: RefundStatus = Field(
        description="`requested` (not yet with the provider), `pending`, `succeeded`, `failed`"
    )
    reason: str = Field(
        description="`organizer`, `event_cancelled`, `remainder_unpaid`, "
        "`registration_cancelled` or `provider` (made at the provider)"
    )
    note: str | None
    failure_code: str | None
    created_at: datetime
    succeeded_at: datetime | None


class PaymentOut(BaseModel):
    id: uuid.UUID
    registration_id: uuid.UUID
    event_id: uuid.UUID
    organization_id: uuid.UUID
    purpose: PaymentPurpose = Field(description="`full`, `deposit` or `remainder`")
    provider: str
    provider_reference: str
    status: PaymentStatus
    amount: int = Field(description="Minor units of `currency`")
    currency: str
    amount_refunded: int
    refundable: int = Field(description="What can still be refunded")
    checkout_url: str | None = Field(description="Where the payer completes the payment")
    client_secret: str | None = Field(
        description="For the payer's client (Stripe.js); shown to the payer only"
    )
    failure_code: str | None
    created_at: datetime
    completed_at: datetime | None
    refunds: list[RefundOut]


class RefundResult(RefundOut):
    payment: PaymentOut


class WebhookAck(BaseModel):
    received: Literal[True] = True
    outcome: Literal["applied", "unchanged", "duplicate", "ignored"] = Field(
        description="`applied`; `unchanged` (stale or out of order); `duplicate` (this event was "
        "received before); `ignored` (a type that means nothing here)"
    )
