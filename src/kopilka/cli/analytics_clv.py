"""``kopilka analytics`` commands: clv."""

from kopilka.cli.analytics import app  # noqa: F401
