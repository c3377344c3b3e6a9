"""The wire contract of a published record: an outbox row as the relay reads it, and the eight
Kafka headers every record carries (docs/streams.md), composed and decoded in one place.

The relay and the API's tracking producer compose the headers here, the worker and
``warehouse/reconcile.py`` decode them here: one definition of what a record says about itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CONTENT_TYPE = "application/json"
HEADER_NAMES = (
    "event_id",
    "event_type",
    "schema_version",
    "aggregate_type",
    "tenant_id",
    "correlation_id",
    "occurred_at",
    "content_type",
)


@dataclass(frozen=True, slots=True)
class Row:
    """An outbox row as read for publishing (text, as it goes on the wire)."""

    id: str
    aggregate_type: str
    aggregate_id: str
    event_type: str
    schema_version: str
    tenant_id: str  # "" for platform events (no tenant)
    payload: str
    correlation_id: str  # "" when the writer had none
    occurred_at: str  # ISO 8601, UTC
    occurred_epoch: float


def encode_headers(
    *,
    event_id: str,
    event_type: str,
    schema_version: str,
    aggregate_type: str,
    tenant_id: str,
    correlation_id: str,
    occurred_at: str,
) -> list[tuple[str, bytes]]:
    """The eight Kafka headers of a record: UTF-8 strings, empty when not applicable."""
    return [
        ("event_id", event_id.encode()),
        ("event_type", event_type.encode()),
        ("schema_version", schema_version.encode()),
        ("aggregate_type", aggregate_type.encode()),
        ("tenant_id", tenant_id.encode()),
        ("correlation_id", correlation_id.encode()),
        ("occurred_at", occurred_at.encode()),
        ("content_type", CONTENT_TYPE.encode()),
    ]


def headers(row: Row) -> list[tuple[str, bytes]]:
    """The Kafka headers of an outbox row's record."""
    return encode_headers(
        event_id=row.id,
        event_type=row.event_type,
        schema_version=row.schema_version,
        aggregate_type=row.aggregate_type,
        tenant_id=row.tenant_id,
        correlation_id=row.correlation_id,
        occurred_at=row.occurred_at,
    )


def decode_headers(
    headers: Mapping[str, Any] | Iterable[tuple[str, Any]],
    names: Collection[str] | None = None,
) -> dict[str, str]:
    """Headers as text, by name (a name given twice: the last one counts; a header without a
    value is empty, as an inapplicable one); only ``names`` when given, so a hot path decodes
    just what it reads."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {name: _text(value) for name, value in pairs if names is None or name in names}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return "" if value is None else str(value)
