"""The upload is judged while it streams: a limit or a wrong type stops the reading, and a
declared Content-Length over the limit is refused before any of the body is read."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from api.errors import ApiError
from api.media.upload import FORM_OVERHEAD, receive
from aqstream.stack.servers import free_port
from core.settings import Settings
from domain.media.content import Limits
from tests.factories import V1, Organizer, image_bytes
from tests.live import served
from tests.media.images import pdf_bytes

MiB = 1024 * 1024
LIMITS = Limits(image_bytes=5 * MiB, document_bytes=10 * MiB, max_image_pixels=40_000_000)
BOUNDARY = "aqstream-test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
CHUNK = 64 * 1024


def _fields(org_id: str, purpose: str = "event_cover") -> bytes:
    return b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (("organization_id", org_id), ("purpose", purpose))
    )


FILE_OPEN = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
).encode()
END = f"--{BOUNDARY}--\r\n".encode()


def _head(org_id: str) -> bytes:
    """The start of a body whose fields precede the file."""
    return _fields(org_id) + FILE_OPEN


class Body:
    """A multipart body served lazily in chunks, counting how much of it was asked for."""

    def __init__(
        self, file_head: bytes, file_size: int, org_id: str = "0" * 32, file_first: bool = False
    ) -> None:
        self.file_head = file_head
        self.padding = file_size - len(file_head)
        self.fields = _fields(org_id)
        self.file_first = file_first
        self.consumed = 0

    def _pieces(self) -> Iterator[bytes]:
        if not self.file_first:
            yield self.fields
        yield FILE_OPEN + self.file_head
        left = self.padding
        while left > 0:
            yield b"\x00" * min(CHUNK, left)
            left -= CHUNK
        yield b"\r\n"
        if self.file_first:
            yield self.fields
        yield END

    async def chunks(self) -> AsyncIterator[bytes]:
        pending = b""
        for piece in self._pieces():
            pending += piece
            while len(pending) >= CHUNK:
                self.consumed += CHUNK
                yield pending[:CHUNK]
                pending = pending[CHUNK:]
        if pending:
            self.consumed += len(pending)
            yield pending


def _receive(body: Body, content_length: str | None = None):
    return asyncio.run(receive(body.chunks(), CONTENT_TYPE, content_length, LIMITS))


def test_an_oversized_image_stops_the_reading_at_the_limit() -> None:
    body = Body(image_bytes("PNG", (8, 8)), file_size=50 * MiB)
    with pytest.raises(ApiError) as refused:
        _receive(body)
    assert (refused.value.status, refused.value.code) == (413, "file_too_large")
    # Read up to the 5 MiB image limit and one chunk more, not the 50 MiB offered.
    assert body.consumed <= 5 * MiB + 2 * CHUNK


def test_a_wrong_type_is_refused_after_its_first_bytes() -> None:
    body = Body(b"MZ\x90\x00" + b"\x00" * 100, file_size=8 * MiB)  # a Windows executable
    with pytest.raises(ApiError) as refused:
        _receive(body)
    assert (refused.value.status, refused.value.code) == (415, "unsupported_file_type")
    assert body.consumed <= 2 * CHUNK


def test_a_pdf_may_stream_past_the_image_limit() -> None:
    body = Body(pdf_bytes(4096), file_size=7 * MiB)
    received = _receive(body)
    assert received.file.content_type == "application/pdf"
    assert received.file.size == 7 * MiB
    received.file.file.close()


def test_a_declared_length_over_the_limit_reads_nothing() -> None:
    body = Body(image_bytes(), file_size=100)
    declared = str(10 * MiB + FORM_OVERHEAD + 1)
    with pytest.raises(ApiError) as refused:
        _receive(body, content_length=declared)
    assert (refused.value.status, refused.value.code) == (413, "file_too_large")
    assert body.consumed == 0


def test_an_outsider_is_refused_before_the_file_is_read() -> None:
    asked: list[uuid.UUID] = []

    async def authorize(org_id: uuid.UUID) -> None:
        asked.append(org_id)
        raise ApiError(404, "not_found", "Not found")

    org_id = uuid.uuid4()
    body = Body(image_bytes(), file_size=8 * MiB, org_id=str(org_id))
    with pytest.raises(ApiError) as refused:
        asyncio.run(receive(body.chunks(), CONTENT_TYPE, None, LIMITS, authorize))
    assert (refused.value.status, asked) == (404, [org_id])
    assert body.consumed <= CHUNK


def _outsider() -> tuple[list[uuid.UUID], Callable[[uuid.UUID], Awaitable[None]]]:
    asked: list[uuid.UUID] = []

    async def authorize(org_id: uuid.UUID) -> None:
        asked.append(org_id)
        raise ApiError(404, "not_found", "Not found")

    return asked, authorize


def test_a_small_refused_file_before_the_fields_still_asks_about_the_organization() -> None:
    asked, authorize = _outsider()
    org_id = uuid.uuid4()
    body = Body(b"plain text" * 10, file_size=100, org_id=str(org_id), file_first=True)
    with pytest.raises(ApiError) as refused:
        asyncio.run(receive(body.chunks(), CONTENT_TYPE, None, LIMITS, authorize))
    assert (refused.value.status, asked) == (404, [org_id])


def test_a_large_refused_file_before_the_fields_is_not_read_to_its_end() -> None:
    asked, authorize = _outsider()
    body = Body(b"plain text" * 300, file_size=9 * MiB, file_first=True)
    with pytest.raises(ApiError) as refused:
        asyncio.run(receive(body.chunks(), CONTENT_TYPE, None, LIMITS, authorize))
    assert (refused.value.status, refused.value.code, asked) == (415, "unsupported_file_type", [])
    assert body.consumed <= FORM_OVERHEAD + 2 * CHUNK


# --- through a real server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_port(settings: Settings) -> Iterator[int]:
    from api.app import create_app

    port = free_port()
    with served(create_app(settings), port=port):
        yield port


def _status_line(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    return sock.recv(65536).split(b"\r\n", 1)[0]


def test_the_server_answers_413_before_the_body_is_sent(client, api, admin, live_port) -> None:
    org = Organizer(client, api, admin)
    head = (
        f"POST {V1}/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {org.owner['access_token']}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {50 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live_port)) as sock:
        sock.sendall(head)  # and not one byte of the 50 MiB announced
        assert _status_line(sock) == b"HTTP/1.1 413 Request Entity Too Large"


def test_the_server_answers_415_after_the_first_bytes(client, api, admin, live_port) -> None:
    org = Organizer(client, api, admin)
    start = _head(org.org["id"]) + b"GIF87" + b"not a gif at all" * 200
    head = (
        f"POST {V1}/media/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {org.owner['access_token']}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {4 * MiB}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", live_port)) as sock:
        sock.sendall(head + start)  # the rest of the 4 MiB never comes
        assert _status_line(sock).startswith(b"HTTP/1.1 415")
