"""What the mailbox received: e-mails and Telegram messages, newest first, kept in memory and
bounded (the oldest go first)."""

from __future__ import annotations

import email
import email.policy
import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Literal

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Message:
    id: int
    received_at: datetime
    channel: Literal["email", "telegram"]
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    method: str | None = None  # the Bot API method (telegram)

    def summary(self) -> dict[str, object]:
        """The message as JSON, without attachment data (GET /api/messages)."""
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "channel": self.channel,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "subject": self.subject,
            "text": self.text,
            "html": self.html is not None,
            "method": self.method,
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "size": len(a.data)}
                for a in self.attachments
            ],
        }


@dataclass
class Store:
    """Thread-safe: the SMTP server and the HTTP server add from their own threads."""

    keep: int = 500
    clock: Clock = utc_now
    _messages: deque[Message] = field(init=False)
    _ids: itertools.count = field(init=False, default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._messages = deque(maxlen=self.keep)

    def add(self, **fields: object) -> Message:
        with self._lock:
            message = Message(id=next(self._ids), received_at=self.clock(), **fields)  # type: ignore[arg-type]
            self._messages.append(message)
            return message

    def add_email(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> Message:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        text_part = parsed.get_body(("plain",))
        html_part = parsed.get_body(("html",))
        attachments = tuple(
            Attachment(
                part.get_filename() or f"attachment-{n}",
                part.get_content_type(),
                part.get_payload(decode=True) or b"",
            )
            for n, part in enumerate(parsed.iter_attachments(), 1)
        )
        return self.add(
            channel="email",
            sender=str(parsed.get("From") or mail_from),
            recipients=tuple(rcpt_tos),
            subject=str(parsed.get("Subject") or ""),
            text=text_part.get_content() if text_part is not None else "",
            html=html_part.get_content() if html_part is not None else None,
            attachments=attachments,
        )

    def messages(self) -> list[Message]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._messages))

    def get(self, message_id: int) -> Message | None:
        with self._lock:
            return next((m for m in self._messages if m.id == message_id), None)

    def latest_id(self) -> int:
        with self._lock:
            return self._messages[-1].id if self._messages else 0
