"""The KPIs over HTTP on the hand-computed program of ``kpis_dataset`` (SQLite and
PostgreSQL): every figure worked out by hand in the comments; the aggregates the consumer
kept equal a rebuild's; bad input is a 422 naming the field."""

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.kpi_tasks import rebuild_program
from kopilka.analytics.liability_service import liability_service
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.models import (
    KpiBuyerMonth,
    KpiDay,
    KpiMember,
    KpiMemberMonth,
    KpiPointDay,
    KpiTierDay,
    Lot,
)
from kopilka.models.base import table
from tests.analytics.kpis_dataset import NOW, KpiDataset, at, build
from tests.conftest import Api, make_key, make_program
from tests.crm.support import worker
from tests.fixtures.factories import member_body, purchase_body

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


@pytest.fixture
async def data(engine: AsyncEngine, api: Api) -> KpiDataset:
    return await build(engine, api)


async def kpis(data: KpiDataset, **params: str) -> dict[str, Any]:
    with clock.frozen(NOW):
        response = await data.api.get("/v1/analytics/kpis", **params)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def subset(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in expected}


async def test_march_as_a_whole(data: KpiDataset) -> None:
    report = await kpis(data, **MARCH)
    assert report["months_from"] == report["months_to"] == "2026-03"
    # The end of 31 March in Moscow: participants and activity as of then.
    assert report["as_of"] == "2026-03-31T21:00:00Z"
    expected = {
        # Anna, Clara, Boris, Dana joined by then; Boris and Dana in March.
        "participants": 4,
        "new_participants": 2,
        # Bought in the 30 days before 31 Mar 21:00 UTC: Boris, Dana (her claimed check of
        # 7 Mar), Anna; Clara's 28 Feb 22:00 is 31 days before, her 31 Mar 21:30 after.
        "active_30d": 3,
        "active_share_30d": 3 / 4,
        "active_90d": 4,
        "active_share_90d": 1.0,
        # Checks of March in Moscow: Clara 100 (1 Mar 01:00 there), Boris 500, Anna 2,000,
        # no member 1,500, Dana 700 (claimed), Anna 3,000; not Clara's 400 (1 April there).
        "purchases": 6,
        "member_purchases": 5,
        "nonmember_purchases": 1,
        "revenue": 780_000,
        "member_revenue": 630_000,
        "nonmember_revenue": 150_000,
        "average_check": 130_000,  # 780,000 ÷ 6
        "average_check_members": 126_000,  # 630,000 ÷ 5
        "average_check_nonmembers": 150_000,
        "conversion": 5 / 6,
        # Checks made without a card: the one still without a member and Dana's claimed one.
        "new_visitor_conversion": 1 / 2,
        "returns": 1,
        "returned": 20_000,
        "net_revenue": 760_000,
        "returns_rate": 20_000 / 780_000,
        # March's buyers: Clara, Boris, Anna, Dana; Anna twice; first ever: Boris and Dana.
        "buyers": 4,
        "repeat_buyers": 1,
        "new_buyers": 2,
        "purchase_frequency": 5 / 4,
        "repeat_rate": 1 / 4,
        "points_spent": 0,
        "redemption_rate": 0.0,
        # Earned 100 + 500 + 2,000 + 700 (the claim, on the purchase's day) + 3,000.
        "points_issued": 6_300,
        "points_reversed": 200,  # Boris's return
        "points_redeemed": 1_000,
        "points_refunded": 0,
        # On 15 March: Anna's January 1,000 and Clara's 10 February 800.
        "points_expired": 1_800,
        "points_adjusted": 50,
        "bonus_conversion": 1_000 / 6_100,
        "cost_of_points": 100_000,  # 1,000 points at 100 kopecks
        # Now: Anna 2,000 + 3,000 − 1,000; Boris 500 − 200; Clara 100 + 400; Dana 700 + 50.
        "outstanding_points": 5_550,
    }
    assert report["total"]["kind"] == "total"
    assert subset(report["total"], expected) == expected
    assert report["rows"] == []


