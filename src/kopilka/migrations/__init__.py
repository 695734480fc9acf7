"""Alembic migrations; run them with ``kopilka db upgrade``."""
