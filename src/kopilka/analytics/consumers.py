"""Analytics' reactions to domain events: the KPIs' daily aggregates (``analytics.kpis``).

Each delivered batch is summed per key of the daily rows and added to them in the
transaction that moves the consumer's checkpoint, so every event counts exactly once; the
month masks of the members a batch touched are worked out again from their purchases
(idempotent by construction), as are their rows of ``kpi_members``. See
``docs/analytics.md``.
"""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.kpi_service import kpi_service
from kopilka.outbox.consumers import batch_consumer
from kopilka.outbox.events import DomainEvent

CONSUMER = "analytics.kpis"
TOPICS = (
    "purchase.recorded",
    "purchase.claimed",
    "return.recorded",
    "points.*",
    # A member's row (joined, gone, tier, last purchase) and month masks are worked out
    # again on any event about them: a merge moves the merged profile's purchases to the
    # survivor, an erasure or a tier change changes what they count as.
    "member.*",
    "tier.*",
)


@batch_consumer(*TOPICS, name=CONSUMER)
async def keep_kpis(batch: Sequence[DomainEvent], conn: AsyncConnection) -> None:
    await kpi_service.apply(conn, batch)
