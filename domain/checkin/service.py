"""Check-in at the door: by registration (an organizer's list) or by ticket code (a scanner).

The registration row is locked ``FOR UPDATE`` before anything is decided, so two scanners on the
same ticket serialize and exactly one succeeds; the unique index on ``check_ins.registration_id``
is the backstop. A scanner's retry carries the same nonce and gets the first result back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from domain.checkin import tickets
from domain.checkin.events import CheckInCompleted
from domain.checkin.models import CheckIn
from domain.db.base import uuid7
from domain.errors import Conflict, InvalidState, NotFound
from domain.registration.models import Registration, RegistrationStatus
from domain.uow import UnitOfWork


@dataclass(frozen=True)
class CheckInResult:
    registration: Registration
    check_in: CheckIn
    replayed: bool

    @property
    def checked_in_at(self) -> datetime:
        return self.registration.checked_in_at or self.check_in.created_at


@dataclass(frozen=True)
class CheckInStats:
    registered: int
    checked_in: int

    @property
    def attendance_rate(self) -> float:
        return self.checked_in / self.registered if self.registered else 0.0


def _now() -> datetime:
    return datetime.now(UTC)


# --- tickets -------------------------------------------------------------------------------------


def ticket_code(registration: Registration, key: bytes) -> str:
    """The registration's ticket code; a cancelled registration has none."""
    if registration.status == RegistrationStatus.CANCELLED:
        raise InvalidState("The registration is cancelled", code="cancelled")
    return tickets.issue(key, registration.id, registration.ticket_secret)


# --- check-in ------------------------------------------------------------------------------------


def _lock(uow: UnitOfWork, registration_id: uuid.UUID) -> Registration | None:
    return uow.session.get(
        Registration, registration_id, with_for_update=True, populate_existing=True
    )


def check_in_registration(
    uow: UnitOfWork, registration_id: uuid.UUID, *, by: uuid.UUID, nonce: str | None = None
) -> CheckInResult:
    """Check a registration in by its id (an organizer ticking a list)."""
    registration = _lock(uow, registration_id)
    if registration is None:
        raise NotFound("Registration not found")
    return _check_in(uow, registration, event_id=registration.event_id, by=by, nonce=nonce)


def check_in_by_code(
    uow: UnitOfWork,
    event_id: uuid.UUID,
    code: str,
    *,
    key: bytes,
    by: uuid.UUID,
    nonce: str,
) -> CheckInResult:
    """Check in the holder of a scanned ticket code at ``event_id``."""
    registration_id, _ = tickets.registration_id_of(code)
    # Read, verify, and only then lock: a forged code never holds a real row's lock.
    registration = uow.session.get(Registration, registration_id)
    if registration is None:
        # Indistinguishable from a bad MAC on purpose: the code says nothing about what exists.
        raise tickets.InvalidTicketCode()
    tickets.verify(key, code, registration.id, registration.ticket_secret)
    registration = _lock(uow, registration_id)
    if registration is None:
        raise tickets.InvalidTicketCode()
    return _check_in(uow, registration, event_id=event_id, by=by, nonce=nonce)


def _already(registration: Registration, existing: CheckIn) -> InvalidState:
    at = registration.checked_in_at or existing.created_at
    return InvalidState(
        "Already checked in",
        code="already_checked_in",
        details={"checked_in_at": at.isoformat()},
    )


def _existing(uow: UnitOfWork, registration_id: uuid.UUID) -> CheckIn | None:
    return uow.session.scalar(select(CheckIn).where(CheckIn.registration_id == registration_id))


def _check_in(
    uow: UnitOfWork,
    registration: Registration,
    *,
    event_id: uuid.UUID,
    by: uuid.UUID,
    nonce: str | None,
) -> CheckInResult:
    if registration.event_id != event_id:
        raise InvalidState("The ticket is for another event", code="wrong_event")
    existing = _existing(uow, registration.id)
    if existing is not None:
        if nonce is not None and existing.nonce == nonce:
            return CheckInResult(registration, existing, replayed=True)
        raise _already(registration, existing)
    if registration.status == RegistrationStatus.CANCELLED:
        raise InvalidState("The registration is cancelled", code="cancelled")
    if registration.status != RegistrationStatus.CONFIRMED:
        raise InvalidState(
            "The registration is not confirmed",
            code="not_confirmed",
            details={"status": registration.status.value},
        )
    if registration.checked_in_at is not None:
        raise InvalidState(
            "Already checked in",
            code="already_checked_in",
            details={"checked_in_at": registration.checked_in_at.isoformat()},
        )
    now = _now()
    check_in = CheckIn(
        id=uuid7(),
        created_at=now,
        tenant_id=registration.tenant_id,
        event_id=registration.event_id,
        registration_id=registration.id,
        nonce=nonce,
        checked_in_by=by,
    )
    try:
        with uow.session.begin_nested():
            uow.session.add(check_in)
            uow.session.flush()
    except IntegrityError as exc:
        return _duplicate(uow, registration, nonce, exc)
    registration.checked_in_at = now
    uow.session.flush()
    uow.emit(CheckInCompleted.of(registration, check_in))
    return CheckInResult(registration, check_in, replayed=False)


def _duplicate(
    uow: UnitOfWork, registration: Registration, nonce: str | None, exc: IntegrityError
) -> CheckInResult:
    """A check-in row the unique indexes refused: the lock makes that rare, not impossible."""
    uow.session.refresh(registration)
    existing = _existing(uow, registration.id)
    if existing is not None:
        if nonce is not None and existing.nonce == nonce:
            return CheckInResult(registration, existing, replayed=True)
        raise _already(registration, existing) from None
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if constraint == "uq_check_ins_event_nonce":
        raise Conflict(
            "This nonce was already used for another ticket; send a fresh one per scan",
            code="nonce_reused",
        ) from None
    raise exc


def stats(uow: UnitOfWork, event_id: uuid.UUID) -> CheckInStats:
    """Confirmed seats of an event and how many of them are checked in."""
    checked = Registration.checked_in_at.is_not(None)
    registered, checked_in = uow.session.execute(
        select(
            func.coalesce(func.sum(Registration.quantity), 0),
            func.coalesce(func.sum(Registration.quantity).filter(checked), 0),
        ).where(
            Registration.event_id == event_id,
            Registration.status == RegistrationStatus.CONFIRMED,
        )
    ).one()
    return CheckInStats(registered=int(registered), checked_in=int(checked_in))
