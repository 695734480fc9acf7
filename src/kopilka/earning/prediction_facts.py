"""Where the rules' ``churn_risk`` and ``clv`` conditions get members' predictions from.

The predictions are analytics' (customer-lifetime models refitted by the worker), which
sits above the core and may not be imported by it; it provides the loader here instead
(``kopilka.analytics.clv_service`` registers it when imported, and every process that runs
rules imports it: the application's routers, the worker's scheduler and the CLI's
commands all include it). A program whose rules read predictions fails loudly, not
silently empty, if no loader was provided.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class PredictedFacts:
    """A member's stored predictions as the rules read them: churn risk in whole percent
    (0–100) and customer lifetime value in minor units."""

    churn_risk: int
    clv: int


# (conn, program id, member ids) → each member's predictions (members without one left out)
PredictionLoader = Callable[
    [AsyncConnection, UUID, Sequence[UUID]], Awaitable[Mapping[UUID, PredictedFacts]]
]

_loader: list[PredictionLoader] = []


def provide(loader: PredictionLoader) -> None:
    """Register the loader (a second registration replaces the first)."""
    _loader[:] = [loader]


def provided() -> bool:
    return bool(_loader)


async def load(
    conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
) -> Mapping[UUID, PredictedFacts]:
    if not _loader:
        raise RuntimeError(
            "the program's rules read predictions, but no prediction loader is registered "
            "(import kopilka.analytics.clv_service)"
        )
    return await _loader[0](conn, program_id, member_ids)
