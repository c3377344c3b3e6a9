"""Keyset pagination, one way for every list that grows with use.

A page is the rows *after a position* (the last row's sort key and id), never an offset: a row
inserted or removed meanwhile shifts no other row between pages, so none repeats or vanishes.
The position travels as a list of JSON values (``Page.after``); the API wraps it into an opaque
cursor, and it comes back checked against the keys' types here, so a cursor of another list or a
forged one is an ``invalid_cursor`` refusal, never a database error.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, bindparam, or_, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from domain.errors import ValidationFailed

T = TypeVar("T")

Json = str | int
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class InvalidCursor(ValidationFailed):
    """A cursor no page of this list answered (garbled, forged, or another list's)."""

    code = "invalid_cursor"

    def __init__(self, message: str = "Malformed cursor: pass a `next_cursor` unchanged") -> None:
        super().__init__(message, details={"in": "query", "name": "cursor"})


@dataclass(frozen=True)
class PageRequest:
    """``limit`` rows after ``after`` (None: from the start)."""

    limit: int = DEFAULT_LIMIT
    after: tuple[Json, ...] | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """``after``: the position of the last item when more follow; None on the last page."""

    items: list[T]
    after: list[Json] | None = None


@dataclass(frozen=True)
class Key:
    column: InstrumentedAttribute[Any]
    descending: bool = False


def desc(column: InstrumentedAttribute[Any]) -> Key:
    return Key(column, descending=True)


@dataclass(frozen=True)
class Keyset:
    """A list's order: sort keys ending with a unique one (the id), so every position is one row.

    Columns must be NOT NULL: a NULL neither compares nor sorts as a position can say."""

    keys: tuple[Key, ...]

    def __init__(self, *keys: Key | InstrumentedAttribute[Any]) -> None:
        object.__setattr__(self, "keys", tuple(k if isinstance(k, Key) else Key(k) for k in keys))

    def page(self, session: Session, stmt: Select[Any], request: PageRequest) -> Page[Any]:
        """Run ``stmt`` (without ORDER BY or LIMIT) for one page. A statement of one entity pages
        that entity; one of several pages their rows (tuples)."""
        if not 1 <= request.limit <= MAX_LIMIT:
            raise ValidationFailed(f"limit must be 1-{MAX_LIMIT}", code="invalid_limit")
        if request.after is not None:
            stmt = stmt.where(self._after(self._load(request.after)))
        stmt = stmt.order_by(
            *(k.column.desc() if k.descending else k.column.asc() for k in self.keys)
        ).limit(request.limit + 1)
        if len(stmt.column_descriptions) == 1:
            rows: list[Any] = list(session.scalars(stmt))
        else:
            rows = [tuple(r) for r in session.execute(stmt)]
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        return Page(rows, self._dump(rows[-1]) if more else None)

    # --- the position -----------------------------------------------------------------------

    def _after(self, values: tuple[Any, ...]) -> Any:
        params = [
            bindparam(None, v, type_=k.column.type) for k, v in zip(self.keys, values, strict=True)
        ]
        directions = {k.descending for k in self.keys}
        if len(directions) == 1:  # one row comparison: an index on the keys serves it
            row, position = tuple_(*(k.column for k in self.keys)), tuple_(*params)
            return row < position if directions.pop() else row > position
        terms = []
        for i, key in enumerate(self.keys):
            same = [self.keys[j].column == params[j] for j in range(i)]
            beyond = key.column < params[i] if key.descending else key.column > params[i]
            terms.append(and_(*same, beyond))
        return or_(*terms)

    def _dump(self, row: Any) -> list[Json]:
        return [_json(_value(row, k.column)) for k in self.keys]

    def _load(self, values: Sequence[Json]) -> tuple[Any, ...]:
        if len(values) != len(self.keys):
            raise InvalidCursor()
        return tuple(_parse(k.column, v) for k, v in zip(self.keys, values, strict=True))


def _value(row: Any, column: InstrumentedAttribute[Any]) -> Any:
    owner = column.class_
    parts = row if isinstance(row, tuple) else (row,)
    for part in parts:
        if isinstance(part, owner):
            return getattr(part, column.key)
    raise TypeError(f"no {owner.__name__} in the page's rows to take {column.key} from")


def _json(value: Any) -> Json:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"cannot page on a {type(value).__name__} key")
    return value


def _parse(column: InstrumentedAttribute[Any], value: Json) -> Any:
    kind = column.type.python_type
    try:
        if kind is datetime and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                return parsed
        elif kind is uuid.UUID and isinstance(value, str):
            return uuid.UUID(hex=value)
        elif (kind is int and type(value) is int and -(2**63) <= value < 2**63) or (
            kind is str and isinstance(value, str) and "\x00" not in value
        ):
            return value
    except ValueError:
        pass
    raise InvalidCursor()
