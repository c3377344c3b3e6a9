"""Reading a multipart upload as it streams in, with the limits applied on the way.

Nothing is stored before it passes: a Content-Length above the largest limit is refused before
the body is read; the file's type is detected from its first bytes as soon as they arrive (415
without reading further); at most limit + 1 bytes of the file are kept, and the stream is
abandoned once a limit is exceeded (413). The request's transaction is opened only afterwards,
so a slow upload holds no database connection.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from api.deps import MANAGE_ROLES, StateDep, enter_tenant_as
from api.errors import ApiError
from api.security import CurrentPrincipal
from api.state import AppState
from api.types import RequestModel
from domain.media.content import ALLOWED_TYPES, SNIFF_BYTES, Limits, describe, detect
from domain.media.models import MediaPurpose
from domain.media.service import UploadedFile
from domain.uow import UnitOfWork

# Room for the two text fields and the part headers around the file.
FORM_OVERHEAD = 64 * 1024
FIELD_MAX_BYTES = 1024
SPOOL_IN_MEMORY = 1024 * 1024  # larger files spill to a temporary file
FILE_FIELD = "file"
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


class UploadForm(RequestModel):
    organization_id: uuid.UUID
    purpose: MediaPurpose


@dataclass
class ReceivedUpload:
    form: UploadForm
    file: UploadedFile


def too_large(limit: int, content_type: str | None) -> ApiError:
    return ApiError(
        413,
        "file_too_large",
        f"The file exceeds the limit of {limit} bytes"
        + (f" for {content_type}" if content_type else ""),
        {"limit_bytes": limit, "content_type": content_type},
    )


def unsupported(head: bytes) -> ApiError:
    return ApiError(
        415,
        "unsupported_file_type",
        "Accepted: JPEG, PNG, WebP and GIF images, PDF documents (judged by the content)",
        {"detected": describe(head), "allowed": list(ALLOWED_TYPES)},
    )


def _invalid(loc: str, kind: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", loc), "msg": message, "type": kind}])


def _clean_filename(raw: bytes | None) -> str | None:
    if not raw:
        return None
    name = raw.decode("utf-8", errors="replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("", name).strip()[:255]
    return name or None


@dataclass
class _Reader:
    """Callbacks of python-multipart's streaming parser."""

    limits: Limits
    fields: dict[str, bytes] = field(default_factory=dict)
    spool: Any = None
    filename: str | None = None
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    content_type: str | None = None
    digest: Any = field(default_factory=hashlib.sha256)
    _header_name: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _part: str | None = None
    _value: bytearray = field(default_factory=bytearray)
    # Why the file is refused, once known; its further bytes are dropped.
    refusal: Exception | None = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._part = None
        self._value = bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if name != FILE_FIELD and name not in UploadForm.model_fields:
            raise _invalid(name, "extra_forbidden", "Unknown form field")
        if name in self.fields or (name == FILE_FIELD and self.spool is not None):
            raise _invalid(name, "duplicate_field", "The field is given twice")
        self._part = name
        if name == FILE_FIELD:
            self.filename = _clean_filename(options.get(b"filename"))
            self.spool = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._part != FILE_FIELD:
            self._value.extend(chunk)
            if len(self._value) > FIELD_MAX_BYTES:
                raise _invalid(self._part or "", "string_too_long", "The field is too long")
            return
        if self.refusal is not None:
            return
        if self.content_type is None and len(self.head) < SNIFF_BYTES:
            self.head.extend(chunk[: SNIFF_BYTES - len(self.head)])
            if len(self.head) >= SNIFF_BYTES and not self._detect():
                return
        limit = (
            self.limits.bytes_for(self.content_type) if self.content_type else self.limits.largest
        )
        kept = chunk[: limit + 1 - self.size]  # never keep more than limit + 1 bytes
        self.spool.write(kept)
        self.digest.update(kept)
        self.size += len(kept)
        if self.size > limit:
            self.refusal = too_large(limit, self.content_type)

    def _detect(self) -> bool:
        self.content_type = detect(bytes(self.head))
        if self.content_type is None:
            self.refusal = unsupported(bytes(self.head))
        return self.refusal is None

    def _part_end(self) -> None:
        if self._part == FILE_FIELD and self.refusal is None:
            if self.size == 0:
                self.refusal = _invalid(FILE_FIELD, "empty_file", "The file is empty")
            elif self.content_type is not None or self._detect():
                limit = self.limits.bytes_for(self.content_type)
                if self.size > limit:
                    self.refusal = too_large(limit, self.content_type)
        elif self._part is not None:
            self.fields[self._part] = bytes(self._value)
        self._part = None


