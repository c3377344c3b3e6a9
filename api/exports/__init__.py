"""Exports API: an analyst starts an export of a dataset and downloads it (router.py)."""
