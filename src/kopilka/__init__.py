"""Kopilka: an open-source loyalty-program and CRM engine."""

__version__ = "0.1.0"
