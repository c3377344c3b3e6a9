"""Writing an export straight into S3 as it is produced: a writable file whose bytes go out as
multipart-upload parts while the rows are still streaming in, so the upload overlaps the COPY
instead of following it, and no temporary file holds the export.

Memory: the part being filled plus at most ``in_flight`` parts on their way (16 MiB each by
default). A file smaller than one part is sent with a single PUT. On any failure the multipart
upload is aborted, so no orphan parts stay behind.
"""

from __future__ import annotations

import contextlib
import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

PART_BYTES = 16 << 20  # S3 parts are 5 MiB at least (the last one excepted)


class MultipartSink(io.RawIOBase):
    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        extra: dict[str, str],
        *,
        part_bytes: int = PART_BYTES,
        in_flight: int = 3,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._extra = extra
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._slots = threading.BoundedSemaphore(in_flight)
        self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix="export-upload")
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self._part_bytes:
            part = bytes(self._buffer[: self._part_bytes])
            del self._buffer[: self._part_bytes]
            self._send(part)
        return len(data)

    def _send(self, data: bytes) -> None:
        for done in (f for f in self._parts if f.done()):
            done.result()  # a failed part fails the export now, not at the end
        if self._upload_id is None:
            answer = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, **self._extra
            )
            self._upload_id = answer["UploadId"]
        self._slots.acquire()  # back-pressure: the COPY waits while the parts are all busy
        number = len(self._parts) + 1
        try:
            self._parts.append(self._pool.submit(self._upload_part, number, data))
        except BaseException:
            self._slots.release()
            raise

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        try:
            answer = self._s3.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}
        finally:
            self._slots.release()

    def finish(self) -> int:
        """Send what is left and complete the object; answers its size."""
        try:
            if self._upload_id is None:
                self._s3.put_object(
                    Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer), **self._extra
                )
            else:
                if self._buffer:
                    self._send(bytes(self._buffer))
                parts = [f.result() for f in self._parts]
                self._s3.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
            self._buffer.clear()
            return self.size
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Drop the parts sent so far (best effort: S3 lifecycle rules clean up the rest)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._upload_id is not None:
            # Best effort: the export's own error is what gets reported.
            with contextlib.suppress(Exception):
                self._s3.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
