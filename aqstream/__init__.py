"""AqStream: event registration with live analytics (composition root)."""

from core import __version__

__all__ = ["__version__"]
