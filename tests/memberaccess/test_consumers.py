"""A member's app sessions end with a block (and stay ended after the unblock), a merge into
another profile and an erasure."""

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import Unauthorized
from kopilka.kit.clock import clock
from kopilka.memberaccess.consumers import CONSUMER
from kopilka.memberaccess.service import member_access_service
from kopilka.outbox.consumers import registry
from kopilka.programs.service import ProgramContext
from kopilka.worker.modules import import_consumers
from kopilka.worker.runner import Worker
from tests.conftest import Api


async def _signed_in(engine: AsyncEngine, program: ProgramContext, member_id: str) -> str:
    async with transaction(engine) as conn:
        return await member_access_service.start_session(
            conn, program.id, uuid.UUID(member_id), clock.now()
        )


async def _live(engine: AsyncEngine, token: str) -> bool:
    try:
        async with reading(engine) as conn:
            await member_access_service.session(conn, token, clock.now())
    except Unauthorized:
        return False
    return True


async def _deliver(engine: AsyncEngine) -> None:
    import_consumers()
    await Worker(engine, [c for c in registry.all() if c.name == CONSUMER]).drain()


async def test_a_session_made_before_a_block_stays_ended_after_the_unblock(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = (await api.post("/v1/members", {"name": "Ann"})).json()["id"]
    token = await _signed_in(engine, program, member)
    assert await _live(engine, token)
    assert (await api.post(f"/v1/members/{member}/block", {"reason": "check"})).status_code == 200
    await _deliver(engine)
    assert (await api.post(f"/v1/members/{member}/unblock", {"reason": "ok"})).status_code == 200
    assert not await _live(engine, token)
    assert await _live(engine, await _signed_in(engine, program, member))


async def test_the_merged_profile_s_sessions_end(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    survivor = (await api.post("/v1/members", {"name": "Ann"})).json()["id"]
    duplicate = (await api.post("/v1/members", {"name": "Ann B"})).json()["id"]
    token = await _signed_in(engine, program, duplicate)
    kept = await _signed_in(engine, program, survivor)
    merged = await api.post(
        f"/v1/members/{survivor}/merge", {"merged": duplicate, "reason": "same person"}
    )
    assert merged.status_code == 200, merged.text
    await _deliver(engine)
    assert not await _live(engine, token)
    assert await _live(engine, kept)