async def test_march_by_tier_is_the_seed_table(data: KpiDataset) -> None:
    report = await kpis(data, **MARCH, by="tier")
    columns = (
        "kind",
        "group",
        "participants",
        "active_share_30d",
        "average_check",
        "conversion",
        "repeat_rate",
    )
    table_ = [tuple(row[c] for c in columns) for row in report["rows"]]
    assert table_ == [
        # Base: checks made on it Clara 100, Boris 500, Anna 2,000, Dana 700 (4 of 6);
        # on it now Clara, Boris, Dana, of whom Boris and Dana bought in the last 30 days;
        # none of the three bought twice in March.
        ("tier", "base", 3, 2 / 3, 82_500, 4 / 6, 0.0),
        # Silver: Anna's 3,000 (made on silver); Anna bought twice in March.
        ("tier", "silver", 1, 1.0, 300_000, 1 / 6, 1.0),
        ("no_member", None, None, None, 150_000, 1 / 6, None),
    ]
    base = report["rows"][0]
    assert subset(base, {"returns": 1, "new_participants": 2, "buyers": 3, "new_buyers": 2}) == {
        "returns": 1,
        "new_participants": 2,
        "buyers": 3,
        "new_buyers": 2,
    }
    assert base["purchase_frequency"] is None
    assert sum(row["conversion"] for row in report["rows"]) == pytest.approx(1.0)


async def test_march_by_store_channel_and_month(data: KpiDataset) -> None:
    stores = (await kpis(data, **MARCH, by="store"))["rows"]
    # s1: Boris 500, Anna 2,000, no member 1,500 (Boris's return too); s2: Clara 100,
    # Dana 700 (claimed), Anna 3,000.
    assert [
        (r["group"], r["purchases"], r["revenue"], r["conversion"], r["returns"]) for r in stores
    ] == [("s1", 3, 400_000, 2 / 3, 1), ("s2", 3, 380_000, 1.0, 0)]
    assert [r["new_visitor_conversion"] for r in stores] == [0.0, 1.0]
    assert stores[0]["participants"] is None and stores[0]["buyers"] is None
    channels = (await kpis(data, **MARCH, by="channel"))["rows"]
    assert [(r["group"], r["purchases"], r["revenue"]) for r in channels] == [
        ("pos", 5, 770_000),
        ("web", 1, 10_000),
    ]
    months = (await kpis(data, **MARCH, by="month"))["rows"]
    assert [r["group"] for r in months] == ["2026-03"]
    march = months[0]
    expected = {
        "participants": 4,
        "new_participants": 2,
        "buyers": 4,
        "repeat_buyers": 1,
        "new_buyers": 2,
        "purchase_frequency": 5 / 4,
        "purchases": 6,
        "points_issued": 6_300,
        "points_expired": 1_800,
    }
    assert subset(march, expected) == expected


async def test_the_last_30_days_read_what_is_kept_now(data: KpiDataset) -> None:
    report = await kpis(data)
    assert (report["start"], report["end"]) == ("2026-03-04", "2026-04-02")
    assert (report["months_from"], report["months_to"]) == ("2026-03", "2026-04")
    expected = {
        "participants": 4,
        "new_participants": 1,  # Dana (Boris joined on 2 March)
        # On 4 March – 2 April, the last 30 days: Anna, Dana, Clara (Boris bought on
        # 3 March, at noon in Moscow).
        "active_30d": 3,
        "active_90d": 4,
        # 5 Mar Anna 2,000, 6 Mar no member 1,500, 7 Mar Dana 700, 20 Mar Anna 3,000,
        # 1 Apr Clara 400.
        "purchases": 5,
        "revenue": 760_000,
        # Over March and April: Clara, Boris, Anna, Dana; Anna (twice in March) and Clara
        # (in both months) bought twice; only Dana's first purchase is in the period.
        "buyers": 4,
        "repeat_buyers": 2,
        "new_buyers": 1,
        "purchase_frequency": 6 / 4,  # the members' checks of March and April
    }
    assert subset(report["total"], expected) == expected


