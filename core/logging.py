"""Structured logs: JSON lines carrying the request's correlation id (structlog)."""

from __future__ import annotations

import logging
import sys

import structlog
from asgi_correlation_id.context import correlation_id


def _add_correlation_id(_logger, _name, event_dict):
    cid = correlation_id.get()
    if cid and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = cid
    return event_dict


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, alembic, kafka) through one renderer."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_correlation_id,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.addFilter(demote_transient)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for noisy in ("kafka", "httpx", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# Warnings of the Kafka clients that say nothing is wrong with us: kafka-python timing its own
# selector's tasks (a busy process, the GIL), and a consumer group's coordinator still loading
# when a worker starts (Kafka's retriable error 15: the client retries until it is there). Kept
# as info: in the process's log, not on `aqstream run`'s quiet terminal (warnings and errors).
_TRANSIENT = (
    ("kafka.net.selector", "threshold"),
    ("aiokafka", "GroupCoordinatorNotAvailableError"),
)


def demote_transient(record: logging.LogRecord) -> bool:
    """A handler filter: lower the known-harmless warnings above to info (never drops one)."""
    if record.levelno in (logging.WARNING, logging.ERROR):
        for prefix, words in _TRANSIENT:
            if record.name.startswith(prefix) and words in record.getMessage():
                record.levelno, record.levelname = logging.INFO, "INFO"
                break
    return True


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
