"""The ground floor: settings, logging and the clients of the servers (PostgreSQL aside).

Every layer may import it; it imports nothing of ours. The composition root (``aqstream``)
builds what the layers need from it and passes it in."""

__version__ = "0.1.0"
