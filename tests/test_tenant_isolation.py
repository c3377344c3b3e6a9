"""Tenants never see each other's data.

SQL level: every table in the catalog is classified; with tenant A's context the application role
reads, updates and deletes none of tenant B's rows. A table added later without a tenant policy,
or without rows for tenant B here, fails this test until it is covered.

HTTP level: every operation in the OpenAPI schema that takes an id is called by a member of
another tenant with tenant A's ids and answers exactly as for an id that does not exist (404):
no existence leak. New endpoints join by construction.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from core.settings import Settings

# Tables without tenant_id, each with the reason it is not tenant data.
NOT_TENANT_DATA = {
    "alembic_version": "migration bookkeeping",
    "inbox": "consumer bookkeeping (consumer, event id); no business data",
    "users": "platform-wide accounts; RLS: oneself, members of the current tenant, a login's row",
    "organization_requests": "precede the tenant; RLS: the requester and platform admins",
    "notification_preferences": "a user's own settings; RLS: oneself, and the tenant whose events they take part in (to address them)",
}
# Tables scoped to a user rather than a tenant: B's user rows must stay invisible to A's user.
USER_SCOPED = {
    "users": "id",
    "organization_requests": "user_id",
    "notification_preferences": "user_id",
}


@dataclass
class Tenant:
    org: dict
    owner: dict
    moderator: dict
    group: dict
    group_member: dict
    event: dict
    ticket_type: dict
    reservation: dict
    registration: dict
    waitlist_entry: dict
    payment: dict  # paid through the sandbox, partly refunded
    media: dict | None = None  # an image, the event's cover and the organization's logo
    export: dict | None = None  # a queued export of the registrations
    attachment: dict | None = None  # a PDF the event lists


def _tenant(api, client: TestClient, admin: dict, name: str) -> Tenant:
    owner = api.register(f"{name}-owner")
    org = api.found_organization(owner, admin)
    moderator = api.register(f"{name}-moderator")
    invite = client.post(
        f"/api/v1/organizations/{org['id']}/invite",
        json={"email": moderator["email"], "role": "moderator"},
        headers=owner["headers"],
    )
    assert invite.status_code == 201, invite.text
    accepted = client.post(
        "/api/v1/organization-invites/accept",
        json={"token": invite.json()["token"]},
        headers=moderator["headers"],
    )
    assert accepted.status_code == 200, accepted.text
    pending = client.post(
        f"/api/v1/organizations/{org['id']}/invite",
        json={"email": f"pending-{uuid.uuid4().hex[:6]}@example.org", "role": "analyst"},
        headers=owner["headers"],
    )
    assert pending.status_code == 201
    group = client.post(
        f"/api/v1/organizations/{org['id']}/groups", json={"name": "VIP"}, headers=owner["headers"]
    ).json()
    code = client.post(f"/api/v1/groups/{group['id']}/invite", headers=owner["headers"]).json()
    group_member = api.register(f"{name}-guest")
    joined = client.post(
        "/api/v1/group-invites/accept", json={"code": code["code"]}, headers=group_member["headers"]
    )
    assert joined.status_code == 200, joined.text
    # A private event of the group: nobody outside the tenant and its group may even see it.
    h = owner["headers"]
    event = client.post(
        "/api/v1/events",
        json={
            "organization_id": org["id"],
            "title": f"{name} private meetup",
            "starts_at": "2030-06-01T18:00:00+00:00",
            "ends_at": "2030-06-01T21:00:00+00:00",
            "visibility": "private",
            "group_id": group["id"],
        },
        headers=h,
    )
    assert event.status_code == 201, event.text
    event = event.json()
    ticket_type = client.post(
        f"/api/v1/events/{event['id']}/ticket-types",
        json={"name": "Seat", "capacity": 2},
        headers=h,
    ).json()
    assert client.post(f"/api/v1/events/{event['id']}/publish", headers=h).status_code == 200
    guest_h = group_member["headers"]
    reservation = client.post(
        f"/api/v1/events/{event['id']}/reservations",
        json={"ticket_type_id": ticket_type["id"]},
        headers=guest_h,
    )
    assert reservation.status_code == 201, reservation.text
    registration = client.post(
        f"/api/v1/events/{event['id']}/registrations",
        json={"reservation_id": reservation.json()["id"]},
        headers=guest_h,
    )
    assert registration.status_code == 201, registration.text
    # The last seat goes to a second guest, so a third one waits.
    other_guest, waiter = api.register(f"{name}-guest2"), api.register(f"{name}-waiter")
    for guest in (other_guest, waiter):
        code = client.post(f"/api/v1/groups/{group['id']}/invite", headers=h).json()["code"]
        accepted = client.post(
            "/api/v1/group-invites/accept", json={"code": code}, headers=guest["headers"]
        )
        assert accepted.status_code == 200, accepted.text
    second = client.post(
        f"/api/v1/events/{event['id']}/registrations",
        json={"ticket_type_id": ticket_type["id"]},
        headers=other_guest["headers"],
    )
    assert second.status_code == 201, second.text
    entry = client.post(
        f"/api/v1/events/{event['id']}/waitlist",
        json={"ticket_type_id": ticket_type["id"]},
        headers=waiter["headers"],
    )
    assert entry.status_code == 201, entry.text
    checked_in = client.post(
        f"/api/v1/registrations/{registration.json()['id']}/check-in", headers=h
    )
    assert checked_in.status_code == 200, checked_in.text
    # Notifications: the owner's preferences, a message to the event's participants, and a
    # reminder recorded for the event (as the scheduler does, without its outbox event).
    prefs = client.put("/api/v1/notifications/preferences", json={"channel": "email"}, headers=h)
    assert prefs.status_code == 200, prefs.text
    message = client.post(
        "/api/v1/notifications/send",
        json={"event_id": event["id"], "subject": "Doors", "text": "Doors open at 18:00"},
        headers=h,
    )
    assert message.status_code == 202 and message.json()["count"] > 0, message.text
    with api.owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO event_reminders (event_id, tenant_id, starts_at) "
                "SELECT id, tenant_id, starts_at FROM events WHERE id = :id"
            ),
            {"id": event["id"]},
        )
    payment = _paid_and_partly_refunded(api, client, h, group, event)
    return Tenant(
        org, owner, moderator, group, group_member, event, ticket_type,
        reservation.json(), registration.json(), entry.json(), payment,
    )  # fmt: skip


def _paid_and_partly_refunded(api, client: TestClient, h: dict, group: dict, event: dict) -> dict:
    """A group member's paid ticket (through the sandbox), partly refunded: payments, refunds."""
    from tests.factories import paying, refund, settle_sandbox

    paid_type = client.post(
        f"/api/v1/events/{event['id']}/ticket-types",
        json={"name": "Paid", "capacity": 5, "price_amount": 2000},
        headers=h,
    )
    assert paid_type.status_code == 201, paid_type.text
    payer = api.register("payer")
    code = client.post(f"/api/v1/groups/{group['id']}/invite", headers=h).json()["code"]
    joined = client.post(
        "/api/v1/group-invites/accept", json={"code": code}, headers=payer["headers"]
    )
    assert joined.status_code == 200, joined.text
    registration = client.post(
        f"/api/v1/events/{event['id']}/registrations",
        json={"ticket_type_id": paid_type.json()["id"]},
        headers=payer["headers"],
    )
    assert registration.status_code == 201, registration.text
    payment = paying(client, registration.json()["id"], payer)
    settle_sandbox(client)
    refunded = refund(client, payment["id"], {"headers": h}, amount=500)
    assert refunded.status_code == 201, refunded.text
    settle_sandbox(client)
    assert refunded.json()["payment"]["status"] == "completed"
    return payment


