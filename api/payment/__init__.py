"""Payments, refunds and provider webhooks."""
