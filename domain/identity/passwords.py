"""Password hashing with argon2id (argon2-cffi), with transparent re-hashing on parameter change.

The parameters are settings (``AQSTREAM_PASSWORD_HASH_*``, applied by ``configure`` when the API
starts): argon2-cffi's default, RFC 9106's low-memory profile (t=3, 64 MiB, p=4), unless an
operator chooses otherwise; OWASP's cheat sheet gives t=2, 19 MiB, p=1 as its minimum. A hash made
with other parameters still verifies, and is re-hashed at the next sign-in (``needs_rehash``)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Spent on unknown e-mails too, so a login's timing does not reveal whether an account exists.
_DUMMY_HASH = _hasher.hash("timing-equaliser")


def configure(*, time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Hash with these argon2id parameters from now on (the dummy hash too, so a sign-in with an
    unknown e-mail costs what one with a known e-mail does)."""
    global _hasher, _DUMMY_HASH
    current = _hasher
    if (current.time_cost, current.memory_cost, current.parallelism) == (
        time_cost,
        memory_kib,
        parallelism,
    ):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _DUMMY_HASH = _hasher.hash("timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
