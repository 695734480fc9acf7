"""What the ready journeys' scenarios share: a program where each shipped document runs
as it is, members buying at chosen moments, the worker's consumers drained and the
segments refreshed at a given time, and what a member ended up with read through the API
(messages, coupons, benefits, tags)."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.journeys import domain, ready
from kopilka.journeys.entries import journey_entries
from kopilka.kit.clock import clock
from kopilka.programs.service import program_service
from kopilka.segments.tasks import refresh_segments
from tests.conftest import Api, make_key, make_program
from tests.crm.support import worker
from tests.fixtures.factories import purchase_body
from tests.journeys.support import T0, Setup

# What the journeys' worker runs after a purchase: the member's facts, the segments they
# enter or leave, then the journeys those events move or start.
CONSUMERS = ("crm.facts", "segments", "journeys.runs")
# A member made by the factories has no e-mail address and no push subscription: of a
# message's default channels only the in-app inbox delivers it, the others are skipped.
INBOX_ONLY = {("inbox", "delivered"): 1, ("email", "skipped"): 1, ("push", "skipped"): 1}


@dataclass
class Scenario(Setup):
    async def ready(self, name: str) -> str:
        """The shipped journey ``name``, published as it is; its key."""
        return await self.journey(ready.document(name))

    async def journey_id(self, key: str) -> UUID:
        async with reading(self.engine) as conn:
            program = await program_service.get(conn, self.program.id)
            live = await journey_entries.live(conn, program)
        return next(j.id for j in live if j.key == key)

    async def split(
        self, key: str, percent: int, treated: int, held: int
    ) -> tuple[list[str], list[str]]:
        """Members registered until ``treated`` of them are outside the journey's holdout
        of ``percent`` and ``held`` inside it, as the journey's own hash decides; the extra
        ones (neither needed) are left without history."""
        journey = await self.journey_id(key)
        ins: list[str] = []
        outs: list[str] = []
        for _ in range(400):
            if len(outs) >= treated and len(ins) >= held:
                return outs[:treated], ins[:held]
            member = await self.member()
            group = ins if domain.held_out(journey, UUID(member), percent) else outs
            group.append(member)
        raise AssertionError("no split found in 400 members")

    async def buy(
        self,
        member: str,
        at: datetime,
        total: int = 10_000,
        *,
        sku: str = "SKU-1",
        category: str = "coffee",
        coupon_codes: list[str] | None = None,
    ) -> dict[str, Any]:
        """A one-line purchase of the member's at ``at`` (the till's clock too); its answer."""
        body = purchase_body("-", total, occurred_at=at.isoformat())
        body["member"] = {"id": member}
        body["lines"][0] |= {"sku": sku, "category": category}
        if coupon_codes is not None:
            body["coupon_codes"] = coupon_codes
        with clock.frozen(at):
            made = await self.api.post("/v1/purchases", body)
        assert made.status_code == 201, made.text
        return dict(made.json())

    async def work(self, at: datetime) -> None:
        """The worker's consumers at ``at``: facts, segments, journeys."""
        with clock.frozen(at):
            await worker(self.engine, *CONSUMERS).drain()

    async def refresh(self, at: datetime) -> None:
        """The daily ``segments-refresh`` job at ``at``, then what its events start."""
        with clock.frozen(at):
            await refresh_segments(self.engine, self.program.id)
        await self.work(at)

    async def campaign(self, key: str, percent: int = 10) -> None:
        with clock.frozen(T0):
            made = await self.api.post(
                "/v1/coupon-campaigns",
                {"key": key, "name": key, "discount": {"kind": "percent", "value": percent}},
            )
        assert made.status_code == 201, made.text

    async def segment(self, key: str, definition: dict[str, Any]) -> None:
        with clock.frozen(T0):
            made = await self.api.post(
                "/v1/segments", {"key": key, "name": key, "definition": definition}
            )
        assert made.status_code == 201, made.text

    async def read(self, path: str, at: datetime = T0, **params: Any) -> Any:
        with clock.frozen(at):
            found = await self.api.get(path, **params)
        assert found.status_code == 200, found.text
        return found.json()

    async def messages(self, member: str, kind: str = "broadcast") -> list[dict[str, Any]]:
        """The member's messages of ``kind``, one per channel, oldest first."""
        found = await self.read("/v1/messages", member_id=member, kind=kind, limit="100")
        return sorted(found["items"], key=lambda m: (m["created_at"], m["channel"]))

    async def inbox(self, member: str, kind: str = "broadcast") -> list[str]:
        """What the member's in-app inbox got of ``kind`` (subjects), oldest first."""
        return [
            m["subject"]
            for m in await self.messages(member, kind)
            if (m["channel"], m["status"]) == ("inbox", "delivered")
        ]

    async def channels(self, member: str, kind: str = "broadcast") -> Counter[tuple[str, str]]:
        """The member's messages of ``kind`` counted by channel and status."""
        return Counter((m["channel"], m["status"]) for m in await self.messages(member, kind))

    async def coupons(self, member: str) -> list[dict[str, Any]]:
        return list((await self.read(f"/v1/members/{member}/coupons"))["items"])

    async def benefits(self, member: str, at: datetime = T0) -> list[dict[str, Any]]:
        """The member's benefits as they read at ``at`` (expiry is worked out when read)."""
        return list((await self.read(f"/v1/members/{member}/benefits", at))["items"])

    async def tags(self, member: str) -> list[str]:
        return list((await self.read(f"/v1/members/{member}"))["tags"])

    async def outcomes(self, key: str) -> dict[str, dict[str, int]]:
        """Each step of the journey's version in force → its outcomes counted."""
        return {step["id"]: step["outcomes"] for step in (await self.stats(key))["steps"]}


async def scenario(engine: AsyncEngine, http: httpx.AsyncClient, **settings: Any) -> Scenario:
    """A program in Moscow's time zone made at ``T0``, with an admin key."""
    with clock.frozen(T0):
        program = await make_program(engine, timezone="Europe/Moscow", **settings)
    return Scenario(engine, program, Api(http, await make_key(engine, program, "admin")))


def utc(moment: datetime) -> str:
    """A moment as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")
