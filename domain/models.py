"""Every model, imported once so ``Base.metadata`` is complete (Alembic, schema tests)."""

from domain.db.base import Base
from domain.outbox.models import InboxMessage, OutboxMessage

__all__ = ["Base", "InboxMessage", "OutboxMessage"]
