"""AqStream: event registration with live analytics (composition root)."""

__version__ = "0.1.0"
