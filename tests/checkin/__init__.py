"""Tests of tickets and check-in."""
