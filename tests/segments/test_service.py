"""Predicates find the right members, membership is kept by events and refreshes with its
events, static lists, and the rules' ``segment`` condition — on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.crm.service import crm_service
from kopilka.crm.tasks import daily_facts
from kopilka.db import reading, transaction
from kopilka.errors import InvalidInput
from kopilka.kit.clock import clock
from kopilka.models import MemberConsent, MemberTier, OutboxEvent
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from kopilka.segments.domain import parse_definition
from kopilka.segments.repository import segment_repository
from kopilka.segments.service import segment_service
from tests.conftest import Api, make_key, make_program
from tests.crm.support import buy, new_member, worker

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def preview(engine: AsyncEngine, program: ProgramContext, definition: Any) -> set[UUID]:
    async with reading(engine) as conn:
        found = await segment_service.preview(conn, program, definition, clock.now())
    assert found.count == len(found.sample)  # small programs: the sample is everyone
    return set(found.sample)


async def events(engine: AsyncEngine, program: ProgramContext, topic: str) -> list[dict[str, Any]]:
    outbox = table(OutboxEvent)
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(outbox.c.member_id, outbox.c.payload)
            .where(outbox.c.program_id == program.id, outbox.c.topic == topic)
            .order_by(outbox.c.seq)
        )
        return [{"member_id": r[0], **r[1]} for r in rows]


async def people(api: Api, engine: AsyncEngine, program: ProgramContext) -> dict[str, UUID]:
    """Anna: Moscow, 35, vip, 3 coffees this month; Boris: Kazan, one tea 100 days ago,
    gold; Clara: nothing bought."""
    anna = await new_member(
        api,
        city="Moscow",
        birthday="1990-12-10",
        email="anna@example.com",
        tags=["vip"],
        attributes={"pets": 2},
    )
    boris = await new_member(api, city="Kazan", attributes={"pets": "many"})
    clara = await new_member(api)
    for days in (1, 5, 20):
        await buy(api, anna, 10_000, T0 - timedelta(days=days), category="coffee")
    await buy(api, boris, 50_000, T0 - timedelta(days=100), category="tea", store="store-02")
    ids = {n: UUID(m["id"]) for n, m in (("anna", anna), ("boris", boris), ("clara", clara))}
    async with transaction(engine) as conn:
        await crm_service.refresh(conn, program.id, None, clock.now())
        await conn.execute(
            insert(table(MemberConsent)).values(
                member_id=ids["anna"],
                channel="email",
                purpose="marketing",
                program_id=program.id,
                status="granted",
                source="test",
                text_version=None,
                updated_at=clock.now(),
            )
        )
        await conn.execute(
            insert(table(MemberTier)).values(
                member_id=ids["boris"],
                program_id=program.id,
                tier="gold",
                earned="gold",
                updated_at=clock.now(),
            )
        )
    await daily_facts(engine, program.id, clock.now())
    return ids


CASES: list[tuple[Any, set[str]]] = [
    ({"type": "profile", "field": "city", "one_of": ["Moscow"]}, {"anna"}),
    ({"not": {"type": "profile", "field": "city", "one_of": ["Moscow"]}}, {"boris", "clara"}),
    ({"not": {"type": "profile", "field": "city", "one_of": ["Kazan"]}}, {"anna", "clara"}),
    ({"type": "profile_present", "field": "email", "present": False}, {"boris", "clara"}),
    ({"type": "tags", "tags": ["vip"]}, {"anna"}),
    ({"type": "tags", "tags": ["vip", "staff"], "all": True}, set()),
    ({"type": "attribute", "name": "pets", "min": 1}, {"anna"}),
    ({"type": "attribute", "name": "pets", "equals": "many"}, {"boris"}),
    ({"type": "attribute", "name": "pets", "exists": False}, {"clara"}),
    ({"type": "age", "min": 30, "max": 40}, {"anna"}),
    ({"type": "birthday_month", "months": [12]}, {"anna"}),
    ({"type": "tenure_days", "max": 1}, {"anna", "boris", "clara"}),
    ({"type": "consent", "channel": "email"}, {"anna"}),
    ({"type": "consent", "channel": "email", "granted": False}, {"boris", "clara"}),
    ({"type": "tier", "tiers": ["gold"]}, {"boris"}),
    ({"type": "purchases", "measure": "spend", "last_days": 90, "min": 20_000}, {"anna"}),
    ({"type": "purchases", "measure": "count", "last_days": 90, "max": 0}, {"boris", "clara"}),
    ({"type": "purchases", "measure": "count", "min": 1}, {"anna", "boris"}),
    ({"type": "purchases", "measure": "average_check", "min": 40_000}, {"boris"}),
    (
        {
            "type": "purchases",
            "measure": "spend",
            "since": "2026-02-01",
            "until": "2026-02-28",
            "min": 1,
        },
        {"boris"},
    ),
    ({"type": "bought", "categories": ["coffee"], "last_days": 30}, {"anna"}),
    ({"type": "bought", "categories": ["coffee"], "never": True}, {"boris", "clara"}),
    ({"type": "bought", "stores": ["store-02"]}, {"boris"}),
    ({"type": "bought", "skus": ["SKU-1"], "last_days": 30}, {"anna"}),
    ({"type": "days_since_last_purchase", "min": 60}, {"boris"}),
    ({"type": "points_balance", "min": 400}, {"boris"}),
    ({"type": "points_balance", "max": 0}, {"clara"}),
    ({"type": "points_expiring", "within_days": 30}, set()),
    ({"type": "rfm_score", "score": "recency", "min": 5}, {"anna"}),
    # Two scored members: the lower gets 3s (ceil(5 × 1/2)).
    ({"type": "rfm_group", "groups": ["need_attention"]}, {"boris"}),
    (
        {
            "any": [
                {"type": "tier", "tiers": ["gold"]},
                {"not": {"type": "days_since_last_purchase", "max": 60}},
            ]
        },
        {"boris", "clara"},
    ),
    (
        {"all": [{"type": "tags", "tags": ["vip"]}, {"not": {"type": "tier", "tiers": ["gold"]}}]},
        {"anna"},
    ),
]


async def test_predicates_find_the_right_members(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        ids = await people(api, engine, program)
        names = {v: k for k, v in ids.items()}
        for definition, expected in CASES:
            found = {names[m] for m in await preview(engine, program, definition)}
            assert found == expected, definition


def test_validation_names_the_field() -> None:
    with pytest.raises(InvalidInput) as bad:
        parse_definition(
            {
                "all": [
                    {"type": "tags", "tags": ["x"]},
                    {"type": "tier", "tiers": ["a"]},
                    {"type": "purchases", "last_days": 0, "min": 1},
                ]
            }
        )
    assert bad.value.field == "definition.all.2.last_days"
    with pytest.raises(InvalidInput) as unknown:
        parse_definition({"not": {"type": "nope"}})
    assert unknown.value.field == "definition.not.type"


async def test_membership_follows_events_and_refreshes(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna = await new_member(api)
        boris = await new_member(api)
        await buy(api, anna, 10_000, T0 - timedelta(days=2), category="coffee")
        await worker(engine, "crm.facts", "segments").drain()
        definition = {"type": "bought", "categories": ["coffee"], "last_days": 30}
        async with transaction(engine) as conn:
            from kopilka.segments.schemas import SegmentCreate

            created = await segment_service.create(
                conn,
                program,
                SegmentCreate(key="coffee-lovers", name="Coffee", definition=definition),
                clock.now(),
            )
        assert created.members == 1 and created.version == 1
        # Boris buys coffee: the consumer puts him in, with an event.
        await buy(api, boris, 5_000, T0 - timedelta(hours=1), category="coffee")
        await worker(engine, "crm.facts", "segments").drain()
        await worker(engine, "crm.facts", "segments").drain()  # nothing twice
        entered = await events(engine, program, "segment.entered")
        assert [(e["member_id"], e["reason"]) for e in entered] == [
            (UUID(anna["id"]), "refresh"),
            (UUID(boris["id"]), "event"),
        ]
        async with reading(engine) as conn:
            keys = await segment_service.keys_of_members(
                conn, program.id, [UUID(anna["id"]), UUID(boris["id"])]
            )
        assert keys == {UUID(anna["id"]): {"coffee-lovers"}, UUID(boris["id"]): {"coffee-lovers"}}
    # A month passes with no event: the refresh lets both go.
    with clock.frozen(T0 + timedelta(days=31)):
        async with transaction(engine) as conn:
            result = await segment_service.refresh(conn, program, "coffee-lovers", clock.now())
        assert (result.entered, result.left, result.members) == (0, 2, 0)
        left = await events(engine, program, "segment.left")
        assert {(e["member_id"], e["reason"]) for e in left} == {
            (UUID(anna["id"]), "refresh"),
            (UUID(boris["id"]), "refresh"),
        }
        async with transaction(engine) as conn:
            again = await segment_service.refresh(conn, program, "coffee-lovers", clock.now())
        assert (again.entered, again.left) == (0, 0)


async def test_a_segment_condition_fires_only_for_members_in_the_segment(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rule = {
        "id": "vip-bonus",
        "conditions": [{"type": "segment", "segments": ["vips"]}],
        "effects": [{"type": "points", "amount": 500}],
    }
    program = await make_program(engine, rules=[rule])
    api = Api(http, await make_key(engine, program, "admin"))
    with clock.frozen(T0):
        inside = await new_member(api)
        outside = await new_member(api)
        created = await api.post("/v1/segments", {"key": "vips", "name": "VIP", "kind": "static"})
        assert created.status_code == 201, created.text
        listed = await api.put("/v1/segments/vips/list", {"members": [inside["external_id"]]})
        assert listed.status_code == 200 and listed.json()["added"] == 1

        async def bonus(member: dict[str, Any]) -> int:
            body = (await buy(api, member, 10_000, T0))["external_id"]
            async with reading(engine) as conn:
                found = await conn.execute(
                    select(table(OutboxEvent).c.payload).where(
                        table(OutboxEvent).c.topic == "purchase.recorded",
                        table(OutboxEvent).c.program_id == program.id,
                    )
                )
                for (payload,) in found:
                    if payload["external_id"] == body:
                        return int(payload["earned"].get("points", 0))
            raise AssertionError("no purchase event")

        assert await bonus(inside) == 100 + 500
        assert await bonus(outside) == 100


WINDOWED: list[Any] = [
    {"type": "purchases", "measure": "spend", "last_days": 90, "min": 20_000},
    {"type": "purchases", "measure": "count", "last_days": 30, "min": 2},
    {"type": "purchases", "measure": "count", "last_days": 90, "max": 0},
    {"type": "purchases", "measure": "average_check", "last_days": 365, "min": 40_000},
    {"not": {"type": "purchases", "measure": "spend", "last_days": 30, "max": 10_000}},
    {
        "all": [
            {"type": "purchases", "measure": "spend", "last_days": 90, "min": 1},
            {"type": "consent", "channel": "email"},
        ]
    },
]


async def test_stored_and_summed_windows_agree(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    """Predicates over the stored windows read member_facts columns only while they are
    exact; a day later, before the daily job, they sum the buckets; both find the same."""
    with clock.frozen(T0):
        ids = await people(api, engine, program)
    names = {v: k for k, v in ids.items()}
    for day in (0, 10, 25, 95, 400):
        with clock.frozen(T0 + timedelta(days=day)):
            async with reading(engine) as conn:
                exact = await segment_repository.windows_exact(conn, program.id, clock.now())
            summed = [await preview(engine, program, w) for w in WINDOWED]
            await daily_facts(engine, program.id, clock.now())
            async with reading(engine) as conn:
                assert await segment_repository.windows_exact(conn, program.id, clock.now())
            stored = [await preview(engine, program, w) for w in WINDOWED]
            assert stored == summed, day
            # Each later day some purchase day has left a window since the last job (anna's
            # 20-day-old coffee leaves the 30-day window on day 10): until the job has run,
            # the columns are not read.
            assert exact == (day == 0), day
            if day == 25:
                assert {names[m] for m in stored[0]} == {"anna"}
                assert {names[m] for m in stored[1]} == set()
