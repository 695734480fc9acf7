"""Rules on the real purchase path, over HTTP, on SQLite and PostgreSQL: member state read
at evaluation time, limits, benefits, boosts, tags, emitted events and experiments."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.db import reading
from kopilka.ledger.audit import verify
from kopilka.models import ExperimentAssignment, MemberBenefit, OutboxEvent
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from kopilka.rules.experiments import assign_arm
from kopilka.rules.schemas import Experiment
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

BASE = [{"id": "base", "type": "per_amount", "points": 1, "per": 100}]
DAY0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


async def program_api(
    http: httpx.AsyncClient, engine: AsyncEngine, rules: list[dict[str, Any]], **more: Any
) -> tuple[Api, ProgramContext]:
    program = await make_program(engine, earning=BASE, rules=rules, **more)
    return Api(http, await make_key(engine, program, "admin")), program


async def enrol(api: Api) -> str:
    body = member_body()
    assert (await api.post("/v1/members", body)).status_code == 201
    return str(body["external_id"])


async def buy(api: Api, member: str, total: int, at: datetime, **extra: Any) -> dict[str, Any]:
    body = purchase_body(member, total, occurred_at=at.isoformat(), **extra)
    response = await api.post("/v1/purchases?explain=true", body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def earned_by(result: dict[str, Any], rule_id: str) -> int:
    return sum(e["amount"] for e in result["earned"] if e["rule_id"] == rule_id)


async def test_win_back_doubles_the_next_purchase_after_thirty_quiet_days(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    win_back = {
        "id": "win-back",
        "conditions": [{"type": "days_since_last_purchase", "min": 30}],
        "effects": [{"type": "multiplier", "factor": 2, "of": ["base"]}],
    }
    api, program = await program_api(http, engine, [win_back])
    member = await enrol(api)
    first = await buy(api, member, 10_000, DAY0)
    assert earned_by(first, "win-back") == 0  # a first purchase has no "last purchase"
    failed = next(t for t in first["trace"] if t["rule_id"] == "win-back")["failed"]
    assert failed["condition"] == "days_since_last_purchase" and failed["actual"] is None
    soon = await buy(api, member, 10_000, DAY0 + timedelta(days=10))
    assert earned_by(soon, "win-back") == 0
    back = await buy(api, member, 10_000, DAY0 + timedelta(days=41))
    assert earned_by(back, "base") == 100 and earned_by(back, "win-back") == 100
    assert back["points_earned"] == 200
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, program.id)
    assert problems == {name: [] for name in problems}


async def test_regulars_unlock_an_exclusive_reward_once_a_month(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    regulars = {
        "id": "regulars",
        "conditions": [{"type": "purchases_in_window", "days": 30, "min": 3}],
        "effects": [{"type": "reward", "reward": "secret-menu", "valid_days": 30}],
        "limits": {"periods": [{"per": "member", "period": "month", "times": 1}]},
    }
    api, program = await program_api(http, engine, [regulars])
    member = await enrol(api)
    results = [await buy(api, member, 5_000, DAY0 + timedelta(days=d)) for d in range(5)]
    granted = [r["benefits"] for r in results]
    assert granted[:3] == [[], [], []]  # the fourth visit is the first with 3 before it
    assert [b["kind"] for b in granted[3]] == ["reward"]
    assert granted[3][0]["payload"] == {"reward": "secret-menu"}
    assert granted[4] == []  # once a month
    limited = next(t for t in results[4]["trace"] if t["rule_id"] == "regulars")
    assert "1 of 1 times" in limited["reason"]
    benefits = table(MemberBenefit)
    async with reading(engine) as conn:
        query = select(benefits.c.kind, benefits.c.rule_id, benefits.c.status).where(
            benefits.c.program_id == program.id
        )
        stored = (await conn.execute(query)).all()
    assert [(r.kind, r.rule_id, r.status) for r in stored] == [("reward", "regulars", "active")]


async def test_a_boost_doubles_the_next_purchase_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    welcome = {
        "id": "welcome-boost",
        "conditions": [{"type": "first_purchase"}],
        "effects": [{"type": "boost", "factor": 2, "valid_days": 14}],
    }
    api, _ = await program_api(http, engine, [welcome])
    member = await enrol(api)
    first = await buy(api, member, 10_000, DAY0)
    assert [b["kind"] for b in first["benefits"]] == ["boost"]
    second = await buy(api, member, 7_000, DAY0 + timedelta(days=3))
    assert second["points_earned"] == 140 and earned_by(second, "welcome-boost") == 70
    third = await buy(api, member, 7_000, DAY0 + timedelta(days=4))
    assert third["points_earned"] == 70


async def test_tags_and_events_are_member_state_and_outbox(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rules = [
        {
            "id": "wine-lover",
            "conditions": [{"type": "line_match", "lines": {"categories": ["wine"]}}],
            "effects": [
                {"type": "tag", "tag": "wine"},
                {"type": "emit_event", "name": "wine.bought", "payload": {"badge": "sommelier"}},
            ],
        },
        {
            "id": "wine-club",
            "conditions": [{"type": "member_tag", "tags": ["wine"]}],
            "effects": [{"type": "points", "amount": 50}],
        },
    ]
    api, program = await program_api(http, engine, rules)
    member = await enrol(api)
    wine = [{"sku": "W1", "category": "wine", "quantity": 1, "unit_price": 3_000}]
    first = await buy(api, member, 3_000, DAY0, lines=wine)
    assert earned_by(first, "wine-club") == 0  # tagged by this purchase, not before it
    second = await buy(api, member, 3_000, DAY0 + timedelta(hours=1))
    assert earned_by(second, "wine-club") == 50
    outbox = table(OutboxEvent)
    async with reading(engine) as conn:
        topics = (
            await conn.execute(
                select(outbox.c.topic, outbox.c.payload).where(
                    outbox.c.program_id == program.id, outbox.c.topic.like("rule.%")
                )
            )
        ).all()
    assert [(t, p["data"]["badge"]) for t, p in topics] == [("rule.wine.bought", "sommelier")]


async def test_experiment_rules_run_only_in_their_arm_and_assignments_are_recorded(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    experiment = {
        "name": "bonus-test",
        "arms": [{"name": "test", "percent": 50}, {"name": "holdout", "percent": 50}],
    }
    bonus = {
        "id": "bonus",
        "experiment": {"experiment": "bonus-test", "arm": "test"},
        "effects": [{"type": "points", "amount": 10}],
    }
    api, program = await program_api(http, engine, [bonus], experiments=[experiment])
    members = [await enrol(api) for _ in range(12)]
    results = [await buy(api, m, 1_000, DAY0) for m in members]
    arms = {
        r["member_id"]: assign_arm(Experiment.model_validate(experiment), r["member_id"])
        for r in results
    }
    assert set(arms.values()) == {"test", "holdout"}  # 12 members split both ways
    for result in results:
        expected = 10 if arms[result["member_id"]] == "test" else 0
        assert earned_by(result, "bonus") == expected
    assignments = table(ExperimentAssignment)
    async with reading(engine) as conn:
        recorded = (
            await conn.execute(select(func.count()).where(assignments.c.program_id == program.id))
        ).scalar_one()
    assert recorded == 12


async def test_max_per_event_and_member_daily_amount_limit(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    promo = {
        "id": "promo",
        "effects": [{"type": "points_per_amount", "points": 1, "per": 100}],
        "limits": {
            "max_per_event": 30,
            "periods": [{"per": "member", "period": "day", "amount": 50}],
        },
    }
    api, _ = await program_api(http, engine, [promo])
    member = await enrol(api)
    first = await buy(api, member, 10_000, DAY0)
    assert earned_by(first, "promo") == 30
    second = await buy(api, member, 10_000, DAY0 + timedelta(hours=1))
    assert earned_by(second, "promo") == 20  # 50 a day
    third = await buy(api, member, 10_000, DAY0 + timedelta(hours=2))
    assert earned_by(third, "promo") == 0
    next_day = await buy(api, member, 10_000, DAY0 + timedelta(days=1))
    assert earned_by(next_day, "promo") == 30


async def test_events_other_than_purchases_run_their_rules_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rules = [
        {
            "id": "app-installed",
            "trigger": "event",
            "event": "app_installed",
            "effects": [{"type": "points", "amount": 200}],
            "limits": {"periods": [{"per": "member", "period": "ever", "times": 1}]},
        },
        {
            "id": "review-boost",
            "trigger": "review",
            "effects": [{"type": "boost", "factor": 2, "valid_days": 14}],
        },
    ]
    api, _ = await program_api(http, engine, rules)
    member = await enrol(api)
    event = {
        "member": {"external_id": member},
        "external_id": "install-1",
        "type": "event",
        "name": "app_installed",
        "occurred_at": DAY0.isoformat(),
    }
    first = await api.post("/v1/events?explain=true", event)
    assert first.status_code == 201, first.text
    assert [(e["rule_id"], e["amount"]) for e in first.json()["earned"]] == [("app-installed", 200)]
    review_trace = next(t for t in first.json()["trace"] if t["rule_id"] == "review-boost")
    assert review_trace["fired"] is False and "trigger" in review_trace["reason"]
    again = await api.post("/v1/events?explain=true", event)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    second_install = await api.post("/v1/events", {**event, "external_id": "install-2"})
    assert second_install.json()["earned"] == []  # once ever
    review = {**event, "external_id": "review-1", "type": "review", "name": None}
    reviewed = await api.post("/v1/events", review)
    assert [b["kind"] for b in reviewed.json()["benefits"]] == ["boost"]
    boosted = await buy(api, member, 10_000, DAY0 + timedelta(days=1))
    assert boosted["points_earned"] == 200
    unnamed = await api.post("/v1/events", {**event, "external_id": "x", "name": None})
    assert unnamed.status_code == 422
    nobody = await api.post("/v1/events", {**event, "member": {"external_id": "nobody"}})
    assert nobody.status_code == 404
    balance = (await api.get(f"/v1/members/{boosted['member_id']}/balance")).json()
    assert balance["balances"][0]["available"] == 400


async def test_member_tags_attributes_and_time_zone_set_over_the_api_feed_the_rules(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rules = [
        {
            "id": "vip-tag",
            "conditions": [{"type": "member_tag", "tags": ["vip"]}],
            "effects": [{"type": "points", "amount": 7}],
        },
        {
            "id": "students",
            "conditions": [{"type": "attribute", "name": "student", "equals": True}],
            "effects": [{"type": "points", "amount": 3}],
        },
        {
            "id": "morning",
            "conditions": [{"type": "time_of_day", "start": "07:00", "end": "10:00"}],
            "effects": [{"type": "points", "amount": 1}],
        },
    ]
    api, _ = await program_api(http, engine, rules)
    body = member_body(tags=["vip"], attributes={"student": True, "timezone": "Asia/Tokyo"})
    created = await api.post("/v1/members", body)
    assert created.status_code == 201, created.text
    assert created.json()["tags"] == ["vip"] and created.json()["attributes"]["student"] is True
    # 00:30 UTC is 09:30 in Tokyo: morning for this member, night in the program's zone.
    result = await buy(api, body["external_id"], 1_000, datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    assert {e["rule_id"] for e in result["earned"]} == {"base", "vip-tag", "students", "morning"}
    member_id = created.json()["id"]
    changed = await api.patch(f"/v1/members/{member_id}", {"tags": [], "attributes": {}})
    assert changed.status_code == 200 and changed.json()["tags"] == []
    later = await buy(api, body["external_id"], 1_000, datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    assert {e["rule_id"] for e in later["earned"]} == {"base"}
    bad = await api.patch(f"/v1/members/{member_id}", {"tags": ["no spaces allowed"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("tags")


async def test_a_recorded_arm_stays_when_the_shares_change(engine: AsyncEngine) -> None:
    experiment = {
        "name": "sticky",
        "arms": [{"name": "test", "percent": 100}, {"name": "holdout", "percent": 0}],
    }
    bonus = {
        "id": "bonus",
        "experiment": {"experiment": "sticky", "arm": "test"},
        "effects": [{"type": "points", "amount": 10}],
    }
    program = await make_program(engine, earning=BASE, rules=[bonus], experiments=[experiment])
    flipped = {
        "name": "sticky",
        "arms": [{"name": "test", "percent": 0}, {"name": "holdout", "percent": 100}],
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine=engine)), base_url="http://k.test"
    ) as client:
        api = Api(client, await make_key(engine, program, "admin"))
        member = await enrol(api)
        first = await buy(api, member, 1_000, DAY0)
        assert earned_by(first, "bonus") == 10
        newcomer = await enrol(api)
        draft = {**program.settings.model_dump(mode="json"), "experiments": [flipped]}
        assert (await client.put("/v1/program/draft", json=draft, headers=api.headers)).is_success
        assert (await api.post("/v1/program/publish")).status_code == 201
        again = await buy(api, member, 1_000, DAY0 + timedelta(days=1))
        assert earned_by(again, "bonus") == 10  # recorded in arm test before the change
        fresh = await buy(api, newcomer, 1_000, DAY0 + timedelta(days=1))
        assert earned_by(fresh, "bonus") == 0  # assigned under the new shares


async def test_signing_up_runs_the_sign_up_rules_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    welcome = {
        "id": "welcome-bonus",
        "trigger": "signup",
        "effects": [{"type": "points", "amount": 250}],
    }
    api, _ = await program_api(http, engine, [welcome])
    created = await api.post("/v1/members", member_body())
    assert created.status_code == 201, created.text
    balance = (await api.get(f"/v1/members/{created.json()['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 250
    history = (await api.get(f"/v1/members/{created.json()['id']}/history")).json()
    assert [(e["kind"], e["reference_type"]) for e in history["items"]] == [("earn", "signup")]
    # The integration also tells of the sign-up, by another path and id: nothing again.
    told = {
        "member": {"id": created.json()["id"]},
        "external_id": "crm-signup-1",
        "type": "signup",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    again = await api.post("/v1/events", told)
    assert again.status_code == 201, again.text
    assert again.json()["earned"] == []
    assert (await api.post("/v1/events", {**told, "external_id": "crm-signup-2"})).json()[
        "earned"
    ] == []
    balance = (await api.get(f"/v1/members/{created.json()['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 250


async def test_a_first_sign_up_told_by_the_integration_pays_once(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """A program that adds sign-up rules later: members registered before it get the
    welcome once, by whichever sign-up event arrives first."""
    api, _ = await program_api(http, engine, [])
    created = await api.post("/v1/members", member_body())
    member_id = created.json()["id"]
    welcome = {
        "id": "welcome-bonus",
        "trigger": "signup",
        "effects": [{"type": "points", "amount": 250}],
    }
    draft = {"earning": BASE, "rules": [welcome], "money_currency": "RUB"}
    draft["currencies"] = [{"code": "points"}, {"code": "cashback", "kind": "money"}]
    assert (await api.put("/v1/program/draft", draft)).status_code == 200
    assert (await api.post("/v1/program/publish", {})).status_code == 201
    later = api
    told = {
        "member": {"id": member_id},
        "external_id": "crm-signup-1",
        "type": "signup",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    first = await later.post("/v1/events", told)
    assert [e["amount"] for e in first.json()["earned"]] == [250]
    second = await later.post("/v1/events", {**told, "external_id": "crm-signup-2"})
    assert second.json()["earned"] == []


async def test_a_return_runs_the_return_rules(http: httpx.AsyncClient, engine: AsyncEngine) -> None:
    sorry = {
        "id": "sorry",
        "trigger": "return",
        "conditions": [{"type": "basket_total", "min": 5_000}],
        "effects": [{"type": "points", "amount": 20}, {"type": "tag", "tag": "returner"}],
    }
    api, _ = await program_api(http, engine, [sorry])
    member = await enrol(api)
    bought = await buy(api, member, 10_000, DAY0)
    assert earned_by(bought, "sorry") == 0  # a purchase is not a return
    small = {
        "external_id": "r-1",
        "purchase_external_id": bought["external_id"],
        "occurred_at": (DAY0 + timedelta(days=1)).isoformat(),
        "amount": 2_000,
    }
    first = await api.post("/v1/returns", small)
    assert first.status_code == 201, first.text
    assert first.json()["earned"] == []  # 20 ₽ returned: below the rule's 50 ₽
    rest = {**small, "external_id": "r-2", "amount": 8_000}
    second = (await api.post("/v1/returns", rest)).json()
    assert [(e["rule_id"], e["amount"]) for e in second["earned"]] == [("sorry", 20)]
    points = next(b for b in second["balances"] if b["currency"] == "points")
    assert points["available"] == 20  # 100 earned, 100 reversed, 20 given back
    profile = (await api.get(f"/v1/members/{bought['member_id']}")).json()
    assert profile["tags"] == ["returner"]