def _boundary(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(
            415,
            "multipart_required",
            "Send the file as multipart/form-data (fields: file, organization_id, purpose)",
        )
    return boundary


Authorize = Callable[[uuid.UUID], Awaitable[None]]


async def receive(
    chunks: AsyncIterable[bytes],
    content_type: str,
    content_length: str | None,
    limits: Limits,
    authorize: Authorize | None = None,
) -> ReceivedUpload:
    """Parse a multipart body from ``chunks`` under ``limits``; consumes no more of the stream
    than needed to decide.

    ``authorize`` is awaited with the organization as soon as its field has arrived: a caller
    who may not upload there is refused before the file is read (when the field precedes it)
    and in any case before being told anything about the file.

    A refused file (wrong type, too large, empty) stops the reading at once, except when the
    organization has not arrived yet (the file came first): then at most ``FORM_OVERHEAD`` more
    bytes are read, the file's dropped, to find it and ask first."""
    boundary = _boundary(content_type)
    budget = limits.largest + FORM_OVERHEAD
    if content_length and content_length.isdigit() and int(content_length) > budget:
        raise too_large(limits.largest, None)
    reader = _Reader(limits)
    parser = MultipartParser(boundary, reader.callbacks())
    received = 0
    authorized = False

    async def authorize_once() -> None:
        nonlocal authorized
        raw = reader.fields.get("organization_id", b"").decode("utf-8", errors="replace")
        if authorized or authorize is None or not raw:
            return
        try:
            org_id = uuid.UUID(raw.strip())
        except ValueError:
            return  # validation says so below
        authorized = True
        await authorize(org_id)

    read_after_refusal = 0
    try:
        try:
            async for chunk in chunks:
                received += len(chunk)
                if received > budget:
                    raise too_large(limits.largest, reader.content_type)
                parser.write(chunk)
                await authorize_once()
                if reader.refusal is not None:
                    read_after_refusal += len(chunk)
                    if authorized or authorize is None or read_after_refusal > FORM_OVERHEAD:
                        raise reader.refusal
            parser.finalize()
        except MultipartParseError as exc:
            raise ApiError(400, "invalid_multipart", f"Malformed multipart body: {exc}") from None
        except (ApiError, RequestValidationError):
            await authorize_once()  # not allowed there: that is the answer, not the file's fault
            raise
        await authorize_once()
        if reader.refusal is not None:
            raise reader.refusal
        if reader.spool is None:
            raise _invalid(FILE_FIELD, "missing", "Field required")
        try:
            form = UploadForm.model_validate(
                {k: v.decode("utf-8", errors="replace") for k, v in reader.fields.items()}
            )
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
    except BaseException:
        if reader.spool is not None:
            reader.spool.close()
        raise
    reader.spool.seek(0)
    upload = UploadedFile(
        file=reader.spool,
        size=reader.size,
        content_type=reader.content_type,
        sha256=reader.digest.hexdigest(),
        filename=reader.filename,
    )
    return ReceivedUpload(form, upload)


def limits_of(settings) -> Limits:
    return Limits(
        image_bytes=settings.media_image_max_bytes,
        document_bytes=settings.media_document_max_bytes,
        max_image_pixels=settings.media_max_image_pixels,
    )


def _may_upload(state: AppState, user_id: uuid.UUID, org_id: uuid.UUID) -> None:
    with UnitOfWork(state.sessionmaker, user_id=user_id) as uow:
        enter_tenant_as(uow, org_id, MANAGE_ROLES)  # 404 outsider, 403 analyst


async def read_upload(
    request: Request, principal: CurrentPrincipal, state: StateDep
) -> AsyncIterator[ReceivedUpload]:
    """The upload of this request (after authentication, before the transaction opens)."""

    async def authorize(org_id: uuid.UUID) -> None:
        await run_in_threadpool(_may_upload, state, principal.user_id, org_id)

    received = await receive(
        request.stream(),
        request.headers.get("content-type", ""),
        request.headers.get("content-length"),
        limits_of(state.settings),
        authorize,
    )
    try:
        yield received
    finally:
        received.file.file.close()


UploadDep = Annotated[ReceivedUpload, Depends(read_upload)]