def _media(client: TestClient, tenant: Tenant) -> dict:
    """An uploaded image, made the event's cover and the organization's logo."""
    from tests.factories import image_bytes, uploaded_media

    h = tenant.owner["headers"]
    media = uploaded_media(client, tenant.org["id"], tenant.owner, image_bytes())
    cover = client.put(
        f"/api/v1/events/{tenant.event['id']}", json={"cover_media_id": media["id"]}, headers=h
    )
    assert cover.status_code == 200, cover.text
    logo = client.put(
        f"/api/v1/organizations/{tenant.org['id']}/logo", json={"media_id": media["id"]}, headers=h
    )
    assert logo.status_code == 200, logo.text
    return media


def _attachment(client: TestClient, tenant: Tenant) -> dict:
    """A PDF uploaded as an attachment and listed on the tenant's event."""
    from tests.factories import uploaded_media
    from tests.media.images import pdf_bytes

    doc = uploaded_media(client, tenant.org["id"], tenant.owner, pdf_bytes(), purpose="attachment")
    response = client.post(
        f"/api/v1/events/{tenant.event['id']}/attachments",
        json={"media_id": doc["id"], "title": "Programme"},
        headers=tenant.owner["headers"],
    )
    assert response.status_code == 201, response.text
    return response.json()


