"""Ticket codes and their QR images.

A code is ``base64url(version || registration id || HMAC-SHA256(key, ...)[:16])``, 44 characters.
The MAC covers the registration id and the registration's random, stored ``ticket_secret``: without
the server's key nobody can mint a code, and without the secret even the key holder cannot guess
one. A code carries no state (status, event); those are read from the registration at the door.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import uuid

import segno

from domain.errors import ValidationFailed

VERSION = 1
_MAC_BYTES = 16  # 128 bits: truncated HMAC-SHA256, plenty for an online check, keeps the QR small
_RAW_BYTES = 1 + 16 + _MAC_BYTES
_CODE_CHARS = 44  # base64 of 33 bytes, no padding needed
_DOMAIN = b"aqstream.ticket"

QR_ERROR = "m"
QR_SCALE = 8
QR_BORDER = 4


class InvalidTicketCode(ValidationFailed):
    """A code this server did not issue, or one that no longer matches its registration."""

    code = "invalid_code"

    def __init__(self) -> None:
        super().__init__("The ticket code is not valid")


def _mac(key: bytes, registration_id: uuid.UUID, ticket_secret: str) -> bytes:
    # Every part but the last has a fixed length, so the concatenation is unambiguous.
    message = _DOMAIN + bytes([VERSION]) + registration_id.bytes + ticket_secret.encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(key: bytes, registration_id: uuid.UUID, ticket_secret: str) -> str:
    """The registration's ticket code (deterministic: the same code every time)."""
    raw = bytes([VERSION]) + registration_id.bytes + _mac(key, registration_id, ticket_secret)
    return base64.urlsafe_b64encode(raw).decode()


def registration_id_of(code: str) -> tuple[uuid.UUID, bytes]:
    """The registration id a code claims and its MAC, unverified; ``InvalidTicketCode`` when the
    code is not even well-formed."""
    if not isinstance(code, str) or len(code) != _CODE_CHARS or not code.isascii():
        raise InvalidTicketCode()
    try:
        raw = base64.urlsafe_b64decode(code.encode())
    except (binascii.Error, ValueError):
        raise InvalidTicketCode() from None
    if (
        len(raw) != _RAW_BYTES
        or raw[0] != VERSION
        or base64.urlsafe_b64encode(raw).decode() != code
    ):
        raise InvalidTicketCode()
    return uuid.UUID(bytes=raw[1:17]), raw[17:]


def verify(key: bytes, code: str, registration_id: uuid.UUID, ticket_secret: str) -> None:
    """Check ``code`` against a registration in constant time; ``InvalidTicketCode`` if it fails."""
    claimed_id, mac = registration_id_of(code)
    expected = _mac(key, registration_id, ticket_secret)
    # Compare the MAC first and always; the id check is folded in without an early return.
    if not hmac.compare_digest(mac, expected) or claimed_id != registration_id:
        raise InvalidTicketCode()


def _qr(code: str) -> segno.QRCode:
    # Alphanumeric mode cannot hold lower case; byte mode of the ASCII code it is.
    return segno.make_qr(code, error=QR_ERROR, boost_error=False, encoding="ascii")


def qr_png(code: str) -> bytes:
    """The code as a QR image, PNG."""
    out = io.BytesIO()
    _qr(code).save(out, kind="png", scale=QR_SCALE, border=QR_BORDER)
    return out.getvalue()


def qr_svg(code: str) -> str:
    """The code as a QR image, SVG (scales to any size; no XML declaration, embeddable)."""
    out = io.BytesIO()
    _qr(code).save(
        out,
        kind="svg",
        scale=QR_SCALE,
        border=QR_BORDER,
        xmldecl=False,
        svgns=True,
        title="Ticket",
    )
    return out.getvalue().decode()
