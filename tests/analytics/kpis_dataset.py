"""A small program whose KPIs are worked out by hand in ``test_kpis_api.py``, built through
the API (shared by the KPI API, CLI and rebuild tests).

The program runs in Moscow (UTC+3): days and months are Moscow's. ``NOW`` is Thursday
2 April 2026, 15:00 in Moscow.

==========================  ==========================  =========  ======  =======  ==========
when (UTC)                  Moscow day                  who        total   store    tier after
==========================  ==========================  =========  ======  =======  ==========
15 Jan 10:00                15 Jan                      Anna       1,000   s1 pos   base
10 Feb 10:00                10 Feb                      Clara        800   s2 web   base
28 Feb 22:00                **1 Mar** 01:00             Clara        100   s2 web   base
3 Mar 09:00                 3 Mar                       Boris        500   s1 pos   base
5 Mar 10:00                 5 Mar                       Anna       2,000   s1 pos   base
6 Mar 10:00                 6 Mar                       no member  1,500   s1 pos   —
7 Mar 10:00                 7 Mar                       no member    700   s2 pos   —
                                                        → claimed by Dana on 8 Mar (base)
20 Mar 10:00                20 Mar                      Anna       3,000   s2 pos   silver
31 Mar 21:30                **1 Apr** 00:30             Clara        400   s2 web   base
==========================  ==========================  =========  ======  =======  ==========

(roubles; totals in kopecks are × 100). Boris returns 200 roubles of his purchase on
10 March. Points: 1 per rouble, expiring 30 days after they were earned; the expiry job runs
on 15 March (Anna's January 1,000 and Clara's 10 February 800 expire); Anna redeems 1,000 on
25 March; Dana is given 50 by hand on 16 March. Silver needs 5,000 roubles of spend: Anna
reaches it with her third purchase. Members joined: Anna 10 January, Clara 1 February,
Boris 2 March, Dana 8 March.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.crm.support import worker
from tests.fixtures.factories import member_body, purchase_body, unique

NOW = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 500_000}},
    ]
}


@dataclass(frozen=True)
class KpiDataset:
    program: ProgramContext
    api: Api
    members: dict[str, str]  # name → id


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class _Builder:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.ids: dict[str, str] = {}
        self.externals: dict[str, str] = {}

    async def join(self, name: str, when: datetime) -> None:
        body = member_body(name=name)
        with clock.frozen(when):
            created = await self.api.post("/v1/members", body)
        assert created.status_code == 201, created.text
        self.ids[name], self.externals[name] = created.json()["id"], body["external_id"]

    async def buy(
        self, who: str | None, when: datetime, roubles: int, store: str, channel: str
    ) -> str:
        body = purchase_body(
            self.externals.get(who or "", "-"),
            roubles * 100,
            occurred_at=when.isoformat(),
            store=store,
            channel=channel,
        )
        if who is None:
            del body["member"]
        with clock.frozen(when):
            sold = await self.api.post("/v1/purchases", body)
        assert sold.status_code == 201, sold.text
        return str(body["external_id"])

    async def post(self, when: datetime, path: str, body: dict[str, Any]) -> None:
        with clock.frozen(when):
            done = await self.api.post(path, body)
        assert done.status_code in (200, 201), done.text


async def build(engine: AsyncEngine, api: Api) -> KpiDataset:
    """The program above, every event delivered to the KPI consumer."""
    with clock.frozen(at(1, 1, 0)):
        program = await make_program(
            engine,
            timezone="Europe/Moscow",
            tiers=LADDER,
            expiry={"policy": "days", "days": 30},
        )
    own = Api(api.client, await make_key(engine, program, "admin"))
    b = _Builder(own)
    await b.join("Anna", at(1, 10, 9))
    await b.buy("Anna", at(1, 15, 10), 1_000, "s1", "pos")
    await b.join("Clara", at(2, 1, 9))
    await b.buy("Clara", at(2, 10, 10), 800, "s2", "web")
    await b.buy("Clara", at(2, 28, 22), 100, "s2", "web")
    await b.join("Boris", at(3, 2, 9))
    boris = await b.buy("Boris", at(3, 3, 9), 500, "s1", "pos")
    await b.buy("Anna", at(3, 5, 10), 2_000, "s1", "pos")
    await b.buy(None, at(3, 6, 10), 1_500, "s1", "pos")
    receipt = await b.buy(None, at(3, 7, 10), 700, "s2", "pos")
    await b.join("Dana", at(3, 8, 9))
    claim = {"receipt": receipt, "member": {"id": b.ids["Dana"]}}
    await b.post(at(3, 8, 12), "/v1/purchases/claims", claim)
    back = {
        "external_id": unique("r"),
        "purchase_external_id": boris,
        "occurred_at": at(3, 10, 10).isoformat(),
        "amount": 20_000,
    }
    await b.post(at(3, 10, 10), "/v1/returns", back)
    with clock.frozen(at(3, 15, 12)):
        await tasks.expire_points(engine, program.id, at(3, 15, 12))
    gift = {"member": {"id": b.ids["Dana"]}, "amount": 50, "reason": "goodwill"}
    await b.post(at(3, 16, 10), "/v1/adjustments", gift)
    await b.buy("Anna", at(3, 20, 10), 3_000, "s2", "pos")
    spend = {"member": {"id": b.ids["Anna"]}, "amount": 1_000}
    await b.post(at(3, 25, 10), "/v1/redemptions", spend)
    await b.buy("Clara", at(3, 31, 21, 30), 400, "s2", "web")
    await worker(engine, "analytics.kpis").drain()
    return KpiDataset(program, own, b.ids)
