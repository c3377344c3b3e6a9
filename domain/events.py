"""Domain events: past-tense facts an aggregate raises; the unit of work writes them to the
outbox in the same transaction as the change they describe."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar


class EventContractError(RuntimeError):
    """An event whose payload breaks its published contract (domain/schemas/), or that has no
    contract yet. A programming error: it fails the transaction that raised the event."""


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    event_type: ClassVar[str]
    aggregate_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    aggregate_id: uuid.UUID
    tenant_id: uuid.UUID | None = None

    def payload(self) -> dict[str, Any]:
        """JSON-ready body: every field, UUIDs and datetimes as strings."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
