"""The unit of work's own promises (domain/uow.py): its first statement sets the context and reads
the caller's account in one round trip (app_begin, migration 0026), and a connection the server
dropped while it sat in the pool is replaced instead of failing the request (the API's pool does
not ping at checkout)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from core.settings import Settings
from domain.db import make_engine, make_sessionmaker
from domain.identity.events import UserUpdated
from domain.uow import UnitOfWork


def _terminate(owner_engine: Engine, application_name: str) -> int:
    with owner_engine.begin() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                " FROM pg_stat_activity WHERE application_name = :name"
            ),
            {"name": application_name},
        ).scalar_one()


@pytest.fixture
def unpinged(settings: Settings) -> Iterator[tuple[Engine, str]]:
    """An engine like the API's: no ping at checkout; its own name, so it alone is cut off."""
    name = f"aqstream-tests-{uuid.uuid4().hex[:8]}"
    engine = make_engine(settings.app_url, pool_size=2, application_name=name, pre_ping=False)
    yield engine, name
    engine.dispose()


def _backend_pid(uow: UnitOfWork) -> int:
    return uow.session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_the_server_dropped_is_replaced_not_failed(
    unpinged: tuple[Engine, str], owner_engine: Engine
) -> None:
    engine, name = unpinged
    sessions = make_sessionmaker(engine)
    with UnitOfWork(sessions) as uow:
        before = _backend_pid(uow)
    assert _terminate(owner_engine, name) == 1  # the pooled connection is dead now

    with UnitOfWork(sessions) as uow:
        after = _backend_pid(uow)
        uow.commit()
    assert after != before


def test_without_the_unit_of_work_the_dropped_connection_fails(
    unpinged: tuple[Engine, str], owner_engine: Engine
) -> None:
    """The control: the pool itself hands the dead connection out (so the test above can fail)."""
    engine, name = unpinged
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert _terminate(owner_engine, name) == 1
    with pytest.raises(OperationalError), engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _user(owner_engine: Engine, *, admin: bool, deleted: bool) -> uuid.UUID:
    user_id = uuid.uuid4()
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, display_name, is_platform_admin, deleted_at)"
                " VALUES (:id, :email, 'UoW', :admin, CASE WHEN :deleted THEN now() END)"
            ),
            {"id": user_id, "email": f"{user_id}@uow.test", "admin": admin, "deleted": deleted},
        )
    return user_id


def _flags(uow: UnitOfWork) -> tuple[str, bool]:
    row = uow.session.execute(
        text("SELECT current_setting('app.user_id', true), app_is_platform_admin()")
    ).one()
    return row[0], row[1]


@pytest.mark.parametrize(("admin", "deleted"), [(False, False), (True, False), (True, True)])
def test_the_first_statement_sets_the_context_and_answers_the_account(
    app_engine: Engine, owner_engine: Engine, admin: bool, deleted: bool
) -> None:
    user_id = _user(owner_engine, admin=admin, deleted=deleted)
    sessions = make_sessionmaker(app_engine)
    with UnitOfWork(sessions, user_id=user_id, check_account=True) as uow:
        assert uow.account is not None
        assert uow.account.token_version == 0
        assert (uow.account.deleted_at is not None) is deleted
        # a deleted admin account is no admin
        assert uow.platform_admin is (admin and not deleted)
        assert _flags(uow) == (str(user_id), admin and not deleted)


def test_no_account_row_for_an_unknown_user_or_without_the_check(
    app_engine: Engine, owner_engine: Engine
) -> None:
    sessions = make_sessionmaker(app_engine)
    with UnitOfWork(sessions, user_id=uuid.uuid4(), check_account=True) as uow:
        assert uow.account is None
    admin = _user(owner_engine, admin=True, deleted=False)
    with UnitOfWork(sessions, user_id=admin) as uow:  # workers act as a user without the check
        assert uow.account is None
        assert _flags(uow) == (str(admin), False)
    tenant = uuid.uuid4()
    with UnitOfWork(sessions, tenant_id=tenant, platform_admin=True) as uow:
        row = uow.session.execute(
            text("SELECT app_tenant_id(), app_user_id(), app_is_platform_admin()")
        ).one()
        assert tuple(row) == (tenant, None, True)


def test_more_events_than_one_insert_takes_are_all_written_in_order(
    app_engine: Engine, owner_engine: Engine
) -> None:
    """One INSERT takes at most 65,535 parameters (8 per outbox row): the rows are written in
    chunks, in the order the events were raised, with the COMMIT's pipeline as without it."""
    sessions = make_sessionmaker(app_engine)
    user_id = uuid.uuid4()
    count = 8_200  # 65,600 parameters in one statement
    with UnitOfWork(sessions) as uow:
        for i in range(count):
            uow.emit(UserUpdated(aggregate_id=user_id, user_id=user_id, changed=[f"f{i}"]))
        uow.commit()
    with owner_engine.connect() as conn:
        changed = conn.execute(
            text("SELECT payload->'changed'->>0 FROM outbox WHERE aggregate_id = :a ORDER BY seq"),
            {"a": user_id},
        ).scalars()
        assert list(changed) == [f"f{i}" for i in range(count)]
