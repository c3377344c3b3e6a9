"""Field types shared by request schemas."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.errors import ValidationFailed
from domain.identity.service import normalize_email
from domain.timezones import check_timezone, time_zone_names

# Error types raised here become the error code of a 422 whose errors all share it.
FIELD_ERROR_CODES = {"invalid_email", "invalid_slug", "invalid_timezone"}


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


def _time_zone(value: str) -> str:
    try:
        return check_timezone(value)
    except ValidationFailed as exc:
        raise PydanticCustomError("invalid_timezone", exc.message) from None


# The schema lists the zones (from the pinned tzdata package), so clients and fuzzers know them.
TimeZoneName = Annotated[
    str,
    Field(json_schema_extra={"enum": list(time_zone_names())}, examples=["Europe/Berlin"]),
    AfterValidator(_time_zone),
]


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
EMAIL_PATTERN = rf"^[^@\x00]+@(?!(?:[^@]*\.)?(?:{_SPECIAL_USE})\.?$)[^@\x00]+$"

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


NO_NUL = r"^[^\x00]*$"


def _forbid_nul(node: Any) -> None:
    """Add the no-NUL pattern to every string in a JSON Schema node that has no pattern."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "pattern" not in node and "format" not in node:
            node["pattern"] = NO_NUL
        for value in node.values():
            _forbid_nul(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_nul(value)


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are an error (a typo must not pass silently), and
    no string may contain NUL, which PostgreSQL text cannot store (the schema says so too)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("nul_character", "Text may not contain NUL characters")
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler: GetJsonSchemaHandler):
        schema = handler(core_schema)
        _forbid_nul(handler.resolve_ref_schema(schema))
        return schema


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_only(value: Any) -> Any:
    # pydantic also reads numbers as Unix times; the documented format is RFC 3339 only.
    if isinstance(value, str) and not _ISO.match(value):
        raise PydanticCustomError("datetime_format", "Expected an RFC 3339 date-time")
    return value


IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
