"""Recommendations on SQLite and PostgreSQL: a build from purchases through the API, a
member's items with their reasons, the filters, the worker's job and the CLI-less paths,
and the endpoint's refusals."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.recommendations.service import recommendation_service
from kopilka.recommendations.tasks import build_program
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, unique

NOW = datetime(2032, 6, 1, 12, 0, tzinfo=UTC)
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 10_000_000}},
    ],
    "window": {"kind": "rolling", "months": 12},
}
ITEMS = {
    "LATTE": "coffee",
    "BEANS": "coffee",
    "ESPRESSO": "coffee",
    "CAKE": "bakery",
    "BREAD": "bakery",
    "MILK": "dairy",
}


async def member(api: Api) -> dict[str, Any]:
    body = member_body()
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return response.json() | {"external_id": body["external_id"]}


async def buy(api: Api, who: dict[str, Any], skus: list[str], days_ago: int) -> None:
    at = NOW - timedelta(days=days_ago)
    body = {
        "member": {"external_id": who["external_id"]},
        "external_id": unique("p"),
        "occurred_at": at.isoformat(),
        "store": "store-01",
        "channel": "pos",
        "currency": "RUB",
        "lines": [
            {
                "sku": sku,
                "name": sku.title(),
                "category": ITEMS[sku],
                "quantity": 1,
                "unit_price": 10_000,
                "discount": 0,
            }
            for sku in skus
        ],
        "total": 10_000 * len(skus),
    }
    with clock.frozen(at):
        response = await api.post("/v1/purchases", body)
    assert response.status_code in (200, 201), response.text


async def shop(api: Api) -> dict[str, Any]:
    """Five members buy latte with cake, two latte with beans; Anna bought milk every week
    and latte last; espresso is the coffee most members bought."""
    for _ in range(5):
        await buy(api, await member(api), ["LATTE", "CAKE", "ESPRESSO"], 40)
    for _ in range(2):
        await buy(api, await member(api), ["LATTE", "BEANS", "ESPRESSO"], 40)
    anna = await member(api)
    for days in (22, 15, 8):
        await buy(api, anna, ["MILK"], days)
    await buy(api, anna, ["LATTE"], 2)
    return anna


async def test_build_then_a_members_recommendations_with_reasons(
    engine: AsyncEngine, api: Api
) -> None:
    anna = await shop(api)
    with clock.frozen(NOW):
        before = await api.get(f"/v1/members/{anna['id']}/recommendations")
    assert before.status_code == 200, before.text
    # Never built: the refill alone (it needs no model).
    assert before.json()["built_at"] is None
    assert [(i["sku"], i["reason"]) for i in before.json()["items"]] == [("MILK", "refill")]

    with clock.frozen(NOW):
        built = await api.post("/v1/recommendations/build")
    assert built.status_code == 200, built.text
    assert (built.json()["members"], built.json()["items"]) == (8, 5)
    model = (await api.get("/v1/recommendations/model")).json()
    assert model["build"]["id"] == built.json()["id"]

    with clock.frozen(NOW):
        got = await api.get(f"/v1/members/{anna['id']}/recommendations", limit=10)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["built_at"] is not None and body["member_id"] == anna["id"]
    items = [(i["sku"], i["reason"]) for i in body["items"]]
    # In turn: the refill; bought with latte (espresso by all seven, cake by five); new in
    # a favourite category (dairy has only milk; coffee's espresso is taken, then beans).
    assert items == [
        ("MILK", "refill"),
        ("ESPRESSO", "bought_with"),
        ("CAKE", "bought_with"),
        ("BEANS", "new_in_category"),
    ]
    assert body["items"][0]["usual_days"] == 7 and body["items"][0]["days_since"] == 8
    bought_with = [i for i in body["items"] if i["reason"] == "bought_with"]
    assert all(i["related"] == ["LATTE"] for i in bought_with)
    scores = [i["score"] for i in bought_with]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] < scores[0] <= 1
    assert "LATTE" not in {sku for sku, _ in items}  # bought: never "bought with"
    assert len(items) == len({sku for sku, _ in items})

    short = await api.get(f"/v1/members/{anna['id']}/recommendations", limit=2)
    assert len(short.json()["items"]) == 2

    # Out of stock: left out; the list is as before without it.
    put = await api.put("/v1/recommendations/availability/CAKE", {"available": False})
    assert put.status_code == 200, put.text
    with clock.frozen(NOW):
        without = (await api.get(f"/v1/members/{anna['id']}/recommendations")).json()
    assert "CAKE" not in [i["sku"] for i in without["items"]]
    listed = (await api.get("/v1/recommendations/availability")).json()["items"]
    assert listed == [{"sku": "CAKE", "available": False, "tiers": None}]
    assert (await api.delete("/v1/recommendations/availability/CAKE")).status_code == 204
    assert (await api.delete("/v1/recommendations/availability/CAKE")).status_code == 404
    with clock.frozen(NOW):
        again = (await api.get(f"/v1/members/{anna['id']}/recommendations")).json()
    assert "CAKE" in [i["sku"] for i in again["items"]]


async def test_items_kept_for_a_tier_and_the_worker_job(engine: AsyncEngine, api: Api) -> None:
    program = await make_program(engine, tiers=LADDER)
    own = Api(api.client, await make_key(engine, program, "admin"))
    anna = await shop(own)
    with clock.frozen(NOW):
        build = await build_program(engine, program.id, NOW)
    assert build.items == 5 and build.neighbours > 0

    refused = await own.put(
        "/v1/recommendations/availability/BEANS", {"available": True, "tiers": ["platinum"]}
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "tiers.0"
    empty = await own.put(
        "/v1/recommendations/availability/BEANS", {"available": True, "tiers": []}
    )
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "tiers"
    kept = await own.put(
        "/v1/recommendations/availability/BEANS", {"available": True, "tiers": ["gold"]}
    )
    assert kept.status_code == 200 and kept.json()["tiers"] == ["gold"]
    with clock.frozen(NOW):
        base = (await own.get(f"/v1/members/{anna['id']}/recommendations")).json()
    assert "BEANS" not in [i["sku"] for i in base["items"]]  # Anna is on the base tier
    gold = await own.post(
        f"/v1/members/{anna['id']}/tier/manual", {"tier": "gold", "reason": "test"}
    )
    assert gold.status_code in (200, 201), gold.text
    with clock.frozen(NOW):
        now_gold = (await own.get(f"/v1/members/{anna['id']}/recommendations")).json()
    assert "BEANS" in [i["sku"] for i in now_gold["items"]]

    # A second build replaces the model, never adds to it.
    async with transaction(engine) as conn:
        again = await recommendation_service.build(conn, program, NOW + timedelta(days=1))
    assert again.neighbours == build.neighbours
    async with reading(engine) as conn:
        assert (await recommendation_service.model(conn, program)).build.id == again.id  # type: ignore[union-attr]


async def test_another_programs_member_and_bad_input(engine: AsyncEngine, api: Api) -> None:
    anna = await member(api)
    other = Api(api.client, await make_key(engine, await make_program(engine), "admin"))
    missing = await other.get(f"/v1/members/{anna['id']}/recommendations")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    for bad in ("0", "51", "ten", "1.5"):
        refused = await api.get(f"/v1/members/{anna['id']}/recommendations", limit=bad)
        assert refused.status_code == 422, bad
        assert str(refused.json()["errors"][0]["field"]).endswith("limit")
    assert (await api.get("/v1/members/not-a-uuid/recommendations")).status_code == 422
    for body, field in (
        ({"available": "false"}, "available"),
        ({}, "available"),
        ({"available": True, "colour": 1}, "colour"),
        ({"available": True, "tiers": ["gold"]}, "tiers.0"),
    ):
        refused = await api.put("/v1/recommendations/availability/X", body)
        assert refused.status_code == 422, (body, refused.text)
        assert str(refused.json()["errors"][0]["field"]).endswith(field), refused.json()
    assert (await api.get("/v1/recommendations/availability")).json()["items"] == []
    pos = Api(api.client, await make_key(engine, await make_program(engine), "pos"))
    assert (await pos.post("/v1/recommendations/build")).status_code == 403
