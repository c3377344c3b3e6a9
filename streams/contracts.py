"""Event contracts: one JSON Schema per event type and schema version, generated from the
``DomainEvent`` dataclasses and committed under ``domain/schemas/<type>.v<version>.json``.

The unit of work validates every payload against its committed schema before the row enters the
outbox (``domain/contracts.py``, the validator, lives in the domain). ``aqstream schemas``
regenerates the files; ``aqstream schemas --check`` (and tests/streams/test_contracts.py) fails
when one is missing or stale.

Events are found, not listed: every ``domain/<capability>/events.py`` is imported and every
concrete ``DomainEvent`` subclass (one with an ``event_type``) has a contract. No Kafka here.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import pkgutil
import types
import typing
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from domain import contracts
from domain.events import DomainEvent, EventContractError

SCHEMA_DIR = contracts.SCHEMA_DIR  # the domain reads them (domain/contracts.py); written here
DIALECT = "https://json-schema.org/draft/2020-12/schema"
ADDED = "added"  # dataclass field metadata: added to a published schema version (optional)


# --- the events --------------------------------------------------------------------------------


def import_event_modules() -> None:
    """Import ``domain.<capability>.events`` for every capability package that has one."""
    import domain

    for module in pkgutil.iter_modules(domain.__path__):
        if module.ispkg and importlib.util.find_spec(f"domain.{module.name}.events") is not None:
            importlib.import_module(f"domain.{module.name}.events")


def event_classes() -> list[type[DomainEvent]]:
    """Every concrete domain event, ordered by event type then version."""
    import_event_modules()
    found: dict[tuple[str, int], type[DomainEvent]] = {}
    todo = list(DomainEvent.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not cls.__module__.startswith("domain.") or not hasattr(cls, "event_type"):
            continue  # intermediate bases (no event_type) and events defined outside domain/
        key = (cls.event_type, cls.schema_version)
        if key in found and found[key] is not cls:
            raise EventContractError(
                f"{cls.__qualname__} and {found[key].__qualname__} both declare "
                f"{cls.event_type} v{cls.schema_version}"
            )
        found[key] = cls
    return [found[key] for key in sorted(found)]


# --- schema generation ---------------------------------------------------------------------------

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    datetime: {"type": "string", "format": "date-time"},
    date: {"type": "string", "format": "date"},
}


def json_type(annotation: Any, where: str = "field") -> dict[str, Any]:
    """The JSON Schema of a value ``DomainEvent.payload()`` makes from a field of this type."""
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [json_type(arg, where) for arg in args if arg is not type(None)]
        nullable = type(None) in args
        if len(options) == 1 and nullable and isinstance(options[0].get("type"), str):
            return {**options[0], "type": [options[0]["type"], "null"]}
        return {"anyOf": options + ([{"type": "null"}] if nullable else [])}
    if origin in (list, tuple) and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
        return {"type": "array", "items": json_type(args[0], where)}
    if origin is dict and args and args[0] is str:
        return {"type": "object", "additionalProperties": json_type(args[1], where)}
    if origin is typing.Literal:
        return {"enum": list(args)}
    raise EventContractError(f"{where}: no JSON Schema mapping for type {annotation!r}")


def schema_file(event_type: str, version: int) -> Path:
    return SCHEMA_DIR / f"{event_type}.v{version}.json"


def schema_for(cls: type[DomainEvent]) -> dict[str, Any]:
    """The contract of ``cls``: every dataclass field, all required (``payload()`` always writes
    each one, None included), nothing else allowed; except a field added to a published version
    (metadata ``{ADDED: True}``, default None): records written before it lack it, so it is
    optional."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    properties = {f.name: json_type(hints[f.name], f"{cls.__qualname__}.{f.name}") for f in fields}
    required = [f.name for f in fields if not f.metadata.get(ADDED)]
    doc = " ".join((cls.__doc__ or "").split())
    if doc.startswith(f"{cls.__name__}("):  # the signature dataclasses writes when undocumented
        doc = ""
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"urn:aqstream:event:{cls.event_type}:v{cls.schema_version}",
        "title": cls.event_type,
        "description": doc or f"{cls.__name__} ({cls.__module__}).",
        "x-aggregate-type": cls.aggregate_type,
        "x-event-type": cls.event_type,
        "x-schema-version": cls.schema_version,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def other_schemas() -> dict[str, dict[str, Any]]:
    """Contracts of records that are not domain events, by file name: the tracking records the
    API sends itself (domain/analytics/tracking.py)."""
    from domain.analytics.tracking import SCHEMA, SCHEMA_VERSION, record_schema

    return {schema_file(SCHEMA, SCHEMA_VERSION).name: record_schema()}


def write_schemas(directory: Path | None = None) -> list[Path]:
    """(Re)write the schema file of every event class; return the files that changed."""
    directory = directory or SCHEMA_DIR
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    texts = {
        schema_file(cls.event_type, cls.schema_version).name: render(schema_for(cls))
        for cls in event_classes()
    }
    texts.update({name: render(schema) for name, schema in other_schemas().items()})
    for name, text in texts.items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def contract_problems(directory: Path | None = None) -> list[str]:
    """What is wrong with the committed schemas: missing or stale files, files for event types
    that no longer exist. Files of older versions of a live event type stay (consumers may still
    read them) and are not regenerated."""
    directory = directory or SCHEMA_DIR
    problems = []
    current: dict[str, int] = {}
    for cls in event_classes():
        current[cls.event_type] = max(current.get(cls.event_type, 0), cls.schema_version)
        path = directory / schema_file(cls.event_type, cls.schema_version).name
        if not path.exists():
            problems.append(f"{path.name}: missing (new event {cls.__qualname__})")
        elif path.read_text() != render(schema_for(cls)):
            problems.append(f"{path.name}: stale ({cls.__qualname__} changed)")
    others = other_schemas()
    for name, schema in others.items():
        if not (directory / name).exists():
            problems.append(f"{name}: missing")
        elif (directory / name).read_text() != render(schema):
            problems.append(f"{name}: stale")
    for path in sorted(directory.glob("*.json")):
        if path.name in others:
            continue
        event_type, _, version = path.stem.rpartition(".v")
        if event_type not in current or not version.isdigit() or int(version) > current[event_type]:
            problems.append(f"{path.name}: no such event type and version in domain/")
    return problems
