"""Shared building blocks: clock, ids, JSON helpers, pagination, idempotency."""
