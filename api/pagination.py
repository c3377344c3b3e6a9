"""The one shape of every list the API answers: ``{"items": [...], "next_cursor": str | null}``.

Lists that grow with use take ``limit`` and ``cursor`` (``Paging``) and are paged by position in
the domain (``domain.pagination``); lists bounded by nature answer whole (``Page.whole``), with
``next_cursor`` null. The cursor is opaque to clients: base64url of the position's JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from typing import Annotated, Generic, Self, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from domain.pagination import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Json, PageRequest
from domain.pagination import Page as DomainPage

T = TypeVar("T")
M = TypeVar("M")

MAX_CURSOR_LENGTH = 1000


class Page(BaseModel, Generic[T]):
    """A page of a list, in the list's order."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page (and on lists "
        "answered whole)"
    )

    @classmethod
    def of(cls, page: DomainPage[M], out: Callable[[M], T]) -> Self:
        return cls(items=[out(item) for item in page.items], next_cursor=encode_cursor(page.after))

    @classmethod
    def whole(cls, items: Iterable[T]) -> Self:
        """A list bounded by nature, answered in one page."""
        return cls(items=list(items), next_cursor=None)


def encode_cursor(position: list[Json] | None) -> str | None:
    if position is None:
        return None
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> tuple[Json, ...] | None:
    """The position a cursor carries; whether it fits the list is the domain's to check."""
    if cursor is None:
        return None
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        position = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidCursor() from None
    if (
        not isinstance(position, list)
        or not position
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in position)
    ):
        raise InvalidCursor()
    return tuple(position)


def _paging(
    limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page"),
    cursor: str | None = Query(
        default=None,
        max_length=MAX_CURSOR_LENGTH,
        description="`next_cursor` of the previous page, unchanged (opaque); none: the first page",
        # What a cursor is made of (base64url without padding), stated for clients and fuzzers;
        # decode_cursor checks it, so any other string is the documented 422 invalid_cursor.
        json_schema_extra={"pattern": "^[A-Za-z0-9_-]+$"},
    ),
) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor))


Paging = Annotated[PageRequest, Depends(_paging)]
