"""The modules that register consumers, imported by the worker (like the app's router list).

A reaction adds its ``consumers`` module here.
"""

import importlib
from collections.abc import Iterable

CONSUMER_MODULES: list[str] = [
    "kopilka.webhooks.consumers",
    "kopilka.messaging.consumers",
    "kopilka.crm.consumers",
    "kopilka.analytics.consumers",
    "kopilka.segments.consumers",
    "kopilka.journeys.consumers",
    "kopilka.support.consumers",
    "kopilka.wallet.consumers",
    "kopilka.shopwidget.consumers",
    "kopilka.memberaccess.consumers",
]


def import_consumers(extra: Iterable[str] = ()) -> None:
    """Import every consumer module (and ``extra`` ones, e.g. from ``--module``)."""
    for name in [*CONSUMER_MODULES, *extra]:
        importlib.import_module(name)
