"""The rewards shop over HTTP, on SQLite and PostgreSQL: the catalog, every kind redeemed,
every refusal as problem+json, idempotency, history, fulfil and cancel, scopes."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.rewards.domain import KINDS
from tests.conftest import Api, make_key
from tests.purchases.test_endpoints import assert_ledger_sound
from tests.rewards.conftest import (
    available,
    new_member,
    new_reward,
    redemption_count,
    reward_body,
    stock_of,
    topics,
)

PROBLEM = "application/problem+json"


async def redeem(api: Api, key: str, member_id: str, **extra: Any) -> Any:
    headers = extra.pop("headers", {})
    return await api.post(
        f"/v1/rewards/{key}/redemptions", {"member": {"id": member_id}, **extra}, **headers
    )


# -- the catalog ------------------------------------------------------------------------------


async def test_create_read_and_archive_a_reward(sapi: Api) -> None:
    body = await reward_body(
        sapi,
        "physical",
        description="A mug with the logo",
        image_url="https://cdn.example/mug.png",
        stock=5,
        per_member_limit=1,
        attributes={"colour": "blue"},
    )
    created = await sapi.post("/v1/rewards", body)
    assert created.status_code == 201, created.text
    reward = created.json()
    assert {k: reward[k] for k in body} == body
    assert reward["status"] == "active" and reward["currency"] == "points"
    assert reward["can_redeem"] is None  # no member asked about
    assert (await sapi.get(f"/v1/rewards/{body['key']}")).json() == reward

    archived = await sapi.patch(f"/v1/rewards/{body['key']}", {"status": "archived"})
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    assert archived.json()["stock"] == 5


async def test_bad_definitions_are_problems_naming_the_field(sapi: Api, api: Api) -> None:
    body = await reward_body(sapi)
    assert (await sapi.post("/v1/rewards", body)).status_code == 201
    again = await sapi.post("/v1/rewards", body)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["errors"] == [
        {"field": "key", "message": f"reward {body['key']!r} already exists"}
    ]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "voucher"}, "kind"),
        ({"price": -1}, "price"),
        ({"min_tier": "platinum"}, "min_tier"),
        ({"tier_prices": {"gold": 100, "diamond": 50}}, "tier_prices.diamond"),
        ({"currency": "miles"}, "currency"),
        ({"kind": "discount_coupon"}, "coupon_campaign"),
        ({"kind": "free_product", "coupon_campaign": "no-such"}, "coupon_campaign"),
        ({"kind": "gift_certificate"}, "gift_amount"),
        ({"kind": "digital", "code_pattern": "X#"}, "code_pattern"),
        ({"available_from": "2026-01-01T00:00:00"}, "available_from"),
        (
            {
                "available_from": "2026-02-01T00:00:00Z",
                "available_until": "2026-01-01T00:00:00Z",
            },
            "available_until",
        ),
    ]
    for change, field in cases:
        response = await sapi.post("/v1/rewards", await reward_body(sapi) | change)
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == field, change
    # A program without a ladder cannot have tier prices or exclusive rewards.
    no_ladder = await api.post("/v1/rewards", await reward_body(api, min_tier="gold"))
    assert no_ladder.status_code == 422
    assert "no tier ladder" in no_ladder.json()["detail"]
    missing = await sapi.patch("/v1/rewards/nope", {"price": 1})
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    cleared = await sapi.patch(f"/v1/rewards/{body['key']}", {"price": None})
    assert cleared.status_code == 422 and cleared.json()["errors"][0]["field"] == "price"
    kind = await sapi.patch(f"/v1/rewards/{body['key']}", {"kind": "event"})
    assert kind.status_code == 422


async def test_a_members_catalog_shows_what_they_can_see_at_their_price(sapi: Api) -> None:
    now = clock.now()
    rewards = {
        "open": await new_reward(sapi, price=300, category="home"),
        "dear": await new_reward(sapi, price=5_000, category="home"),
        "gold": await new_reward(sapi, min_tier="gold", price=100),
        "silver": await new_reward(sapi, tier_prices={"silver": 200}, price=400),
        "sold": await new_reward(sapi, stock=0),
        "soon": await new_reward(sapi, available_from=(now + timedelta(days=3)).isoformat()),
        "past": await new_reward(sapi, available_until=(now - timedelta(days=1)).isoformat()),
        "gone": await new_reward(sapi, status="archived"),
        "once": await new_reward(sapi, per_member_limit=1, price=10),
    }
    keys = {name: reward["key"] for name, reward in rewards.items()}
    member = await new_member(sapi, points=1_000, tier="silver")
    assert (await redeem(sapi, keys["once"], member)).status_code == 201

    page = (await sapi.get("/v1/rewards", member_id=member)).json()
    shown = {item["key"]: item for item in page["items"]}
    assert set(shown) == {keys["open"], keys["dear"], keys["silver"], keys["once"]}
    assert shown[keys["silver"]]["member_price"] == 200
    assert shown[keys["open"]]["can_redeem"] is True and shown[keys["open"]]["reason"] is None
    assert shown[keys["dear"]]["can_redeem"] is False
    assert shown[keys["dear"]]["reason"] == "insufficient_balance"
    assert shown[keys["once"]]["reason"] == "limit_reached"
    assert shown[keys["once"]]["member_redeemed"] == 1

    affordable = (await sapi.get("/v1/rewards", member_id=member, affordable="true")).json()
    assert {i["key"] for i in affordable["items"]} == {keys["open"], keys["silver"], keys["once"]}
    home = (await sapi.get("/v1/rewards", member_id=member, category="home")).json()
    assert {i["key"] for i in home["items"]} == {keys["open"], keys["dear"]}

    # One reward explained: why this member cannot take it.
    gold = (await sapi.get(f"/v1/rewards/{keys['gold']}", member_id=member)).json()
    assert (gold["can_redeem"], gold["reason"]) == (False, "tier_too_low")
    assert "gold" in gold["detail"]

    # Without a member: everything, and the status filter.
    everything = (await sapi.get("/v1/rewards")).json()["items"]
    assert {i["key"] for i in everything} == set(keys.values())
    archived = (await sapi.get("/v1/rewards", status="archived")).json()["items"]
    assert [i["key"] for i in archived] == [keys["gone"]]
    assert (await sapi.get("/v1/rewards", affordable="true")).status_code == 422
    unknown = await sapi.get("/v1/rewards", member_id="00000000-0000-7000-8000-000000000000")
    assert unknown.status_code == 404


async def test_the_catalog_pages_through_in_key_order(sapi: Api) -> None:
    member = await new_member(sapi, points=100)
    made = sorted([(await new_reward(sapi, key=f"page-{n:02d}"))["key"] for n in range(7)])
    for params in ({}, {"member_id": member}):
        seen: list[str] = []
        cursor = None
        while True:
            query = params | ({"cursor": cursor} if cursor else {})
            page = (await sapi.get("/v1/rewards", limit=3, **query)).json()
            seen += [item["key"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made
    assert (await sapi.get("/v1/rewards", cursor="!!")).status_code == 422


# -- redeeming every kind ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_redeem_every_kind(
    kind: str, sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    reward = await new_reward(sapi, kind, stock=3)
    member = await new_member(sapi, points=1_000)
    response = await redeem(sapi, reward["key"], member, external_id=f"till-{kind}")
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["kind"] == kind and made["reward_key"] == reward["key"]
    assert (made["price"], made["currency"], made["external_id"]) == (300, "points", f"till-{kind}")
    assert made["balance"]["available"] == 700
    assert made["ledger_redemption_id"] is not None
    if kind in ("physical", "event", "charity"):
        assert made["status"] == "issued" and made["code"] is None
        assert made["fulfilled_at"] is None
    else:
        assert made["status"] == "fulfilled" and made["code"]
        assert made["fulfilled_at"] == made["created_at"]
    if kind == "digital":
        assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", str(made["code"]))
    if kind in ("discount_coupon", "free_product", "free_delivery"):
        coupon = (await sapi.get(f"/v1/coupons/{made['code']}")).json()
        assert coupon["member_id"] == member
        assert made["details"]["coupon_campaign"] == reward["coupon_campaign"]
    if kind == "gift_certificate":
        assert made["details"]["gift_amount"] == 50_000
        card = (await sapi.get(f"/v1/gift-cards/{made['code']}")).json()
        assert (card["balance"], card["member_id"]) == (50_000, member)
    assert await available(sapi, member) == 700
    assert await stock_of(engine, shop, reward["key"]) == 2
    assert await topics(engine, member) == ["reward.redeemed"]
    history = (await sapi.get(f"/v1/members/{member}/reward-redemptions")).json()
    assert [item["id"] for item in history["items"]] == [made["id"]]
    assert (await sapi.get(f"/v1/reward-redemptions/{made['id']}")).json()["code"] == made["code"]
    await assert_ledger_sound(engine, shop)


async def test_tier_prices_exclusive_rewards_and_free_rewards(sapi: Api) -> None:
    vip_only = await new_reward(sapi, min_tier="gold", price=800, tier_prices={"vip": 0})
    member = await new_member(sapi, points=1_000, tier="gold")
    paid = (await redeem(sapi, vip_only["key"], member)).json()
    assert (paid["price"], paid["balance"]["available"], paid["details"]["tier"]) == (
        800,
        200,
        "gold",
    )
    vip = await new_member(sapi, tier="vip")
    free = (await redeem(sapi, vip_only["key"], vip)).json()
    assert free["price"] == 0 and free["ledger_redemption_id"] is None
    assert free["balance"]["available"] == 0
    silver = await new_member(sapi, points=1_000, tier="silver")
    refused = await redeem(sapi, vip_only["key"], silver)
    assert refused.status_code == 409 and refused.json()["reason"] == "tier_too_low"


@pytest.mark.parametrize(
    ("overrides", "member_setup", "status", "reason"),
    [
        ({"status": "archived"}, {}, 409, "archived"),
        ({"available_from": "2999-01-01T00:00:00Z"}, {}, 409, "not_yet_available"),
        ({"available_until": "2001-01-01T00:00:00Z"}, {}, 409, "ended"),
        ({"min_tier": "gold"}, {"tier": "silver"}, 409, "tier_too_low"),
        ({"stock": 0}, {}, 409, "out_of_stock"),
        ({"price": 5_000}, {}, 422, "insufficient_balance"),
        ({}, {"blocked": True}, 403, "member_blocked"),
    ],
)
async def test_each_refusal_is_a_problem_naming_the_reason_and_changes_nothing(
    overrides: dict[str, Any],
    member_setup: dict[str, Any],
    status: int,
    reason: str,
    sapi: Api,
    engine: AsyncEngine,
    shop: ProgramContext,
) -> None:
    reward = await new_reward(sapi, **overrides)
    member = await new_member(sapi, points=1_000, tier=member_setup.get("tier"))
    if member_setup.get("blocked"):
        blocked = await sapi.post(f"/v1/members/{member}/block", {"reason": "fraud"})
        assert blocked.status_code == 200
    before = await redemption_count(engine, shop)
    response = await redeem(sapi, reward["key"], member)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["reason"] == reason
    assert problem["detail"]
    assert await available(sapi, member) == 1_000
    assert await redemption_count(engine, shop) == before
    assert await stock_of(engine, shop, reward["key"]) == overrides.get("stock")
    assert await topics(engine, member) == []


async def test_the_per_member_limit_counts_what_was_not_cancelled(sapi: Api) -> None:
    reward = await new_reward(sapi, per_member_limit=2, price=100)
    member = await new_member(sapi, points=1_000)
    first = (await redeem(sapi, reward["key"], member)).json()
    assert (await redeem(sapi, reward["key"], member)).status_code == 201
    third = await redeem(sapi, reward["key"], member)
    assert third.status_code == 409 and third.json()["reason"] == "limit_reached"
    assert third.json()["errors"][0]["field"] == "member"
    other = await new_member(sapi, points=1_000)
    assert (await redeem(sapi, reward["key"], other)).status_code == 201  # the limit is per member
    cancelled = await sapi.post(f"/v1/reward-redemptions/{first['id']}/cancel", {"reason": "x"})
    assert cancelled.status_code == 200
    assert (await redeem(sapi, reward["key"], member)).status_code == 201
    assert await available(sapi, member) == 800


async def test_unknown_rewards_and_members_are_not_found(sapi: Api) -> None:
    member = await new_member(sapi, points=100)
    assert (await redeem(sapi, "no-such-reward", member)).status_code == 404
    reward = await new_reward(sapi)
    response = await sapi.post(
        f"/v1/rewards/{reward['key']}/redemptions", {"member": {"card": "0000"}}
    )
    assert response.status_code == 404
    bad = await sapi.post(f"/v1/rewards/{reward['key']}/redemptions", {"member": {}})
    assert bad.status_code == 422


# -- digital rewards and their pools ----------------------------------------------------------


async def test_a_digital_pool_hands_out_each_code_once_then_is_out_of_stock(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    reward = await new_reward(sapi, "digital", code_source="pool", price=10)
    assert reward["codes_available"] == 0
    added = await sapi.post(
        f"/v1/rewards/{reward['key']}/codes", {"codes": ["KEY-1", " KEY-2 ", "KEY-1"]}
    )
    assert added.status_code == 201
    assert added.json() == {"added": 2, "duplicates": 1, "available": 2}
    again = await sapi.post(f"/v1/rewards/{reward['key']}/codes", {"codes": ["KEY-2", "KEY-3"]})
    assert again.json() == {"added": 1, "duplicates": 1, "available": 3}
    member = await new_member(sapi, points=100)
    codes = [(await redeem(sapi, reward["key"], member)).json()["code"] for _ in range(3)]
    assert sorted(codes) == ["KEY-1", "KEY-2", "KEY-3"]
    assert (await sapi.get(f"/v1/rewards/{reward['key']}")).json()["codes_available"] == 0
    empty = await redeem(sapi, reward["key"], member)
    assert empty.status_code == 409 and empty.json()["reason"] == "out_of_stock"
    assert await available(sapi, member) == 70
    catalog = (await sapi.get("/v1/rewards", member_id=member)).json()["items"]
    assert reward["key"] not in {item["key"] for item in catalog}
    await assert_ledger_sound(engine, shop)


async def test_generated_codes_follow_the_rewards_pattern(sapi: Api) -> None:
    reward = await new_reward(sapi, "digital", code_pattern="EARLY-######", price=1)
    assert reward["code_source"] == "generated"
    member = await new_member(sapi, points=10)
    codes = {(await redeem(sapi, reward["key"], member)).json()["code"] for _ in range(5)}
    assert len(codes) == 5
    assert all(re.fullmatch(r"EARLY-[A-Z2-9]{6}", code) for code in codes)
    no_pool = await sapi.post(f"/v1/rewards/{reward['key']}/codes", {"codes": ["A"]})
    assert no_pool.status_code == 422


# -- idempotency ------------------------------------------------------------------------------


async def test_a_retry_with_the_same_external_id_gets_the_first_answer(
    sapi: Api, engine: AsyncEngine, shop: ProgramContext
) -> None:
    reward = await new_reward(sapi, "digital", stock=10)
    member = await new_member(sapi, points=1_000)
    first = await redeem(sapi, reward["key"], member, external_id="pos-7/1")
    retry = await redeem(sapi, reward["key"], member, external_id="pos-7/1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert await available(sapi, member) == 700
    assert await stock_of(engine, shop, reward["key"]) == 9
    other = await new_reward(sapi)
    conflict = await redeem(sapi, other["key"], member, external_id="pos-7/1")
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("/idempotency-conflict")
    someone = await new_member(sapi, points=1_000)
    assert (await redeem(sapi, reward["key"], someone, external_id="pos-7/1")).status_code == 409
    assert await redemption_count(engine, shop) == 1


async def test_the_idempotency_key_header_makes_a_retry_safe(sapi: Api) -> None:
    reward = await new_reward(sapi)
    member = await new_member(sapi, points=1_000)
    headers = {"Idempotency-Key": "app-42"}
    first = await redeem(sapi, reward["key"], member, headers=headers)
    retry = await redeem(sapi, reward["key"], member, headers=headers)
    assert retry.json()["id"] == first.json()["id"]
    assert await available(sapi, member) == 700
    # Without a key, each call redeems again.
    assert (await redeem(sapi, reward["key"], member)).json()["id"] != first.json()["id"]
    assert await available(sapi, member) == 400


# -- after the redemption ---------------------------------------------------------------------


async def test_fulfil_and_cancel(sapi: Api, engine: AsyncEngine, shop: ProgramContext) -> None:
    parcel = await new_reward(sapi, "physical", stock=1)
    member = await new_member(sapi, points=1_000)
    made = (await redeem(sapi, parcel["key"], member)).json()
    assert await stock_of(engine, shop, parcel["key"]) == 0
    path = f"/v1/reward-redemptions/{made['id']}"

    cancelled = await sapi.post(f"{path}/cancel", {"reason": "out of size"})
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["cancelled_at"]
    assert body["details"]["cancel_reason"] == "out of size"
    assert body["balance"]["available"] == 1_000
    assert await stock_of(engine, shop, parcel["key"]) == 1
    again = await sapi.post(f"{path}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert await available(sapi, member) == 1_000
    fulfil_cancelled = await sapi.post(f"{path}/fulfil")
    assert fulfil_cancelled.status_code == 409
    assert "cancelled" in fulfil_cancelled.json()["detail"]

    made = (await redeem(sapi, parcel["key"], member)).json()
    path = f"/v1/reward-redemptions/{made['id']}"
    fulfilled = await sapi.post(f"{path}/fulfil", {"note": "parcel RU123"})
    assert fulfilled.status_code == 200
    assert fulfilled.json()["status"] == "fulfilled"
    assert fulfilled.json()["details"]["fulfilment_note"] == "parcel RU123"
    assert (await sapi.post(f"{path}/fulfil")).json()["fulfilled_at"] == fulfilled.json()[
        "fulfilled_at"
    ]
    refused = await sapi.post(f"{path}/cancel")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "a fulfilled redemption cannot be cancelled: it has been handed over"
    )
    assert await available(sapi, member) == 700
    assert await topics(engine, member) == [
        "reward.redeemed",
        "reward.cancelled",
        "reward.redeemed",
        "reward.fulfilled",
    ]
    missing = await sapi.post("/v1/reward-redemptions/00000000-0000-7000-8000-000000000000/cancel")
    assert missing.status_code == 404
    await assert_ledger_sound(engine, shop)


@pytest.mark.parametrize("kind", ["digital", "discount_coupon", "gift_certificate"])
async def test_a_reward_that_handed_out_a_code_cannot_be_cancelled(kind: str, sapi: Api) -> None:
    reward = await new_reward(sapi, kind)
    member = await new_member(sapi, points=1_000)
    made = (await redeem(sapi, reward["key"], member)).json()
    refused = await sapi.post(f"/v1/reward-redemptions/{made['id']}/cancel")
    assert refused.status_code == 409
    assert "cannot be cancelled" in refused.json()["detail"]
    assert refused.json()["redemption_status"] == "fulfilled"
    assert await available(sapi, member) == 700


async def test_cancel_with_an_idempotency_key_replays(sapi: Api) -> None:
    reward = await new_reward(sapi, "event")
    member = await new_member(sapi, points=1_000)
    made = (await redeem(sapi, reward["key"], member)).json()
    path = f"/v1/reward-redemptions/{made['id']}/cancel"
    first = await sapi.post(path, {"reason": "ill"}, **{"Idempotency-Key": "c-1"})
    retry = await sapi.post(path, {"reason": "ill"}, **{"Idempotency-Key": "c-1"})
    assert retry.json() == first.json()
    assert retry.headers.get("Idempotent-Replayed") == "true"
    other = await sapi.post(path, {"reason": "changed"}, **{"Idempotency-Key": "c-1"})
    assert other.status_code == 409
    assert await available(sapi, member) == 1_000


async def test_history_pages_newest_first(sapi: Api) -> None:
    reward = await new_reward(sapi, price=1)
    member = await new_member(sapi, points=100)
    start = datetime(2026, 4, 1, tzinfo=UTC)
    made = []
    for n in range(5):
        with clock.frozen(start + timedelta(minutes=n)):
            made.append((await redeem(sapi, reward["key"], member)).json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        page = (
            await sapi.get(
                f"/v1/members/{member}/reward-redemptions",
                limit=2,
                **({"cursor": cursor} if cursor else {}),
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    missing = await sapi.get("/v1/members/00000000-0000-7000-8000-000000000000/reward-redemptions")
    assert missing.status_code == 404


# -- scopes -----------------------------------------------------------------------------------


async def test_scopes(sapi: Api, engine: AsyncEngine, shop: ProgramContext) -> None:
    pos = Api(sapi.client, await make_key(engine, shop, "pos"))
    partner = Api(sapi.client, await make_key(engine, shop, "partner"))
    analyst = Api(sapi.client, await make_key(engine, shop, "analyst"))
    reward = await new_reward(sapi, "physical")
    member = await new_member(sapi, points=1_000)
    assert (await pos.post("/v1/rewards", await reward_body(sapi))).status_code == 403
    assert (await pos.patch(f"/v1/rewards/{reward['key']}", {"price": 1})).status_code == 403
    assert (await analyst.get("/v1/rewards", member_id=member)).status_code == 200
    assert (await analyst.get(f"/v1/members/{member}/reward-redemptions")).status_code == 200
    assert (await redeem(analyst, reward["key"], member)).status_code == 403
    by_partner = await redeem(partner, reward["key"], member)
    assert by_partner.status_code == 201
    made = (await redeem(pos, reward["key"], member)).json()
    assert (await pos.post(f"/v1/reward-redemptions/{made['id']}/fulfil")).status_code == 403
    assert (await partner.post(f"/v1/reward-redemptions/{made['id']}/cancel")).status_code == 403
    assert (await pos.post(f"/v1/reward-redemptions/{made['id']}/cancel")).status_code == 200


async def test_a_cancel_puts_back_only_an_item_it_took(sapi: Api) -> None:
    body = await reward_body(sapi, "physical")
    assert (await sapi.post("/v1/rewards", body)).status_code == 201
    member = await new_member(sapi, points=10_000)
    redeemed = await redeem(sapi, body["key"], member)
    assert redeemed.status_code == 201, redeemed.text
    counted = await sapi.patch(f"/v1/rewards/{body['key']}", {"stock": 5})
    assert counted.status_code == 200, counted.text
    cancel = await sapi.post(f"/v1/reward-redemptions/{redeemed.json()['id']}/cancel", {})
    assert cancel.status_code == 200, cancel.text
    assert (await sapi.get(f"/v1/rewards/{body['key']}")).json()["stock"] == 5


async def test_an_external_id_reused_for_another_reward_names_the_field(sapi: Api) -> None:
    first, second = await reward_body(sapi, "physical"), await reward_body(sapi, "charity")
    for body in (first, second):
        assert (await sapi.post("/v1/rewards", body)).status_code == 201
    member = await new_member(sapi, points=10_000)
    assert (await redeem(sapi, first["key"], member, external_id="till-1/7")).status_code == 201
    reused = await redeem(sapi, second["key"], member, external_id="till-1/7")
    assert reused.status_code == 409
    assert reused.json()["errors"][0]["field"] == "external_id"
    assert "reward-redemption:" not in reused.json()["detail"]


async def test_a_nul_character_is_bad_input_not_a_server_error(sapi: Api) -> None:
    for path in ("/v1/rewards/a%00b", "/v1/coupons/AB%00CD", "/v1/gift-cards/AB%00CD"):
        response = await sapi.get(path)
        assert response.status_code in (404, 422), (path, response.text)


async def test_an_image_is_a_web_address_never_script_or_inline_data(sapi: Api) -> None:
    for bad in ("javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "ftp://x/y"):
        body = await reward_body(sapi, "physical", image_url=bad)
        refused = await sapi.post("/v1/rewards", body)
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["field"] == "image_url"
        assert (await sapi.get(f"/v1/rewards/{body['key']}")).status_code == 404