async def test_retention_by_monthly_cohort(data: KpiDataset) -> None:
    with clock.frozen(NOW):
        response = await data.api.get("/v1/analytics/kpis/cohorts", **{"from": "2026-01-01"})
    assert response.status_code == 200, response.text
    found = response.json()
    assert (found["months_from"], found["months_to"]) == ("2026-01", "2026-04")
    assert [(c["month"], c["members"], c["buyers"]) for c in found["cohorts"]] == [
        ("2026-01", 1, [1, 0, 1, 0]),  # Anna: January, March
        ("2026-02", 1, [1, 1, 1]),  # Clara: February, 1 March and 1 April in Moscow
        ("2026-03", 2, [2, 0]),  # Boris and Dana
        ("2026-04", 0, [0]),
    ]
    assert found["cohorts"][0]["retention"] == [1.0, 0.0, 1.0, 0.0]
    assert found["cohorts"][3]["retention"] == [None]


async def test_a_rebuild_gives_what_the_consumer_kept(
    engine: AsyncEngine, data: KpiDataset
) -> None:
    kept = await aggregates(engine, data)
    assert all(kept)
    with clock.frozen(NOW):
        await rebuild_program(engine, data.program, size=2)
    assert await aggregates(engine, data) == kept
    # From a day on: only those days are worked out again.
    with clock.frozen(NOW):
        await rebuild_program(engine, data.program, since=date(2026, 3, 10))
    assert await aggregates(engine, data) == kept


async def aggregates(engine: AsyncEngine, data: KpiDataset) -> tuple[list[Any], ...]:
    """The program's rows of each aggregate, sorted; rows whose sums are all zero (a claim
    leaves one where the check was) left out; a member's days (kept in no set order) sorted."""
    found: list[list[Any]] = []
    models = (
        (KpiDay, 6),
        (KpiPointDay, 3),
        (KpiMemberMonth, 0),
        (KpiMember, 0),
        (KpiTierDay, 3),
        (KpiBuyerMonth, 6),
    )
    async with reading(engine) as conn:
        for model, keys in models:
            t = table(model)
            rows = await conn.execute(select(t).where(t.c.program_id == data.program.id))
            kept = [r._asdict() for r in rows.all() if not keys or any(r[keys:])]
            for row in kept:
                if "days" in row:
                    row["days"] = sorted(row["days"].split(","))
            found.append(sorted(tuple(map(str, r.values())) for r in kept))
    return tuple(found)


