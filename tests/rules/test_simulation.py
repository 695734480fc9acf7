"""Simulation: replaying stored history under a program gives what live evaluation gave,
and a draft's difference is reported per rule and currency."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.models import Lot
from kopilka.models.base import table
from kopilka.programs.schemas import ProgramSettings
from kopilka.purchases.simulation import simulate
from tests.conftest import BASE_SETTINGS, Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RULES: list[dict[str, Any]] = [
    {
        "id": "win-back",
        "conditions": [{"type": "days_since_last_purchase", "min": 20}],
        "effects": [{"type": "multiplier", "factor": 2, "of": ["base"]}],
    },
    {
        "id": "every-third",
        "conditions": [{"type": "nth_purchase", "n": 3, "every": True}],
        "effects": [{"type": "points", "amount": 25}],
    },
    {
        "id": "regular",
        "conditions": [{"type": "purchases_in_window", "days": 14, "min": 2}],
        "effects": [{"type": "percent", "basis_points": 500}],
        "limits": {"periods": [{"per": "member", "period": "week", "times": 1}]},
    },
    {
        "id": "boost-after-big",
        "conditions": [{"type": "basket_total", "min": 40_000}],
        "effects": [{"type": "boost", "factor": "1.5", "valid_days": 10}],
    },
]


def document(**changes: Any) -> ProgramSettings:
    return ProgramSettings.model_validate({**BASE_SETTINGS, "rules": RULES, **changes})


async def live_history(http: httpx.AsyncClient, engine: AsyncEngine) -> Any:
    program = await make_program(engine, rules=RULES)
    api = Api(http, await make_key(engine, program, "admin"))
    members = []
    for _ in range(4):
        body = member_body()
        assert (await api.post("/v1/members", body)).status_code == 201
        members.append(body["external_id"])
    gaps = [1, 3, 25, 2, 2, 30, 1, 4, 6, 21]
    for n, member in enumerate(members):
        moment = START + timedelta(hours=n)
        for i, gap in enumerate(gaps[n:] + gaps[:n]):
            moment += timedelta(days=gap)
            total = 10_000 + 7_300 * ((i + n) % 6)
            body = purchase_body(member, total, occurred_at=moment.isoformat())
            assert (await api.post("/v1/purchases", body)).status_code == 201
    return program


async def live_earned(engine: AsyncEngine, program_id: Any) -> dict[tuple[str, str], int]:
    lots = table(Lot)
    query = select(lots.c.rule_id, lots.c.currency, lots.c.amount).where(
        lots.c.program_id == program_id
    )
    earned: dict[tuple[str, str], int] = {}
    async with reading(engine) as conn:
        for rule_id, currency, amount in (await conn.execute(query)).all():
            earned[(rule_id, currency)] = earned.get((rule_id, currency), 0) + amount
    return earned


async def test_replaying_history_gives_what_live_evaluation_gave(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    program = await live_history(http, engine)
    live = await live_earned(engine, program.id)
    assert {rule for rule, _ in live} >= {"base", "win-back", "every-third", "regular"}
    async with reading(engine) as conn:
        report = await simulate(
            conn, program, document(), START, START + timedelta(days=400), published=document()
        )
    assert report["purchases"] == 40
    replayed = {
        (rule["rule_id"], currency): amount
        for rule in report["rules"]
        for currency, amount in rule["draft"].items()
        if amount
    }
    assert replayed == live
    assert all(t["liability_change"] == 0 for t in report["totals"])
    assert report["members_affected"] == 0


async def test_a_draft_reports_its_difference_per_rule(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    program = await live_history(http, engine)
    live = await live_earned(engine, program.id)
    doubled_base = document(earning=[{"id": "base", "type": "per_amount", "points": 2}])
    without_win_back = [r for r in RULES if r["id"] != "win-back"]
    draft = document(
        earning=[{"id": "base", "type": "per_amount", "points": 2}], rules=without_win_back
    )
    async with reading(engine) as conn:
        report = await simulate(
            conn, program, draft, START, START + timedelta(days=400), published=document()
        )
        same = await simulate(
            conn, program, doubled_base, START, START + timedelta(days=400), published=doubled_base
        )
    rules = {r["rule_id"]: r for r in report["rules"]}
    assert rules["base"]["published"]["points"] == live[("base", "points")]
    assert rules["base"]["draft"]["points"] == 2 * live[("base", "points")]
    assert rules["win-back"]["draft"] == {"points": 0}
    assert rules["win-back"]["members_published"] >= 1
    points = next(t for t in report["totals"] if t["currency"] == "points")
    assert points["liability_change"] == points["draft"] - points["published"]
    assert (
        points["draft"]
        == next(t["draft"] for t in same["totals"] if t["currency"] == "points")
        - 2 * live[("win-back", "points")]
    )  # win-back doubled base: without it, 2× less
    assert report["members_affected"] == 4


async def test_simulate_over_http_uses_the_stored_draft_or_a_given_document(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    program = await live_history(http, engine)
    admin = Api(http, await make_key(engine, program, "admin"))
    doubled = document(earning=[{"id": "base", "type": "per_amount", "points": 2}])
    stored = await admin.client.put(
        "/v1/program/draft", json=doubled.model_dump(mode="json"), headers=admin.headers
    )
    assert stored.status_code == 200, stored.text
    body = {"since": START.isoformat()}
    response = await admin.post("/v1/program/simulate", body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["purchases"] == 40 and report["version_in_force"] == 1
    base = next(r for r in report["rules"] if r["rule_id"] == "base")
    assert base["draft"]["points"] == 2 * base["published"]["points"] > 0
    same = await admin.post(
        "/v1/program/simulate", {**body, "document": document().model_dump(mode="json")}
    )
    assert all(t["liability_change"] == 0 for t in same.json()["totals"])
    broken = {"earning": [{"id": "base", "type": "per_amount", "per": 0}]}
    bad = await admin.post("/v1/program/simulate", {**body, "document": broken})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "earning.0.per"
    till = Api(http, await make_key(engine, program, "pos"))
    assert (await till.post("/v1/program/simulate", body)).status_code == 403
