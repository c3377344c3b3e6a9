"""Why an upload is refused; the API answers 413 or 415 with the code."""

from __future__ import annotations

from domain.errors import DomainError


class FileTooLarge(DomainError):
    """More bytes than the type's limit (HTTP 413)."""

    code = "file_too_large"


class ImageTooLarge(DomainError):
    """More pixels than allowed: a decompression bomb or simply too big to process (HTTP 413)."""

    code = "image_too_large"


class UnsupportedFileType(DomainError):
    """The content is none of the accepted types (HTTP 415)."""

    code = "unsupported_file_type"


class InvalidImage(DomainError):
    """The content starts like an accepted image but does not decode as one (HTTP 415)."""

    code = "invalid_image"


class StorageUnavailable(DomainError):
    """The object store refused or did not answer (HTTP 503)."""

    code = "storage_unavailable"
