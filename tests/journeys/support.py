"""What the journeys' tests share: a program with an admin key, members made through the
API, the consumer drained, the frequent job run at a given time."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.journeys.tasks import advance_program
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.crm.support import worker
from tests.fixtures.factories import member_body, unique

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)  # a Monday, noon in Moscow


@dataclass
class Setup:
    engine: AsyncEngine
    program: ProgramContext
    api: Api

    async def journey(self, document: dict[str, Any], *, publish: bool = True) -> str:
        key = unique("j").lower()
        with clock.frozen(T0):
            created = await self.api.post("/v1/journeys", {"key": key, "document": document})
            assert created.status_code == 201, created.text
            if publish:
                published = await self.api.post(f"/v1/journeys/{key}/publish")
                assert published.status_code == 200, published.text
        return key

    async def member(self, at: datetime = T0, **fields: Any) -> str:
        with clock.frozen(at):
            made = await self.api.post("/v1/members", member_body(**fields))
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    async def deliver(self) -> None:
        await worker(self.engine, "journeys.runs").drain()

    async def advance(self, at: datetime) -> None:
        with clock.frozen(at):
            await advance_program(self.engine, self.program.id, at)

    async def balance(self, member_id: str) -> int:
        with clock.frozen(T0):
            found = await self.api.get(f"/v1/members/{member_id}/balance")
        assert found.status_code == 200, found.text
        return int(found.json()["balances"][0]["available"])

    async def stats(self, key: str) -> dict[str, Any]:
        with clock.frozen(T0):
            found = await self.api.get(f"/v1/journeys/{key}/stats")
        assert found.status_code == 200, found.text
        return dict(found.json())

    async def runs(self, key: str) -> list[dict[str, Any]]:
        with clock.frozen(T0):
            found = await self.api.get(f"/v1/journeys/{key}/runs", limit="200")
        assert found.status_code == 200, found.text
        return list(found.json()["items"])


async def setup(engine: AsyncEngine, http: Any, **settings: Any) -> Setup:
    with clock.frozen(T0):
        program = await make_program(engine, timezone="Europe/Moscow", **settings)
    return Setup(engine, program, Api(http, await make_key(engine, program, "admin")))


def uuid(text: str) -> UUID:
    return UUID(text)
