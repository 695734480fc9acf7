"""Purchases and returns: ingest, quote, batch, what pays at the till, returns."""
