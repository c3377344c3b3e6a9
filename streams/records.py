"""A consumed record, the one type every stream handler reads: the relay's (or the tracking
producer's) headers decoded by the wire codec (``domain/outbox/records.py``), a JSON value."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from domain.outbox.records import decode_headers


@dataclass(frozen=True)
class Record:
    """A consumed record as the relay wrote it: UTF-8 headers, a JSON value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, event: Any) -> Record:
        """The record of a Faust event."""
        return cls.of_message(event.message)

    @classmethod
    def of_message(cls, message: Any) -> Record:
        """The record of a consumed message (Faust's, or aiokafka's ``ConsumerRecord``)."""
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=decode_headers(message.headers or ()),
        )

    @property
    def event_id(self) -> uuid.UUID:
        return uuid.UUID(self.headers["event_id"])

    @property
    def event_type(self) -> str:
        return self.headers.get("event_type", "")

    @property
    def tenant_id(self) -> uuid.UUID | None:
        value = self.headers.get("tenant_id")
        return uuid.UUID(value) if value else None

    def payload(self) -> dict[str, Any]:
        return json.loads(self.value)

    def outbox_headers(self) -> dict[str, str]:
        """Headers for the events this record causes: its correlation id goes on."""
        cid = self.headers.get("correlation_id")
        return {"correlation_id": cid} if cid else {}
