"""Idempotency of value-moving requests: stored answers, replayed to retries."""
