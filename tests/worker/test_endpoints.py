"""The admin API of parked events: a program sees and replays its own only."""

from uuid import uuid4

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from kopilka.worker.delivery import RetryPolicy
from kopilka.worker.runner import Worker
from tests.conftest import Api, make_key, make_program
from tests.worker.support import applied_rows, applied_table, emit, recorder, update_event


async def test_parked_events_listed_and_replayed(
    engine: AsyncEngine, api: Api, http: httpx.AsyncClient, program: ProgramContext
) -> None:
    async with applied_table(engine):
        await _parked_events_listed_and_replayed(engine, api, http, program)


async def _parked_events_listed_and_replayed(
    engine: AsyncEngine, api: Api, http: httpx.AsyncClient, program: ProgramContext
) -> None:
    broken = {"on": True}
    consumer = recorder(program.id, fail=lambda _: broken["on"])
    worker = Worker(engine, [consumer], policy=RetryPolicy(max_attempts=1))
    await worker.prepare()
    member = uuid4()
    event = update_event(program.id, member, 3)
    await emit(engine, event)
    assert (await worker.drain()).parked == 1

    page = (await api.get("/v1/events/parked", consumer=consumer.name)).json()
    assert [(p["event_id"], p["type"], p["attempts"]) for p in page["items"]] == [
        (str(event.event_id), "member.updated", 1)
    ]
    assert "refused 3" in page["items"][0]["last_error"]

    other = Api(http, await make_key(engine, await make_program(engine), "admin"))
    assert (await other.get("/v1/events/parked", consumer=consumer.name)).json()["items"] == []
    replay_path = f"/v1/events/parked/{event.event_id}/replay"
    assert (await other.post(replay_path)).status_code == 404

    broken["on"] = False
    response = await api.post(replay_path)
    assert response.status_code == 200 and response.json() == {"replayed": 1}
    assert (await api.post(replay_path)).status_code == 404  # no longer parked
    await worker.drain()
    assert await applied_rows(engine, consumer.name) == [(member, 3)]
    bad = await api.get("/v1/events/parked", cursor="x")
    assert bad.status_code == 422
