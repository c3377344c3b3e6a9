"""Field types shared by request schemas."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from domain.errors import ValidationFailed
from domain.identity.service import normalize_email

# Error types raised here become the error code of a 422 whose errors all share it.
FIELD_ERROR_CODES = {"invalid_email", "invalid_slug"}


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except ValidationFailed as exc:
        raise PydanticCustomError("invalid_email", exc.message) from None


SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])$"


def _slug(value: str) -> str:
    value = value.strip().lower()
    if not re.match(SLUG_PATTERN, value):
        raise PydanticCustomError(
            "invalid_slug", "3-64 lower-case letters, digits and inner hyphens"
        )
    return value


Slug = Annotated[
    str,
    Field(json_schema_extra={"pattern": SLUG_PATTERN}, examples=["pycon-berlin"]),
    AfterValidator(_slug),
]


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


# Special-use domains (RFC 6761) never receive mail; the schema says so, not only the server.
_SPECIAL_USE = "|".join(
    _any_case(d) for d in ("arpa", "invalid", "local", "localhost", "onion", "test")
)
EMAIL_PATTERN = rf"^[^@]+@(?!(?:[^@]*\.)?(?:{_SPECIAL_USE})\.?$)[^@]+$"

Email = Annotated[
    str,
    # The pattern documents what _email enforces (pydantic's regex engine has no look-ahead).
    Field(
        max_length=320,
        json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN},
        examples=["ada@example.org"],
    ),
    AfterValidator(_email),
]