def _export(client: TestClient, tenant: Tenant) -> dict:
    """A queued export of the organization's registrations (nobody runs it here)."""
    response = client.post(
        "/api/v1/analytics/export",
        json={"organization_id": tenant.org["id"], "dataset": "registrations", "format": "csv"},
        headers=tenant.owner["headers"],
    )
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture(scope="module")
def tenants(
    api, client: TestClient, admin: dict, warehouse_engine: Engine
) -> tuple[Tenant, Tenant]:
    pair = _tenant(api, client, admin, "a"), _tenant(api, client, admin, "b")
    for tenant in pair:
        tenant.media = _media(client, tenant)
        tenant.export = _export(client, tenant)
        tenant.attachment = _attachment(client, tenant)
        _warehouse(warehouse_engine, tenant)
    return pair


def _warehouse(warehouse_engine: Engine, tenant: Tenant) -> None:
    """Facts of the tenant's event in the analytics warehouse, so every rollup has rows."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from domain.analytics.facts import Fact, FactKind
    from warehouse.sink import ingest

    ids = uuid.UUID(tenant.org["id"]), uuid.UUID(tenant.event["id"])
    at = datetime.now(UTC)
    facts = [
        Fact(uuid.uuid4(), FactKind.PAGE_VIEW, *ids, at, visitor_id="v", source="direct"),
        Fact(uuid.uuid4(), FactKind.PAYMENT, *ids, at, amount=100, currency="EUR", purpose="full"),
        Fact(uuid.uuid4(), FactKind.REGISTRATION, *ids, at, visitor_id="v"),  # a visit's credit
    ]
    with Session(warehouse_engine) as session, session.begin():
        ingest(session, facts)


# --- SQL level --------------------------------------------------------------------------------------


def _tables(owner_engine: Engine) -> dict[str, dict[str, Any]]:
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                SELECT CASE WHEN n.nspname = 'public' THEN c.relname
                            ELSE n.nspname || '.' || c.relname END AS name,
                       c.relrowsecurity AS rls,
                       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
                       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                               AND a.attname = 'tenant_id' AND NOT a.attisdropped) AS has_tenant
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname IN ('public', 'warehouse') AND c.relkind IN ('r', 'p')
                  AND NOT c.relispartition
                """
            )
        ).mappings()
        return {r["name"]: dict(r) for r in rows}


def _sql(table: str) -> str:
    """The quoted name of ``table`` (``schema.name`` outside public: the warehouse)."""
    return ".".join(f'"{part}"' for part in table.split("."))


def _tenant_column(table: str, meta: dict[str, Any]) -> str:
    return "tenant_id" if meta["has_tenant"] else "id"  # organizations: the row is the tenant


