"""Domain exceptions: a stable code each; the API maps the class to an HTTP status once."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class NotFound(DomainError):
    """Missing, or not visible to the caller: the two are indistinguishable on purpose."""

    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidState(Conflict):
    """An illegal state transition; ``details`` carries the current state."""

    code = "invalid_state"


class PermissionDenied(DomainError):
    code = "forbidden"


class Unauthenticated(DomainError):
    code = "unauthorized"


class ValidationFailed(DomainError):
    code = "validation_error"
