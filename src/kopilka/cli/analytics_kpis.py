"""``kopilka analytics`` commands: kpis."""

from kopilka.cli.analytics import app  # noqa: F401