def test_every_table_is_classified(owner_engine: Engine) -> None:
    tables = _tables(owner_engine)
    unclassified = [
        t
        for t, m in tables.items()
        if not m["has_tenant"] and t not in NOT_TENANT_DATA and t != "organizations"
    ]
    assert unclassified == [], f"tables with neither tenant_id nor a classification: {unclassified}"
    unprotected = [
        t
        for t, m in tables.items()
        if (m["has_tenant"] or t == "organizations" or t in USER_SCOPED)
        and not t.startswith("warehouse.")  # protected by privileges: the tests below
        and not (m["rls"] and m["policies"])
    ]
    assert unprotected == [], f"tenant tables without row level security: {unprotected}"


# --- the warehouse: privileges and tenant-filtering views, no row level security -------------------
# (TimescaleDB refuses RLS on hypertables with continuous aggregates or a columnstore; the same
# design runs on both flavours, and these tests read the catalog, not a list.)


def test_the_application_role_has_no_privilege_in_the_warehouse(
    settings: Settings, owner_engine: Engine
) -> None:
    """Every relation of the warehouse schema, found in the catalog (tables, partitions,
    aggregates, views, whatever a migration adds): the application role may do nothing with
    it, nor even look up a name in the schema."""
    with owner_engine.connect() as conn:
        usage = conn.execute(
            text("SELECT has_schema_privilege(:u, 'warehouse', 'USAGE')"),
            {"u": settings.app_db_user},
        ).scalar()
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relkind, has_table_privilege(:u, c.oid,"
                " 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'),"
                " has_any_column_privilege(:u, c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'warehouse' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            ),
            {"u": settings.app_db_user},
        ).all()
    assert usage is False
    assert len(rows) >= 10, rows  # facts and the nine rollups, at least
    granted = [(name, kind) for name, kind, table, column in rows if table or column]
    assert granted == [], f"the application role has privileges on {granted}"


def _analytics_views(owner_engine: Engine) -> list[tuple[str, list[str], str, str]]:
    with owner_engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT c.relname, coalesce(c.reloptions, '{}'), pg_get_viewdef(c.oid),"
                    " c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'analytics' ORDER BY 1"
                )
            )
        ]


def test_every_analytics_view_filters_on_the_transactions_tenant_by_construction(
    owner_engine: Engine,
) -> None:
    """What the application may read of the warehouse: views only, each a security barrier
    whose own definition keeps the rows of app_tenant_id(); on TimescaleDB the same views sit
    on continuous aggregates instead of tables."""
    views = _analytics_views(owner_engine)
    assert {v[0] for v in views} == {
        f"{r}_{g}" for r in ("event", "revenue", "traffic") for g in ("minute", "hour", "day")
    } | {"facts"} | {"visits", "visit_credits"}  # the funnel and attribution (0015, 0016)
    for name, options, definition, kind in views:
        assert kind == "v", f"analytics.{name} is not a view"
        assert "security_barrier=true" in options, f"analytics.{name}: no security barrier"
        assert "tenant_id = app_tenant_id()" in definition, f"analytics.{name}: {definition}"
        assert f"FROM warehouse.{name}" in definition, f"analytics.{name}: {definition}"


def test_tenant_a_sees_only_its_rows_through_every_analytics_view(
    tenants: tuple[Tenant, Tenant], owner_engine: Engine, app_engine: Engine
) -> None:
    a, b = tenants
    ids = {"a": a.org["id"], "b": b.org["id"]}
    for name, *_ in _analytics_views(owner_engine):
        with owner_engine.connect() as owner:
            a_rows = owner.execute(
                text(f"SELECT count(*) FROM warehouse.{name} WHERE tenant_id = :a"), ids
            ).scalar()
            b_rows = owner.execute(
                text(f"SELECT count(*) FROM warehouse.{name} WHERE tenant_id = :b"), ids
            ).scalar()
        assert a_rows > 0 and b_rows > 0, f"warehouse.{name}: extend the fixture to cover it"
        with app_engine.connect() as conn, conn.begin():
            _as_app(conn, a.owner["user"]["id"], a.org["id"])
            everything = conn.execute(text(f"SELECT count(*) FROM analytics.{name}")).scalar()
            of_b = conn.execute(
                text(f"SELECT count(*) FROM analytics.{name} WHERE tenant_id = :b"), ids
            ).scalar()
            # a caller's own condition cannot run before the tenant's (security barrier)
            leaked = conn.execute(
                text(
                    f"SELECT count(*) FROM analytics.{name} WHERE tenant_id = :b OR tenant_id <> :b"
                ),
                ids,
            ).scalar()
            written = _attempt(conn, f"DELETE FROM analytics.{name} WHERE tenant_id = :b", ids)
            conn.rollback()
        assert (everything, of_b, leaked) == (a_rows, 0, a_rows), name
        assert written is None, f"analytics.{name}: the application role may delete"
        with app_engine.connect() as conn:  # no tenant in the transaction: nothing
            assert conn.execute(text(f"SELECT count(*) FROM analytics.{name}")).scalar() == 0


