"""The kafka-python producer of every process that writes records outside Faust: the relay, the
API's tracking producer and the dead-letter replay. One factory, so the three are tuned alike:
``acks=all`` (the broker has the record on every in-sync replica before it answers), ``timeout_s``
bounds a blocked send, the bootstrap and (for a batch) the delivery, and a lost broker is asked
again at least every second."""

from __future__ import annotations

from typing import Any

from core.settings import Settings


def make_producer(
    settings: Settings, client_id: str, *, timeout_s: float, ordered: bool = False
) -> Any:
    """A kafka-python producer. ``ordered`` (the relay): idempotent, one request in flight per
    connection and retries without limit, so within the producer's life the broker appends each
    partition's records in send order, and what it appended is a prefix; the delivery may take
    far longer than ``timeout_s`` (never before the relay gives up on it). Otherwise (a caller
    that waits for its batch): a delivery fails after ``timeout_s``, and a send lingers 2 ms to
    batch its neighbours."""
    from kafka import KafkaProducer

    timeout_ms = int(timeout_s * 1000)
    common: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "acks": "all",
        "max_block_ms": timeout_ms,
        "reconnect_backoff_max_ms": 1_000,
    }
    if ordered:
        return KafkaProducer(
            **common,
            enable_idempotence=True,
            max_in_flight_requests_per_connection=1,  # order even where the broker does not
            # check idempotent sequence numbers; retries are unlimited (the default)
            delivery_timeout_ms=max(120_000, 4 * timeout_ms),
            linger_ms=0,
            batch_size=256 * 1024,
            bootstrap_timeout_ms=min(timeout_ms, 5_000),
        )
    return KafkaProducer(
        **common,
        linger_ms=2,
        request_timeout_ms=timeout_ms,
        delivery_timeout_ms=timeout_ms + 1_000,
        bootstrap_timeout_ms=timeout_ms,
    )
