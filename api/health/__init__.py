"""AqStream."""
