"""What may be uploaded: the type is read from the content's magic bytes (puremagic), never from
the file name or a declared Content-Type; each type has its size limit."""

from __future__ import annotations

from dataclasses import dataclass

import puremagic

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
DOCUMENT_TYPES = {"application/pdf": "pdf"}
ALLOWED_TYPES = tuple(sorted((*IMAGE_TYPES, *DOCUMENT_TYPES)))
# Enough of the file's head for every signature above (they sit in the first 16 bytes; PDF
# readers accept "%PDF-" anywhere in the first KiB).
SNIFF_BYTES = 2048


@dataclass(frozen=True)
class Limits:
    image_bytes: int
    document_bytes: int
    max_image_pixels: int

    @property
    def largest(self) -> int:
        return max(self.image_bytes, self.document_bytes)

    def bytes_for(self, content_type: str) -> int:
        return self.image_bytes if is_image(content_type) else self.document_bytes


def is_image(content_type: str) -> bool:
    return content_type in IMAGE_TYPES


def detect(head: bytes) -> str | None:
    """The MIME type of a file from its first bytes, if it is one we accept; else None.

    Only the most confident matches count: a file whose best guess is another type does not
    pass because one weaker signature happens to fit."""
    if not head:
        return None
    try:
        matches = puremagic.magic_string(head)
    except puremagic.PureError:
        return None
    if not matches:
        return None
    best = max(m.confidence for m in matches)
    for match in matches:
        if match.confidence == best and match.mime_type in ALLOWED_TYPES:
            return match.mime_type
    return None


def describe(head: bytes) -> str | None:
    """puremagic's best guess for a rejected file, for the error's details."""
    try:
        return puremagic.from_string(head, mime=True) or None
    except (puremagic.PureError, ValueError):
        return None
