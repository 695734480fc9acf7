"""A pooled connection whose PostgreSQL session ended (a restart, a terminated backend) is
dropped and the request runs again on a new one: no 500, nothing written twice."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.db import make_engine
from kopilka.migrations.runner import upgrade
from tests.conftest import (
    Api,
    _create_pg_database,
    _drop_pg_database,
    make_key,
    make_program,
)
from tests.fixtures.factories import member_body, purchase_body, unique

pytestmark = pytest.mark.postgres


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    """A database of its own: the test ends every session on it."""
    name, url = await _create_pg_database()
    await asyncio.to_thread(upgrade, url)
    yield url
    await _drop_pg_database(name)


async def end_sessions(url: str) -> int:
    """Terminate every session on the database but this one, as a restart would."""
    admin = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        ended: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return ended
    finally:
        await admin.close()


async def test_requests_after_the_sessions_ended_succeed(own_database: str) -> None:
    engine: AsyncEngine = make_engine(own_database, pool_size=8)
    try:
        program = await make_program(engine)
        api = Api(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(engine=engine)),
                base_url="http://kopilka.test",
            ),
            await make_key(engine, program, "admin"),
        )
        async with api.client:
            body = member_body()
            member = (await api.post("/v1/members", body)).json()
            # Fill the pool with connections, then end all their sessions.
            warm = await asyncio.gather(
                *(api.post("/v1/purchases", purchase_body(body["external_id"])) for _ in range(8))
            )
            assert [r.status_code for r in warm] == [201] * 8
            assert await end_sessions(own_database) >= 1
            retried = purchase_body(body["external_id"], 10_000) | {"external_id": unique("p")}
            after = await asyncio.gather(
                api.post("/v1/purchases", retried),
                *(api.post("/v1/purchases", purchase_body(body["external_id"])) for _ in range(7)),
                api.get(f"/v1/members/{member['id']}"),
            )
            assert [r.status_code for r in after] == [201] * 8 + [200]
            # The purchase that met a dead connection was recorded once.
            again = await api.post("/v1/purchases", retried)
            assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
            shown = (await api.get(f"/v1/members/{member['id']}/balance")).json()
            points = next(b for b in shown["balances"] if b["currency"] == "points")
            earned = sum(r.json()["points_earned"] for r in [*warm, *after[:8]])
            assert points["available"] + points["pending"] == earned
    finally:
        await engine.dispose()
