"""A small program whose dashboard figures are worked out by hand below, built through
the API (shared by the analytics service's tests and the dashboard page's)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

# A Wednesday. In Moscow (UTC+3) its week began on Monday 9 March at 00:00, which is
# 8 March 21:00 UTC.
NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 1_000_000}},
        {"id": "vip", "name": "VIP", "invitation_only": True},
    ]
}


@dataclass(frozen=True)
class Dataset:
    program: ProgramContext
    api: Api
    members: dict[str, str]  # name → id


async def build(engine: AsyncEngine, api: Api) -> Dataset:
    """Four members (Dana blocked), four purchases, a redemption, an adjustment, a manual
    tier and points expired:

    ========  ===========================  ========  ==================================
    member    purchase (UTC)               total     points (1 per rouble)
    ========  ===========================  ========  ==================================
    Anna      10 Mar 10:00 (this week)     100 RUB   100
    Anna      8 Mar 22:00 = Mon 01:00 MSK  300 RUB   300, this week in Moscow
    Boris     8 Mar 20:00 = Sun 23:00 MSK  200 RUB   200, last week
    Clara     20 Jan 10:00 (50 days ago)   500 RUB   500, expired 30 days later
    Dana      —                            —         +50 adjusted, then blocked
    ========  ===========================  ========  ==================================

    Anna redeems 100 at ``NOW``; Clara gets the VIP tier by hand.

    So: 4 members (1 blocked), 2 bought in 30 days, 3 in 90; in the last 30 days 600
    issued, 100 redeemed, 500 expired, 50 adjusted (365 days: 1,100 issued); outstanding
    300 + 200 + 0 + 50 = 550; weeks: this week 2 purchases, 400 RUB, average 200 RUB;
    last week 1 purchase, 200 RUB; the week of 19 January 1 purchase, 500 RUB; tiers:
    Base 3, Silver 0, VIP 1.
    """
    program = await make_program(
        engine,
        timezone="Europe/Moscow",
        tiers=LADDER,
        expiry={"policy": "days", "days": 30},
    )
    own = Api(api.client, await make_key(engine, program, "admin"))
    members: dict[str, str] = {}
    externals: dict[str, str] = {}
    with clock.frozen(datetime(2026, 1, 1, tzinfo=UTC)):
        for name in ("Anna", "Boris", "Clara", "Dana"):
            body = member_body(name=name)
            created = await own.post("/v1/members", body)
            assert created.status_code == 201, created.text
            members[name] = created.json()["id"]
            externals[name] = body["external_id"]
    sales = [
        ("Clara", datetime(2026, 1, 20, 10, 0, tzinfo=UTC), 50_000),
        ("Boris", datetime(2026, 3, 8, 20, 0, tzinfo=UTC), 20_000),
        ("Anna", datetime(2026, 3, 8, 22, 0, tzinfo=UTC), 30_000),
        ("Anna", datetime(2026, 3, 10, 10, 0, tzinfo=UTC), 10_000),
    ]
    for name, when, total in sales:
        with clock.frozen(when):
            sold = await own.post(
                "/v1/purchases", purchase_body(externals[name], total, occurred_at=when.isoformat())
            )
            assert sold.status_code in (200, 201), sold.text
    await tasks.expire_points(engine, program.id, NOW)
    with clock.frozen(NOW):
        spent = await own.post(
            "/v1/redemptions", {"member": {"id": members["Anna"]}, "amount": 100}
        )
        assert spent.status_code == 201, spent.text
        adjusted = await own.post(
            "/v1/adjustments",
            {"member": {"id": members["Dana"]}, "amount": 50, "reason": "goodwill"},
        )
        assert adjusted.status_code == 201, adjusted.text
        blocked = await own.post(f"/v1/members/{members['Dana']}/block", {"reason": "fraud"})
        assert blocked.status_code == 200, blocked.text
        vip = await own.post(
            f"/v1/members/{members['Clara']}/tier/manual", {"tier": "vip", "reason": "invited"}
        )
        assert vip.status_code == 200, vip.text
    return Dataset(program, own, members)


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)
