"""Two transactions working the same member's KPI rows out at once (the consumer and a
rebuild, or two consumers after a redelivery) add the change to the member sums once: the
second waits for the first's lock and then finds nothing left to add (PostgreSQL; SQLite
runs one writer at a time)."""

import asyncio
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.kpi_service import kpi_service
from kopilka.analytics.kpi_tasks import rebuild_program
from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.outbox import events as ev
from tests.analytics.kpis_dataset import NOW, KpiDataset, build
from tests.analytics.test_kpis_api import aggregates
from tests.conftest import Api
from tests.crm.support import worker
from tests.fixtures.factories import purchase_body


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_two_refreshes_of_one_member_at_once_count_once(
    engine: AsyncEngine, api: Api
) -> None:
    data: KpiDataset = await build(engine, api)
    anna = data.members["Anna"]
    # A purchase the consumer has not seen yet: both refreshes find it in the purchases.
    when = NOW - timedelta(days=1)
    body = purchase_body("-", 90_000, occurred_at=when.isoformat())
    body["member"] = {"id": anna}
    with clock.frozen(NOW):
        assert (await data.api.post("/v1/purchases", body)).status_code == 201
    touched = ev.MemberUpdated(
        program_id=data.program.id,
        member_id=UUID(anna),
        occurred_at=NOW,
        changed=["name"],
        values={},
    )

    async def refresh() -> None:
        async with transaction(engine) as conn:
            await kpi_service.apply(conn, [touched])

    await asyncio.gather(refresh(), refresh(), refresh())
    await worker(engine, "analytics.kpis").drain()
    kept = await aggregates(engine, data)
    with clock.frozen(NOW):
        await rebuild_program(engine, data.program, size=2)
    assert await aggregates(engine, data) == kept