def _as_app(conn, user_id: str, tenant_id: str | None) -> None:
    conn.execute(
        text("SELECT set_config('app.user_id', :u, true), set_config('app.tenant_id', :t, true)"),
        {"u": user_id, "t": tenant_id or ""},
    )


def _attempt(conn, sql: str, params: dict[str, Any]) -> int | None:
    """Row count of ``sql``, or None when the role may not run it at all (no grant)."""
    savepoint = conn.begin_nested()
    try:
        result = conn.execute(text(sql), params)
        count = result.scalar() if sql.lstrip().upper().startswith("SELECT") else result.rowcount
    except ProgrammingError as exc:
        savepoint.rollback()
        assert "permission denied" in str(exc), exc
        return None
    savepoint.rollback()
    return count


def test_tenant_a_context_reads_updates_deletes_no_row_of_tenant_b(
    tenants: tuple[Tenant, Tenant], owner_engine: Engine, app_engine: Engine
) -> None:
    a, b = tenants
    a_id, b_id = a.org["id"], b.org["id"]
    tables = _tables(owner_engine)
    checked = []
    with owner_engine.connect() as owner:
        for table, meta in sorted(tables.items()):
            if table in NOT_TENANT_DATA:
                continue
            column = _tenant_column(table, meta)
            b_rows = owner.execute(
                text(f"SELECT count(*) FROM {_sql(table)} WHERE {column} = :b"), {"b": b_id}
            ).scalar()
            a_rows = owner.execute(
                text(f"SELECT count(*) FROM {_sql(table)} WHERE {column} = :a"), {"a": a_id}
            ).scalar()
            assert b_rows > 0, f"{table}: no rows for tenant B; extend the fixture to cover it"
            with app_engine.connect() as conn, conn.begin():
                _as_app(conn, a.owner["user"]["id"], a_id)
                params = {"b": b_id, "a": a_id}
                seen = _attempt(
                    conn, f"SELECT count(*) FROM {_sql(table)} WHERE {column} = :b", params
                )
                updated = _attempt(
                    conn,
                    f"UPDATE {_sql(table)} SET {column} = {column} WHERE {column} = :b",
                    params,
                )
                deleted = _attempt(conn, f"DELETE FROM {_sql(table)} WHERE {column} = :b", params)
                own = _attempt(
                    conn, f"SELECT count(*) FROM {_sql(table)} WHERE {column} = :a", params
                )
                conn.rollback()
            assert seen in (0, None), f"{table}: tenant A reads {seen} rows of B"
            assert updated in (0, None), f"{table}: tenant A updates {updated} rows of B"
            assert deleted in (0, None), f"{table}: tenant A deletes {deleted} rows of B"
            if seen is not None:  # the policy is not simply "deny everything"
                assert own == a_rows, f"{table}: tenant A sees {own} of its {a_rows} rows"
            checked.append(table)
    assert {
        "organizations",
        "organization_members",
        "organization_invites",
        "groups",
        "group_members",
        "outbox",
        "notifications",
        "event_reminders",
        "events",
        "ticket_types",
        "reservations",
        "registrations",
        "waitlist_entries",
        "check_ins",
        "media",
        "media_variants",
        "event_attachments",
        "payments",
        "refunds",
        "exports",
    } <= set(checked)


