"""The event contracts' validator: every payload the unit of work writes to the outbox is checked
against its committed JSON Schema (``domain/schemas/<type>.v<version>.json``) first, so a payload
that breaks the contract fails its own transaction instead of a consumer later.

The schemas are generated from the ``DomainEvent`` dataclasses by ``streams/contracts.py``
(``aqstream schemas``); this module only reads them. It imports nothing above the domain.
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from domain.events import DomainEvent, EventContractError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def schema_file(event_type: str, version: int) -> Path:
    return SCHEMA_DIR / f"{event_type}.v{version}.json"


_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    # RFC 3339 wants an offset; datetime.isoformat() of an aware datetime always has one.
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


@functools.cache
def _validator(event_type: str, version: int) -> Draft202012Validator:
    path = schema_file(event_type, version)
    try:
        schema = json.loads(path.read_text())
    except FileNotFoundError:
        raise EventContractError(
            f"no schema for {event_type} v{version} ({path.name}); run `aqstream schemas`"
        ) from None
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_FORMATS)


def validate_payload(event_type: str, version: int, payload: dict[str, Any]) -> None:
    """Raise ``EventContractError`` unless ``payload`` satisfies the committed schema."""
    errors = sorted(
        _validator(event_type, version).iter_errors(payload), key=lambda e: [str(p) for p in e.path]
    )
    if errors:
        detail = "; ".join(
            f"{'/'.join(map(str, e.path)) or '(payload)'}: {e.message}" for e in errors
        )
        raise EventContractError(f"{event_type} v{version} breaks its schema: {detail}")


def validated_payload(event: DomainEvent) -> dict[str, Any]:
    """``event.payload()``, checked against its contract."""
    payload = event.payload()
    validate_payload(event.event_type, event.schema_version, payload)
    return payload
