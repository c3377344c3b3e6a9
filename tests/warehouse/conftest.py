"""Warehouse fixtures: facts made to order and a snapshot of every rollup of a tenant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from domain.analytics.facts import Fact, FactKind
from warehouse.rollups import GRAINS, ROLLUPS

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # inside a monthly partition


def fact(kind: FactKind, tenant: uuid.UUID, event: uuid.UUID, at: datetime, **fields) -> Fact:
    if kind in (FactKind.PAGE_VIEW, FactKind.TICKET_SELECTED, FactKind.CHECKOUT_STARTED):
        fields.setdefault("visitor_id", "v1")
        fields.setdefault("source", "newsletter")
        fields.setdefault("device", "mobile")
    if kind in (FactKind.PAYMENT, FactKind.REFUND):
        fields.setdefault("currency", "EUR")
        fields.setdefault("amount", 1000)
    if kind == FactKind.PAYMENT:
        fields.setdefault("purpose", "full")
    return Fact(
        fact_id=fields.pop("fact_id", uuid.uuid4()),
        kind=kind,
        tenant_id=tenant,
        event_id=event,
        occurred_at=at,
        **fields,
    )


def scenario(tenant: uuid.UUID, event: uuid.UUID, ticket_type: uuid.UUID) -> list[Fact]:
    """A varied morning: views by three visitors (some repeated within 30 min, some after),
    the funnel, money in two currencies and purposes, a refund, check-ins, the waitlist."""
    m = timedelta(minutes=1)
    facts = []
    for i, (visitor, minute) in enumerate(
        [("a", 0), ("a", 10), ("b", 10), ("a", 45), ("c", 59), ("b", 61), ("a", 76), ("c", 200)]
    ):
        facts.append(
            fact(
                FactKind.PAGE_VIEW,
                tenant,
                event,
                T0 + minute * m + timedelta(seconds=i),
                visitor_id=visitor,
                source=["newsletter", "direct", "twitter"][i % 3],
                device=["mobile", "desktop"][i % 2],
            )
        )
    facts += [
        fact(FactKind.TICKET_SELECTED, tenant, event, T0 + 11 * m, ticket_type_id=ticket_type),
        fact(FactKind.CHECKOUT_STARTED, tenant, event, T0 + 12 * m, ticket_type_id=ticket_type),
        fact(
            FactKind.RESERVATION, tenant, event, T0 + 12 * m, ticket_type_id=ticket_type, quantity=2
        ),
        fact(
            FactKind.REGISTRATION,
            tenant,
            event,
            T0 + 13 * m,
            ticket_type_id=ticket_type,
            quantity=2,
        ),
        fact(FactKind.REGISTRATION, tenant, event, T0 + 62 * m, ticket_type_id=ticket_type),
        fact(FactKind.REGISTRATION, tenant, event, T0 + 25 * 60 * m),  # next day, no ticket type
        fact(FactKind.PAYMENT, tenant, event, T0 + 14 * m, ticket_type_id=ticket_type, amount=4900),
        fact(
            FactKind.PAYMENT,
            tenant,
            event,
            T0 + 63 * m,
            ticket_type_id=ticket_type,
            amount=1000,
            purpose="deposit",
        ),
        fact(
            FactKind.PAYMENT,
            tenant,
            event,
            T0 + 64 * m,
            ticket_type_id=ticket_type,
            amount=3900,
            purpose="remainder",
        ),
        fact(FactKind.PAYMENT, tenant, event, T0 + 64 * m, amount=2500, currency="USD"),
        fact(FactKind.REFUND, tenant, event, T0 + 90 * m, ticket_type_id=ticket_type, amount=900),
        fact(
            FactKind.CONFIRMATION,
            tenant,
            event,
            T0 + 14 * m,
            ticket_type_id=ticket_type,
            quantity=2,
        ),
        fact(FactKind.CANCELLATION, tenant, event, T0 + 90 * m, ticket_type_id=ticket_type),
        fact(
            FactKind.CHECKIN,
            tenant,
            event,
            T0 + 26 * 60 * m,
            ticket_type_id=ticket_type,
            quantity=2,
        ),
        fact(FactKind.WAITLIST_JOINED, tenant, event, T0 + 20 * m),
        fact(FactKind.WAITLIST_JOINED, tenant, event, T0 + 21 * m),
        fact(FactKind.WAITLIST_LEFT, tenant, event, T0 + 30 * m),
    ]
    return facts


def in_tenant(session: Session, tenant: uuid.UUID) -> None:
    session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})


def snapshot(session: Session, tenant: uuid.UUID) -> dict[str, list[tuple]]:
    """Every rollup row of ``tenant``, per relation, in a stable order (a warehouse-role
    session: the relations are tables, or continuous aggregates under TimescaleDB)."""
    out = {}
    for rollup in ROLLUPS:
        for grain in GRAINS:
            rows = session.execute(
                text(f"SELECT * FROM {rollup.table(grain)} WHERE tenant_id = :t"), {"t": tenant}
            ).all()
            out[rollup.table(grain)] = sorted(tuple(map(str, r)) for r in rows)
    return out