def test_user_scoped_tables_hide_other_users_rows(
    tenants: tuple[Tenant, Tenant], owner_engine: Engine, app_engine: Engine
) -> None:
    a, b = tenants
    for table, column in USER_SCOPED.items():
        with app_engine.connect() as conn, conn.begin():
            _as_app(conn, a.owner["user"]["id"], a.org["id"])
            params = {"u": b.owner["user"]["id"]}
            seen = _attempt(conn, f"SELECT count(*) FROM {_sql(table)} WHERE {column} = :u", params)
            updated = _attempt(
                conn, f"UPDATE {_sql(table)} SET {column} = {column} WHERE {column} = :u", params
            )
            conn.rollback()
        assert seen == 0, f"{table}: A's user reads B's owner's rows"
        assert updated in (0, None), f"{table}: A's user updates B's owner's rows"


def test_no_context_sees_no_tenant_data(
    tenants: tuple[Tenant, Tenant], owner_engine: Engine, app_engine: Engine
) -> None:
    """Without a user or tenant, nothing of A or B shows (their events are private)."""
    a, b = tenants
    ids = {"a": a.org["id"], "b": b.org["id"]}
    with app_engine.connect() as conn:
        for table, meta in _tables(owner_engine).items():
            if table in NOT_TENANT_DATA:
                continue
            column = _tenant_column(table, meta)
            seen = _attempt(
                conn, f"SELECT count(*) FROM {_sql(table)} WHERE {column} IN (:a, :b)", ids
            )
            assert seen in (0, None), table
        for table in USER_SCOPED:
            assert conn.execute(text(f"SELECT count(*) FROM {_sql(table)}")).scalar() == 0, table


def test_a_forged_tenant_context_writes_nothing_into_another_tenant(
    tenants: tuple[Tenant, Tenant], app_engine: Engine
) -> None:
    """WITH CHECK: in tenant A's context a row claiming tenant B is refused."""
    a, b = tenants
    with app_engine.connect() as conn, conn.begin():
        _as_app(conn, a.owner["user"]["id"], a.org["id"])
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(
                text(
                    "INSERT INTO groups (id, tenant_id, name, created_by) "
                    "VALUES (:id, :b, 'smuggled', :u)"
                ),
                {"id": uuid.uuid4(), "b": b.org["id"], "u": a.owner["user"]["id"]},
            )


# --- HTTP level -------------------------------------------------------------------------------------

PARAM = re.compile(r"{([^}]+)}")
# Operations any signed-in non-admin is refused regardless of the id: 403 for real and random ids.
PLATFORM_ADMIN_ONLY = {
    "/api/v1/organization-requests/{request_id}/approve",
    "/api/v1/organization-requests/{request_id}/reject",
}
# Operations whose path parameter names no tenant's row, each with the reason.
NO_TENANT_ID = {
    "/api/v1/webhooks/{provider}": "a provider's name; the caller proves itself by signature and "
    "acts in the tenant of the payment its signed event names (tests/payment/test_signatures.py)",
    "/api/v1/organizers/{slug}": "an organization's public profile, for anyone by design "
    "(only name, address name, description, logo: tests/organization/test_organizers.py)",
    "/api/v1/organizers/{slug}/logo": "the public profile's logo, for anyone by design",
}


def node_ref(node: dict) -> list[str]:
    return node["$ref"].lstrip("#/").split("/")


