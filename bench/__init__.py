"""Benchmarks: each prints its figure next to a baseline run side by side (see bench/README.md)."""
