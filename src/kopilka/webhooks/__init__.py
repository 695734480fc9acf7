"""Webhooks: a program's domain events POSTed to its URLs, signed (Standard Webhooks)."""
