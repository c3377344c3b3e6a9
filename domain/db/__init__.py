"""Database plumbing shared by every capability."""

from domain.db.base import Base, Timestamps, UUIDPrimaryKey, uuid7
from domain.db.engine import make_engine, make_sessionmaker

__all__ = ["Base", "Timestamps", "UUIDPrimaryKey", "make_engine", "make_sessionmaker", "uuid7"]
