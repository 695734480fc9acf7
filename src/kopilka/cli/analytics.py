"""``kopilka analytics``: KPIs, customer-lifetime models, liability and experiments.

The commands live in one module per concept (``analytics_kpis``, ``analytics_clv``,
``analytics_finance``); each adds itself to ``app`` when imported below.
"""

import typer

app = typer.Typer(
    help="The program's KPIs, CLV and churn, liability and breakage, experiments.",
    no_args_is_help=True,
)

from kopilka.cli import (  # noqa: E402, F401
    analytics_clv,
    analytics_finance,
    analytics_kpis,
    analytics_predictions,
)
