"""``aqstream worker`` with an analytics sink that stores nothing: bench/analytics.py's (a) runs
it to show the worker's own ceiling (consuming, mapping, batching) apart from the warehouse.
Counts what it was handed on the worker's metrics (``aqstream_worker_records_total``)."""

from __future__ import annotations

from typing import Any

import streams.analytics
from aqstream.cli import app


def _nothing(session: Any, facts: Any) -> None:
    return None


if __name__ == "__main__":
    streams.analytics.warehouse_sink = lambda: _nothing
    app(["worker"])
