"""The embedded local stack (PostgreSQL, Kafka-compatible broker, Redis, S3) on loopback."""

from aqstream.stack.manager import LocalStack, ServerStatus
from aqstream.stack.servers import StackError

__all__ = ["LocalStack", "ServerStatus", "StackError"]
