"""The rewards services on SQLite and PostgreSQL: definitions, loading a catalog, every kind
redeemed, every limit, cancellations refunding to the ledger, idempotency."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import (
    Conflict,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    KopilkaError,
    MemberBlocked,
    NotFound,
)
from kopilka.kit.clock import clock
from kopilka.ledger.service import ledger_service
from kopilka.members.schemas import MemberRef
from kopilka.models import Redemption
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from kopilka.rewards.domain import KINDS, RewardUnavailable
from kopilka.rewards.redemptions import redemption_service
from kopilka.rewards.schemas import (
    CodesAdd,
    RedemptionCreate,
    RewardCreate,
    RewardRedemption,
    RewardUpdate,
)
from kopilka.rewards.service import reward_service
from tests.conftest import Api, make_program
from tests.purchases.test_endpoints import assert_ledger_sound
from tests.rewards.conftest import (
    available,
    new_member,
    redemption_count,
    reward_body,
    stock_of,
    topics,
)

T0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
ledger_redemptions_t = table(Redemption)


async def create(engine: AsyncEngine, program: ProgramContext, body: dict[str, Any]) -> str:
    async with transaction(engine) as conn:
        reward = await reward_service.create(
            conn, program, RewardCreate.model_validate(body), clock.now()
        )
    return reward.key


async def redeem(
    engine: AsyncEngine,
    program: ProgramContext,
    key: str,
    member_id: str,
    external_id: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[RewardRedemption, bool]:
    body = RedemptionCreate(member=MemberRef(id=UUID(member_id)), external_id=external_id)
    async with transaction(engine) as conn:
        _, answer, replayed = await redemption_service.redeem(
            conn, program, key, body, idempotency_key, clock.now()
        )
    return RewardRedemption.model_validate(answer), replayed


async def refused(
    engine: AsyncEngine, program: ProgramContext, key: str, member_id: str
) -> KopilkaError:
    with pytest.raises(KopilkaError) as error:
        await redeem(engine, program, key, member_id)
    return error.value


# -- definitions ------------------------------------------------------------------------------


async def test_create_update_and_validate_definitions(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, "digital", stock=2))
    async with reading(engine) as conn:
        reward = await reward_service.get(conn, shop, key, None, clock.now())
    assert (reward.code_source, reward.code_pattern, reward.stock) == ("generated", None, 2)

    async with transaction(engine) as conn:
        changed = await reward_service.update(
            conn,
            shop,
            key,
            RewardUpdate(price=150, min_tier="silver", code_pattern="VIP-######"),
            clock.now(),
        )
    assert (changed.price, changed.min_tier, changed.code_pattern) == (150, "silver", "VIP-######")
    # Clearing the source of a digital reward falls back to generated codes.
    async with transaction(engine) as conn:
        cleared = await reward_service.update(
            conn, shop, key, RewardUpdate.model_validate({"code_source": None}), clock.now()
        )
    assert cleared.code_source == "generated"

    bad_updates: list[tuple[dict[str, Any], str]] = [
        ({"code_source": "pool"}, "code_pattern"),  # a pool with a pattern
        ({"min_tier": "platinum"}, "min_tier"),
        ({"available_from": T0, "available_until": T0}, "available_until"),
        ({"gift_amount": 100}, "gift_amount"),
        ({"name": None}, "name"),
    ]
    for change, field in bad_updates:
        with pytest.raises(InvalidInput) as error:
            async with transaction(engine) as conn:
                await reward_service.update(
                    conn, shop, key, RewardUpdate.model_validate(change), clock.now()
                )
        assert error.value.field == field, change
    with pytest.raises(Conflict):
        await create(engine, shop, await reward_body(sapi, key=key))
    with pytest.raises(NotFound):
        async with reading(engine) as conn:
            await reward_service.get(conn, shop, "missing", None, clock.now())
    # A campaign whose discount is not what the reward hands out.
    body = await reward_body(sapi, "free_delivery")
    body["coupon_campaign"] = (await reward_body(sapi, "discount_coupon"))["coupon_campaign"]
    with pytest.raises(InvalidInput, match="gives percent"):
        await create(engine, shop, body)


async def test_without_a_ladder_tiers_cannot_be_used(api: Api, engine: AsyncEngine) -> None:
    program = await make_program(engine)
    for change in ({"min_tier": "gold"}, {"tier_prices": {"gold": 1}}):
        with pytest.raises(InvalidInput, match="no tier ladder"):
            await create(engine, program, await reward_body(api, **change))


# -- every kind -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_spends_points_and_hands_out_what_it_gives(
    kind: str, sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, kind, price=250, stock=1))
    member = await new_member(sapi, points=1_000)
    made, replayed = await redeem(engine, shop, key, member, external_id=f"svc-{kind}")
    assert not replayed
    assert (made.kind, made.price, made.balance and made.balance.available) == (kind, 250, 750)
    issued = kind in ("physical", "event", "charity")
    assert made.status == ("issued" if issued else "fulfilled")
    assert (made.code is None) is issued
    # The spend is a completed one-step redemption of the ledger, for the member.
    async with reading(engine) as conn:
        spend = (
            await conn.execute(
                select(ledger_redemptions_t).where(
                    ledger_redemptions_t.c.id == made.ledger_redemption_id
                )
            )
        ).one()
    assert (spend.status, spend.amount, str(spend.member_id)) == ("completed", 250, member)
    assert spend.reason == f"reward {key} (redemption {made.id})"
    if kind in ("discount_coupon", "free_product", "free_delivery"):
        coupon = (await sapi.get(f"/v1/coupons/{made.code}")).json()
        assert coupon["member_id"] == member
    if kind == "gift_certificate":
        card = (await sapi.get(f"/v1/gift-cards/{made.code}")).json()
        assert card["balance"] == 50_000
    # Stock of one: the next member finds it gone, and keeps their points.
    other = await new_member(sapi, points=1_000)
    error = await refused(engine, shop, key, other)
    assert isinstance(error, RewardUnavailable) and error.extra["reason"] == "out_of_stock"
    assert await available(sapi, other) == 1_000
    await assert_ledger_sound(engine, shop)


# -- every limit ------------------------------------------------------------------------------


async def test_every_limit_refuses_and_changes_nothing(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    with clock.frozen(T0):
        member = await new_member(sapi, points=1_000, tier="silver")
        keys = {
            "archived": await create(engine, shop, await reward_body(sapi, status="archived")),
            "not_yet_available": await create(
                engine,
                shop,
                await reward_body(sapi, available_from=(T0 + timedelta(hours=1)).isoformat()),
            ),
            "ended": await create(
                engine, shop, await reward_body(sapi, available_until=T0.isoformat())
            ),
            "tier_too_low": await create(engine, shop, await reward_body(sapi, min_tier="gold")),
            "out_of_stock": await create(engine, shop, await reward_body(sapi, stock=0)),
            "insufficient_balance": await create(
                engine, shop, await reward_body(sapi, price=1_001)
            ),
        }
        before = await redemption_count(engine, shop)
        for reason, key in keys.items():
            error = await refused(engine, shop, key, member)
            assert error.extra["reason"] == reason, (reason, error.detail)
            expected = (
                InsufficientBalance if reason == "insufficient_balance" else RewardUnavailable
            )
            assert isinstance(error, expected)
        assert await available(sapi, member) == 1_000
        assert await redemption_count(engine, shop) == before
        assert await stock_of(engine, shop, keys["out_of_stock"]) == 0
        assert await topics(engine, member) == []
    # The window opens and the member may take it; the ended one stays shut.
    with clock.frozen(T0 + timedelta(hours=1)):
        made, _ = await redeem(engine, shop, keys["not_yet_available"], member)
        assert made.status == "issued"
    await assert_ledger_sound(engine, shop)


async def test_a_blocked_member_cannot_redeem(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, price=0))
    member = await new_member(sapi, points=100)
    assert (await sapi.post(f"/v1/members/{member}/block", {"reason": "x"})).status_code == 200
    error = await refused(engine, shop, key, member)
    assert isinstance(error, MemberBlocked) and error.extra["reason"] == "member_blocked"


async def test_per_member_limit_and_its_slot_coming_back_on_cancel(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, per_member_limit=1, price=100))
    member = await new_member(sapi, points=1_000)
    made, _ = await redeem(engine, shop, key, member)
    error = await refused(engine, shop, key, member)
    assert error.extra["reason"] == "limit_reached" and error.field == "member"
    async with transaction(engine) as conn:
        await redemption_service.cancel(conn, shop, made.id, "changed mind", clock.now())
    again, _ = await redeem(engine, shop, key, member)
    assert again.status == "issued"
    assert await available(sapi, member) == 900


async def test_tier_prices_follow_the_members_tier(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(
        engine, shop, await reward_body(sapi, price=500, tier_prices={"silver": 400, "vip": 100})
    )
    paid = {}
    for tier in ("base", "silver", "gold", "vip"):
        member = await new_member(sapi, points=1_000, tier=None if tier == "base" else tier)
        made, _ = await redeem(engine, shop, key, member)
        paid[tier] = made.price
        assert made.details and made.details["tier"] == tier
    assert paid == {"base": 500, "silver": 400, "gold": 400, "vip": 100}


async def test_a_manual_tier_that_has_ended_no_longer_opens_exclusive_rewards(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, min_tier="gold"))
    member = await new_member(sapi, points=1_000)
    until = (clock.now() + timedelta(days=1)).isoformat()
    manual = {"tier": "gold", "reason": "trial", "until": until}
    assert (await sapi.post(f"/v1/members/{member}/tier/manual", manual)).status_code == 200
    with clock.frozen(clock.now() + timedelta(days=2)):
        error = await refused(engine, shop, key, member)
    assert error.extra["reason"] == "tier_too_low"
    made, _ = await redeem(engine, shop, key, member)
    assert made.details and made.details["tier"] == "gold"


# -- pools ------------------------------------------------------------------------------------


async def test_pool_codes_are_claimed_once_each(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, "digital", code_source="pool"))
    async with transaction(engine) as conn:
        added = await reward_service.add_codes(
            conn, shop, key, CodesAdd(codes=["A-1", "A-2"]), clock.now()
        )
    assert (added.added, added.available) == (2, 2)
    with pytest.raises(InvalidInput, match="blank"):
        async with transaction(engine) as conn:
            await reward_service.add_codes(conn, shop, key, CodesAdd(codes=["  "]), clock.now())
    members = [await new_member(sapi, points=300) for _ in range(3)]
    codes = [str((await redeem(engine, shop, key, m))[0].code) for m in members[:2]]
    assert sorted(codes) == ["A-1", "A-2"]
    error = await refused(engine, shop, key, members[2])
    assert error.extra["reason"] == "out_of_stock"
    assert await available(sapi, members[2]) == 300


# -- cancelling -------------------------------------------------------------------------------


async def test_cancel_refunds_the_points_to_their_lots_and_restocks(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, "charity", price=600, stock=4))
    member = await new_member(sapi, points=1_000)
    made, _ = await redeem(engine, shop, key, member)
    assert await stock_of(engine, shop, key) == 3
    async with transaction(engine) as conn:
        done = await redemption_service.cancel(conn, shop, made.id, None, clock.now())
    assert done.status == "cancelled" and done.balance and done.balance.available == 1_000
    assert await stock_of(engine, shop, key) == 4
    async with reading(engine) as conn:
        spend = (
            await conn.execute(
                select(ledger_redemptions_t.c.status).where(
                    ledger_redemptions_t.c.id == made.ledger_redemption_id
                )
            )
        ).scalar_one()
        history = await ledger_service.history(conn, UUID(member), limit=1, before=None)
    assert spend == "refunded"
    assert history[0][0].kind == "refund"
    assert history[0][0].reason == f"reward {key} cancelled (redemption {made.id})"
    # Cancelling again changes nothing; fulfilling a cancelled one is a conflict.
    async with transaction(engine) as conn:
        again = await redemption_service.cancel(conn, shop, made.id, None, clock.now())
    assert again.cancelled_at == done.cancelled_at
    with pytest.raises(Conflict, match="cancelled"):
        async with transaction(engine) as conn:
            await redemption_service.fulfil(conn, shop, made.id, None, clock.now())
    assert await available(sapi, member) == 1_000
    assert await topics(engine, member) == ["reward.redeemed", "reward.cancelled"]
    await assert_ledger_sound(engine, shop)


async def test_a_free_reward_cancels_without_the_ledger(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, "event", price=0, stock=1))
    member = await new_member(sapi)
    made, _ = await redeem(engine, shop, key, member)
    assert made.ledger_redemption_id is None and made.price == 0
    async with transaction(engine) as conn:
        done = await redemption_service.cancel(conn, shop, made.id, None, clock.now())
    assert done.status == "cancelled"
    assert await stock_of(engine, shop, key) == 1


async def test_cancel_after_a_return_clawed_back_the_points_pays_the_debt_first(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, price=800))
    body = {"name": "Returner", "external_id": "ret-1"}
    member = (await sapi.post("/v1/members", body)).json()["id"]
    purchase = {
        "member": {"external_id": "ret-1"},
        "external_id": "buy-1",
        "occurred_at": clock.now().isoformat(),
        "total": 100_000,
        "currency": "RUB",
    }
    assert (await sapi.post("/v1/purchases", purchase)).status_code == 201
    made, _ = await redeem(engine, shop, key, member)
    returned = {
        "external_id": "ret-1",
        "purchase_external_id": "buy-1",
        "occurred_at": clock.now().isoformat(),
    }
    assert (await sapi.post("/v1/returns", returned)).status_code == 201
    assert await available(sapi, member) == -800
    async with transaction(engine) as conn:
        done = await redemption_service.cancel(conn, shop, made.id, None, clock.now())
    assert done.balance and done.balance.available == 0
    await assert_ledger_sound(engine, shop)


async def test_unknown_redemptions_and_members(engine: AsyncEngine, shop: ProgramContext) -> None:
    missing = UUID("00000000-0000-7000-8000-000000000000")
    with pytest.raises(NotFound):
        async with transaction(engine) as conn:
            await redemption_service.cancel(conn, shop, missing, None, clock.now())
    with pytest.raises(NotFound):
        async with reading(engine) as conn:
            await redemption_service.history(conn, shop, missing, limit=10, before=None)


# -- idempotency ------------------------------------------------------------------------------


async def test_external_ids_and_idempotency_keys_record_a_redemption_once(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    key = await create(engine, shop, await reward_body(sapi, "digital", stock=5))
    member = await new_member(sapi, points=1_000)
    first, replayed = await redeem(engine, shop, key, member, external_id="e-1")
    again, replayed_again = await redeem(engine, shop, key, member, external_id="e-1")
    assert (replayed, replayed_again) == (False, True)
    assert again == first
    by_header, _ = await redeem(engine, shop, key, member, idempotency_key="h-1")
    retried, replayed = await redeem(engine, shop, key, member, idempotency_key="h-1")
    assert replayed and retried.id == by_header.id and retried.external_id is None
    other = await create(engine, shop, await reward_body(sapi))
    with pytest.raises(IdempotencyConflict):
        await redeem(engine, shop, other, member, external_id="e-1")
    assert await available(sapi, member) == 400
    assert await stock_of(engine, shop, key) == 3
    assert await redemption_count(engine, shop) == 2


# -- the catalog ------------------------------------------------------------------------------


async def test_a_members_catalog_and_a_members_view_of_one_reward(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    pooled = await create(engine, shop, await reward_body(sapi, "digital", code_source="pool"))
    shown = await create(engine, shop, await reward_body(sapi, price=100, category="fun"))
    gold = await create(engine, shop, await reward_body(sapi, min_tier="gold", category="fun"))
    member = await new_member(sapi, points=150)
    async with reading(engine) as conn:
        page = await reward_service.catalog(
            conn,
            shop,
            member_id=UUID(member),
            affordable=True,
            category=None,
            status=None,
            limit=10,
            cursor=None,
            now=clock.now(),
        )
        view = await reward_service.get(conn, shop, pooled, UUID(member), clock.now())
        gold_view = await reward_service.get(conn, shop, gold, UUID(member), clock.now())
    assert [item.key for item in page.items] == [shown]
    assert page.items[0].member_price == 100 and page.items[0].can_redeem
    assert (view.can_redeem, view.reason, view.codes_available) == (False, "out_of_stock", 0)
    assert gold_view.reason == "tier_too_low"


# -- loading a catalog ------------------------------------------------------------------------


async def load(
    engine: AsyncEngine, program: ProgramContext, rows: list[tuple[int, dict[str, Any]]]
) -> Any:
    async with transaction(engine) as conn:
        return await reward_service.load(conn, program, rows, clock.now())


async def test_load_creates_and_updates_by_key_and_keeps_the_live_stock(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    coupon = await reward_body(sapi, "free_delivery")
    rows: list[tuple[int, dict[str, Any]]] = [
        (2, {"key": "l-mug", "name": "Mug", "kind": "physical", "price": 300, "stock": 2}),
        (5, {"key": "l-ship", "name": "Free delivery", "kind": "free_delivery", "price": 100,
             "coupon_campaign": coupon["coupon_campaign"]}),
        (9, {"key": "l-gold", "name": "Gold lounge", "kind": "event", "price": "250",
             "min_tier": "gold", "tier_prices": {"vip": "0"}}),
    ]  # fmt: skip
    report = await load(engine, shop, rows)
    assert (report.created, report.updated, report.errors) == (
        ["l-mug", "l-ship", "l-gold"],
        [],
        [],
    )
    member = await new_member(sapi, points=1_000)
    await redeem(engine, shop, "l-mug", member)
    reloaded = await load(
        engine, shop, [(2, {"key": "l-mug", "name": "Mug (blue)", "kind": "physical"})]
    )
    assert (reloaded.created, reloaded.updated) == ([], ["l-mug"])
    async with reading(engine) as conn:
        mug = await reward_service.get(conn, shop, "l-mug", None, clock.now())
        vip = await reward_service.get(conn, shop, "l-gold", None, clock.now())
    assert (mug.name, mug.price, mug.stock) == ("Mug (blue)", 300, 1)
    assert (vip.price, vip.tier_prices) == (250, {"vip": 0})


async def test_load_reports_every_bad_row_with_its_line_and_writes_nothing(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    await create(engine, shop, await reward_body(sapi, key="b-existing", price=10))
    rows: list[tuple[int, dict[str, Any]]] = [
        (2, {"key": "b-good", "name": "Good", "kind": "physical", "price": 1}),
        (3, {"key": "b-bad-price", "name": "Bad", "kind": "physical", "price": "lots"}),
        (4, {"key": "b-tier", "name": "T", "kind": "physical", "price": 1, "min_tier": "zinc"}),
        (5, {"key": "b-good", "name": "Again", "kind": "physical", "price": 1}),
        (6, {"key": "b-existing", "kind": "event"}),
        (7, {"key": "b-coupon", "name": "C", "kind": "discount_coupon", "price": 1,
             "coupon_campaign": "nope"}),
        (8, {"name": "No key", "kind": "physical", "price": 1}),
        (9, {"key": "b-existing", "price": 99}),
    ]  # fmt: skip
    report = await load(engine, shop, rows)
    assert report.created == [] and report.updated == []
    lines = {line: message for line, message in report.errors}
    assert sorted(lines) == [3, 4, 5, 6, 7, 8]
    assert lines[3].startswith("price:")
    assert "zinc" in lines[4]
    assert lines[5] == "key 'b-good' is already on line 2"
    assert "kind cannot change" in lines[6]
    assert "no coupon campaign 'nope'" in lines[7]
    assert lines[8].startswith("key:")
    async with reading(engine) as conn:
        with pytest.raises(NotFound):
            await reward_service.get(conn, shop, "b-good", None, clock.now())
        existing = await reward_service.get(conn, shop, "b-existing", None, clock.now())
    assert existing.price == 10
