"""Why an export is refused; the API maps each to its HTTP status once."""

from __future__ import annotations

from domain.errors import DomainError, ValidationFailed


class TooManyExports(DomainError):
    """The organization already has its maximum of exports queued or running (HTTP 429)."""

    code = "too_many_exports"


class TooManyRowsForXlsx(ValidationFailed):
    """More rows than one XLSX sheet holds (HTTP 422)."""

    code = "too_many_rows_for_xlsx"


class InvalidRange(ValidationFailed):
    code = "invalid_range"