def sample(schema: dict, node: Any) -> Any:
    """A minimal valid instance of a JSON Schema node (enough to get past body validation)."""
    if isinstance(node, dict) and "$ref" in node:
        target = schema
        for part in node_ref(node):
            target = target[part]
        return sample(schema, target)
    if "anyOf" in node:
        return sample(schema, next(n for n in node["anyOf"] if n.get("type") != "null"))
    if "enum" in node:
        return node["enum"][-1]
    kind = node.get("type")
    if kind == "object":
        return {
            k: sample(schema, v)
            for k, v in node.get("properties", {}).items()
            if k in node.get("required", [])
        }
    if kind == "array":
        return []
    if kind == "integer":
        return max(node.get("minimum", 1), node.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return True
    if node.get("format") == "uuid":
        return str(uuid.uuid4())
    return "x" * max(node.get("minLength", 1), 16)


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    ops = []
    for path, item in schema["paths"].items():
        if not PARAM.search(path) or path in NO_TENANT_ID:
            continue
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                ops.append((method, path, op))
    return ops


def _ids(a: Tenant, client: TestClient) -> dict[str, str]:
    """Tenant A's id for every path parameter name the API uses."""
    requests = client.get("/api/v1/organization-requests", headers=a.owner["headers"]).json()[
        "items"
    ]
    invitations = client.get(
        f"/api/v1/organizations/{a.org['id']}/invitations", headers=a.owner["headers"]
    ).json()["items"]
    message = client.post(
        "/api/v1/notifications/send",
        json={"event_id": a.event["id"], "subject": "Doors", "text": "Doors open at 18:00"},
        headers=a.owner["headers"],
    )
    assert message.status_code in (200, 201, 202), message.text
    return {
        "invite_id": invitations[0]["id"],  # the fixture's pending one
        "message_id": message.json()["message_id"],
        "org_id": a.org["id"],
        "organization_id": a.org["id"],  # the analytics report's name for it
        "group_id": a.group["id"],
        "user_id": a.moderator["user"]["id"],
        "request_id": requests[0]["id"],
        "event_id": a.event["id"],
        "ticket_type_id": a.ticket_type["id"],
        "reservation_id": a.reservation["id"],
        "registration_id": a.registration["id"],
        "entry_id": a.waitlist_entry["id"],
        "media_id": a.media["id"],
        "payment_id": a.payment["id"],
        "export_id": a.export["id"],
        "attachment_id": a.attachment["id"],
    }


def test_every_id_taking_endpoint_answers_404_to_another_tenant(
    tenants: tuple[Tenant, Tenant], client: TestClient
) -> None:
    a, b = tenants
    schema = client.get("/openapi.json").json()
    ids = _ids(a, client)
    operations = _operations(schema)
    assert len(operations) >= 9
    for method, path, op in operations:
        names = PARAM.findall(path)
        missing = [n for n in names if n not in ids]
        assert not missing, f"{method.upper()} {path}: add tenant A's {missing} to _ids()"
        body = None
        if "requestBody" in op:
            content = op["requestBody"]["content"]["application/json"]["schema"]
            body = sample(schema, content)
        # Required query parameters naming ids (``?event_id=``) are tenant A's too.
        query = [
            p["name"]
            for p in op.get("parameters", [])
            if p.get("in") == "query" and p.get("required")
        ]
        missing = [n for n in query if n not in ids]
        assert not missing, f"{method.upper()} {path}: add tenant A's {missing} to _ids()"
        url_real = path.format(**ids)
        url_random = path.format(**{n: str(uuid.uuid4()) for n in names})
        real_query = {n: ids[n] for n in query}
        random_query = {n: str(uuid.uuid4()) for n in query}
        for caller in (b.owner, b.moderator, b.group_member):
            real = client.request(
                method, url_real, json=body, params=real_query, headers=caller["headers"]
            )
            random = client.request(
                method, url_random, json=body, params=random_query, headers=caller["headers"]
            )
            where = f"{method.upper()} {path} as {caller['user']['display_name']}"
            assert (real.status_code, real.json()["error"]["code"]) == (
                random.status_code,
                random.json()["error"]["code"],
            ), f"{where}: {real.status_code} {real.text} vs {random.status_code}"
            expected = 403 if path in PLATFORM_ADMIN_ONLY else 404
            assert real.status_code == expected, f"{where}: {real.status_code} {real.text}"
