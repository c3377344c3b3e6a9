"""Event contracts: a committed JSON Schema for every domain event, kept in step with the
dataclasses, and payloads checked against it before they enter the outbox."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from aqstream.cli import app
from domain import contracts as validator
from domain.db import make_sessionmaker
from domain.events import DomainEvent, EventContractError
from domain.registration.events import RegistrationConfirmed, RegistrationCreated
from domain.uow import UnitOfWork
from streams import contracts


def test_every_domain_event_has_a_current_committed_schema() -> None:
    """The one check to run after touching an event: `aqstream schemas --check`."""
    assert contracts.contract_problems() == [], "run `aqstream schemas` and commit the files"


def test_events_are_found_in_every_capability_package() -> None:
    classes = contracts.event_classes()
    types = {cls.event_type for cls in classes}
    assert {"registration.created", "user.registered", "checkin.completed"} <= types
    modules = {cls.__module__ for cls in classes}
    assert all(m.startswith("domain.") and m.endswith(".events") for m in modules)
    # Intermediate bases without an event_type (domain.event.events._EventFact) are not events.
    assert all(hasattr(cls, "event_type") for cls in classes)
    assert len(types) == len(classes)


def test_the_check_reports_a_changed_field_a_missing_file_and_an_orphan(tmp_path: Path) -> None:
    contracts.write_schemas(tmp_path)
    assert contracts.contract_problems(tmp_path) == []

    stale = tmp_path / "registration.confirmed.v1.json"
    schema = json.loads(stale.read_text())
    schema["properties"]["quantity"] = {"type": "string"}  # as if the field's type had changed
    stale.write_text(json.dumps(schema))
    (tmp_path / "user.updated.v1.json").unlink()
    (tmp_path / "registration.teleported.v1.json").write_text("{}")

    problems = contracts.contract_problems(tmp_path)
    assert len(problems) == 3, problems
    assert any(p.startswith("registration.confirmed.v1.json: stale") for p in problems)
    assert any(p.startswith("user.updated.v1.json: missing") for p in problems)
    assert any(p.startswith("registration.teleported.v1.json: no such") for p in problems)

    assert [p.name for p in contracts.write_schemas(tmp_path)] == [
        "registration.confirmed.v1.json",
        "user.updated.v1.json",
    ]
    assert len(contracts.contract_problems(tmp_path)) == 1  # the orphan is for a human to remove


def test_a_changed_dataclass_changes_its_generated_schema() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Changed(RegistrationConfirmed):
        seats: list[int] = field(default_factory=list)

    before = contracts.schema_for(RegistrationConfirmed)
    after = contracts.schema_for(Changed)
    assert after["properties"]["seats"] == {"type": "array", "items": {"type": "integer"}}
    assert after["required"] == [*before["required"], "seats"]


def test_field_types_map_to_json_schema() -> None:
    j = contracts.json_type
    assert j(uuid.UUID) == {"type": "string", "format": "uuid"}
    assert j(uuid.UUID | None) == {"type": ["string", "null"], "format": "uuid"}
    assert j(datetime) == {"type": "string", "format": "date-time"}
    assert j(int | str) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert j(dict[str, bool]) == {"type": "object", "additionalProperties": {"type": "boolean"}}
    assert j(Literal["email", "telegram"]) == {"enum": ["email", "telegram"]}
    with pytest.raises(EventContractError, match="no JSON Schema mapping"):
        j(bytes)


def _confirmed(**overrides) -> RegistrationConfirmed:
    values = {
        "aggregate_id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "registration_id": uuid.uuid4(),
        "event_id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "quantity": 2,
    }
    return RegistrationConfirmed(**{**values, **overrides})


def test_payloads_are_validated_against_the_committed_schema() -> None:
    assert validator.validated_payload(_confirmed())["quantity"] == 2
    with pytest.raises(EventContractError, match="quantity: 'two' is not of type 'integer'"):
        validator.validated_payload(_confirmed(quantity="two"))
    with pytest.raises(EventContractError, match="user_id: 'nobody' is not a 'uuid'"):
        validator.validated_payload(_confirmed(user_id="nobody"))
    with pytest.raises(EventContractError, match="'extra' was unexpected"):
        validator.validate_payload(
            "registration.confirmed", 1, {**_confirmed().payload(), "extra": 1}
        )
    with pytest.raises(EventContractError, match="'user_id' is a required property"):
        payload = _confirmed().payload()
        del payload["user_id"]
        validator.validate_payload("registration.confirmed", 1, payload)


def test_a_datetime_must_carry_its_offset() -> None:
    payload = {
        "aggregate_id": str(uuid.uuid4()),
        "tenant_id": None,
        "registration_id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "ticket_type_id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "quantity": 1,
        "checked_in_by": str(uuid.uuid4()),
        "checked_in_at": datetime.now(UTC).isoformat(),
    }
    validator.validate_payload("checkin.completed", 1, payload)
    payload["checked_in_at"] = datetime.now().isoformat()  # naive: no offset
    with pytest.raises(EventContractError, match="checked_in_at"):
        validator.validate_payload("checkin.completed", 1, payload)


def test_an_event_without_a_schema_fails_loudly() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Unpublished(DomainEvent):
        event_type = "test.unpublished"
        aggregate_type = "test"

    with pytest.raises(
        EventContractError, match=r"no schema for test.unpublished v1.*aqstream schemas"
    ):
        validator.validated_payload(Unpublished(aggregate_id=uuid.uuid4()))


def _outbox_rows(owner_engine: Engine, aggregate_id: uuid.UUID) -> int:
    with owner_engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM outbox WHERE aggregate_id = :a"), {"a": aggregate_id}
        ).scalar_one()


def test_a_bad_payload_fails_the_whole_transaction(
    app_engine: Engine, owner_engine: Engine
) -> None:
    """A valid event and an invalid one in one unit of work: neither reaches the outbox."""
    sessions = make_sessionmaker(app_engine)
    aggregate = uuid.uuid4()
    good = _confirmed(aggregate_id=aggregate, tenant_id=None)
    bad = RegistrationCreated(
        aggregate_id=aggregate,
        registration_id=aggregate,
        event_id=uuid.uuid4(),
        ticket_type_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        quantity=1,
        status="pending",
        payment_mode="free",
        currency="EUR",
        amount_total=-0.5,  # not an integer amount of minor units
        amount_due_now=0,
    )
    with pytest.raises(EventContractError, match="amount_total"), UnitOfWork(sessions) as uow:
        uow.emit(good)
        uow.emit(bad)
        uow.commit()
    assert _outbox_rows(owner_engine, aggregate) == 0

    with UnitOfWork(sessions) as uow:  # the same good event alone goes through
        uow.emit(good)
        uow.commit()
    assert _outbox_rows(owner_engine, aggregate) == 1


def test_schemas_cli_check_and_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["schemas", "--check"])
    assert result.exit_code == 0, result.output
    assert "current" in result.output

    (tmp_path / "docs").mkdir()
    monkeypatch.setattr("aqstream.cli.PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(contracts, "SCHEMA_DIR", tmp_path / "domain" / "schemas")
    result = runner.invoke(app, ["schemas", "--check"])
    assert result.exit_code == 1
    assert "registration.created.v1.json: missing" in result.output
    result = runner.invoke(app, ["schemas"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "domain" / "schemas" / "registration.created.v1.json").exists()
    assert "wrote docs/asyncapi.yaml" in result.output
    assert runner.invoke(app, ["schemas", "--check"]).exit_code == 0
    (tmp_path / "docs" / "asyncapi.yaml").write_text("stale")
    result = runner.invoke(app, ["schemas", "--check"])
    assert result.exit_code == 1
    assert "docs/asyncapi.yaml: stale" in result.output