async def test_the_liability_is_the_daily_snapshot_when_there_is_one(
    engine: AsyncEngine, data: KpiDataset
) -> None:
    live = await kpis(data)
    assert live["liability_as_of"].startswith("2026-04-02T")
    assert live["total"]["outstanding_points"] > 0
    taken = datetime(2026, 4, 2, 1, 30, tzinfo=UTC)
    async with transaction(engine) as conn:
        await liability_service.snapshot(conn, data.program, taken)
        # Points earned after the snapshot: the KPIs show the snapshot's figures until the
        # next one.
        await conn.execute(
            update(table(Lot))
            .where(table(Lot).c.program_id == data.program.id)
            .values(remaining=table(Lot).c.remaining + 1)
        )
    report = await kpis(data)
    assert datetime.fromisoformat(report["liability_as_of"]) == taken
    assert report["total"]["outstanding_points"] == live["total"]["outstanding_points"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-31", "to": "2026-03-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-03-01"}, "from"),
        ({"from": "2026-3-1"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"by": "week"}, "by"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    response = await api.get("/v1/analytics/kpis", **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"].endswith(field)


async def test_cohorts_cover_at_most_36_months(api: Api) -> None:
    response = await api.get(
        "/v1/analytics/kpis/cohorts", **{"from": "2020-01-01", "to": "2026-01-01"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "from"


async def test_a_till_key_may_not_read_them(engine: AsyncEngine, api: Api, program: Any) -> None:
    till = Api(api.client, await make_key(engine, program, "pos"))
    assert (await till.get("/v1/analytics/kpis")).status_code == 403
    assert (await till.get("/v1/analytics/kpis/cohorts")).status_code == 403


async def test_merged_and_erased_profiles_are_no_participants(
    engine: AsyncEngine, api: Api
) -> None:
    """Anna and Boris bought (Boris twice); Boris is merged into Anna, Clara is erased: one
    participant, active and a repeat buyer (Boris's purchases are Anna's now)."""
    with clock.frozen(at(3, 1, 9)):
        program = await make_program(engine, timezone="Europe/Moscow")
    own = Api(api.client, await make_key(engine, program, "admin"))
    ids: dict[str, str] = {}
    for name in ("Anna", "Boris", "Clara"):
        body = member_body(name=name)
        with clock.frozen(at(3, 1, 10)):
            created = await own.post("/v1/members", body)
        ids[name] = created.json()["id"]
        for day in {"Anna": [2], "Boris": [3, 4], "Clara": []}[name]:
            sale = purchase_body(
                body["external_id"], 10_000, occurred_at=at(3, day, 10).isoformat()
            )
            with clock.frozen(at(3, day, 10)):
                assert (await own.post("/v1/purchases", sale)).status_code == 201
    with clock.frozen(at(3, 5, 10)):
        merged = await own.post(
            f"/v1/members/{ids['Anna']}/merge", {"merged": ids["Boris"], "reason": "same person"}
        )
        assert merged.status_code == 200, merged.text
        erased = await own.post(f"/v1/members/{ids['Clara']}/erase", {"reason": "request 1"})
        assert erased.status_code == 200, erased.text
    await worker(engine, "analytics.kpis").drain()
    with clock.frozen(at(3, 10, 12)):
        report = (await own.get("/v1/analytics/kpis", **{"from": "2026-03-01"})).json()
    expected = {
        "participants": 1,
        "new_participants": 1,
        "active_30d": 1,
        "buyers": 1,
        "repeat_buyers": 1,
        "purchases": 3,
    }
    assert subset(report["total"], expected) == expected


async def test_the_last_30_days_by_month(data: KpiDataset) -> None:
    months = (await kpis(data, by="month"))["rows"]
    # March (4–31 March for checks): Anna 2,000, no member 1,500, Dana 700, Anna 3,000;
    # its buyers are the whole month's: Clara (1 March), Boris, Anna (twice), Dana, of whom
    # only Dana's first purchase is in the period. April (1–2): Clara's 400.
    assert [
        (
            r["group"],
            r["purchases"],
            r["buyers"],
            r["repeat_buyers"],
            r["new_buyers"],
            r["participants"],
            r["new_participants"],
        )
        for r in months
    ] == [("2026-03", 4, 4, 1, 1, 4, 1), ("2026-04", 1, 1, 0, 0, 4, 0)]


async def test_active_members_are_participants_even_with_a_receipt_from_before_joining(
    data: KpiDataset,
) -> None:
    # Dana joined on 8 March and claimed a receipt of 7 March: on 7 March she was not a
    # participant yet, so not an active one either.
    report = await kpis(data, **{"from": "2026-03-07", "to": "2026-03-07"})
    total = report["total"]
    assert (total["participants"], total["active_30d"], total["active_90d"]) == (3, 3, 3)


async def test_a_period_reaching_past_today_counts_members_as_of_now(data: KpiDataset) -> None:
    now = (await kpis(data))["total"]
    ahead = (await kpis(data, **{"from": "2026-03-04", "to": "2026-04-30"}))["total"]
    names = ("participants", "active_30d", "active_90d", "new_participants", "buyers")
    assert {n: ahead[n] for n in names} == {n: now[n] for n in names}
    months = await kpis(data, **{"from": "2026-03-04", "to": "2026-05-31", "by": "month"})
    may = next(r for r in months["rows"] if r["group"] == "2026-05")
    assert (may["participants"], may["active_30d"], may["new_participants"]) == (4, 3, 0)
