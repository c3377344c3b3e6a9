"""IANA time zone names: the ones this platform accepts, from the pinned ``tzdata`` package.

One list for validation and for the API schema (an ``enum``), so the schema is the same on every
machine whatever zone files the operating system carries, and a name the schema offers always
resolves."""

from __future__ import annotations

import importlib.resources
from functools import cache
from zoneinfo import ZoneInfo

from domain.errors import ValidationFailed


@cache
def time_zone_names() -> tuple[str, ...]:
    names = importlib.resources.files("tzdata").joinpath("zones").read_text().split()
    return tuple(sorted(names))


@cache
def _known() -> frozenset[str]:
    return frozenset(time_zone_names())


def check_timezone(name: str) -> str:
    """``name`` if it is a known IANA zone, else 422 ``invalid_timezone``."""
    if name not in _known():
        raise ValidationFailed(f"Unknown time zone {name!r}", code="invalid_timezone")
    ZoneInfo(name)  # resolves: the tzdata package is installed
    return name
