"""Payments: full payment and prepayment of registrations, refunds, provider webhooks."""
