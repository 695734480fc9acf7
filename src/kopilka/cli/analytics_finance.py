"""``kopilka analytics`` commands: finance."""

from kopilka.cli.analytics import app  # noqa: F401
