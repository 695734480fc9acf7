"""Benefits that work: listed, granted idempotently, applied at the till (quote and
purchase), marked used once, expiring by the clock; the tier's discount on the check."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {
            "id": "gold",
            "name": "Gold",
            "qualify": {"spend": 10_000_000},
            "benefits": {"discount_percent": 7, "free_delivery": True},
        },
    ],
    "window": {"kind": "rolling", "months": 12},
}


def field_of(response: Any) -> str:
    """The field a problem names (all of them, joined, for a validation error)."""
    return " ".join(str(e.get("field")) for e in response.json().get("errors", []))


async def new_member(api: Api) -> tuple[str, str]:
    body = member_body()
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return response.json()["id"], body["external_id"]


async def grant(api: Api, member_id: str, key: str, kind: str, **extra: Any) -> dict[str, Any]:
    body = {"kind": kind, "grant_key": key, **extra}
    response = await api.post(f"/v1/members/{member_id}/benefits", body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def buy(external_id: str, total: int = 10_000, **extra: Any) -> dict[str, Any]:
    return purchase_body(external_id, total, occurred_at=T.isoformat(), **extra)


async def listed(api: Api, member_id: str, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/v1/members/{member_id}/benefits", **params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_boost_is_used_once_and_a_retry_uses_no_second(api: Api) -> None:
    with clock.frozen(T):
        member_id, external = await new_member(api)
        first = await grant(
            api, member_id, "b1", "boost", payload={"factor_percent": 200}, title="Double"
        )
        second = await grant(
            api,
            member_id,
            "b2",
            "boost",
            payload={"factor_percent": 300},
            expires_at=(T + timedelta(days=30)).isoformat(),
        )
        assert first["status"] == "active" and first["source"] == "staff"
        body = buy(external)
        quote = (await api.post("/v1/purchases/quote", body)).json()
        # The soonest-ending boost: the second (the first never ends). 100 points → ×3.
        assert quote["points_earned"] == 300
        [applied] = quote["applied_benefits"]
        assert applied["id"] == second["id"] and applied["amount"] == 200
        assert (await listed(api, member_id, status="active"))["items"][0]["status"] == "active"

        response = await api.post("/v1/purchases", body)
        assert response.status_code == 201, response.text
        result = response.json()
        assert result["points_earned"] == 300
        assert [a["id"] for a in result["applied_benefits"]] == [second["id"]]
        retry = await api.post("/v1/purchases", body)
        assert retry.json() == result

        used = (await listed(api, member_id, status="used"))["items"]
        assert [(u["id"], u["used_by"]) for u in used] == [(second["id"], result["id"])]
        active = (await listed(api, member_id, status="active"))["items"]
        assert [a["id"] for a in active] == [first["id"]]
        # The next purchase takes the other boost.
        nxt = (await api.post("/v1/purchases", buy(external))).json()
        assert nxt["points_earned"] == 200
        assert (await listed(api, member_id, status="active"))["items"] == []


async def test_grants_are_idempotent_by_key(api: Api) -> None:
    with clock.frozen(T):
        member_id, _ = await new_member(api)
        first = await grant(api, member_id, "k", "free_sample", payload={"sku": "TEA-1"})
        again = await grant(api, member_id, "k", "free_sample", payload={"sku": "TEA-1"})
        assert again["id"] == first["id"]
        other = await api.post(
            f"/v1/members/{member_id}/benefits",
            {"kind": "free_sample", "grant_key": "k", "payload": {"sku": "TEA-2"}},
        )
        assert other.status_code == 409 and field_of(other) == "grant_key"
        assert len((await listed(api, member_id))["items"]) == 1


async def test_listing_pages_and_filters_by_status_and_expiry(api: Api) -> None:
    member_id, external = await new_member(api)
    for n in range(5):
        with clock.frozen(T + timedelta(minutes=n)):
            await grant(
                api,
                member_id,
                f"g{n}",
                "free_delivery",
                expires_at=(T + timedelta(days=n + 1)).isoformat(),
            )
    with clock.frozen(T + timedelta(days=2, hours=1)):
        page = await listed(api, member_id, limit=2)
        assert len(page["items"]) == 2 and page["next_cursor"]
        rest = await listed(api, member_id, limit=2, cursor=page["next_cursor"])
        last = await listed(api, member_id, limit=2, cursor=rest["next_cursor"])
        keys = [i["source_key"] for i in page["items"] + rest["items"] + last["items"]]
        assert keys == ["g4", "g3", "g2", "g1", "g0"]
        assert last["next_cursor"] is None
        # g0 ended after a day, g1 after two: expired now, and not applied.
        expired = await listed(api, member_id, status="expired")
        assert sorted(i["source_key"] for i in expired["items"]) == ["g0", "g1"]
        assert {i["status"] for i in expired["items"]} == {"expired"}
        later = T + timedelta(days=2, hours=1)
        result = (
            await api.post(
                "/v1/purchases", purchase_body(external, 5_000, occurred_at=later.isoformat())
            )
        ).json()
        [applied] = result["applied_benefits"]
        assert applied["source_key"] == "g2" and result["free_delivery"] is True
        assert [
            i["source_key"] for i in (await listed(api, member_id, status="used"))["items"]
        ] == ["g2"]


async def test_samples_and_delivery_at_the_till(api: Api) -> None:
    with clock.frozen(T):
        member_id, external = await new_member(api)
        await grant(api, member_id, "s", "free_sample", payload={"sku": "TEA-1", "name": "Tea"})
        quote = (await api.post("/v1/purchases/quote", buy(external))).json()
        assert [a["payload"]["sku"] for a in quote["applied_benefits"]] == ["TEA-1"]
        assert quote["free_delivery"] is False and quote["discount"] is None
        result = (await api.post("/v1/purchases", buy(external))).json()
        assert [a["kind"] for a in result["applied_benefits"]] == ["free_sample"]
        again = (await api.post("/v1/purchases", buy(external))).json()
        assert again["applied_benefits"] == []


async def test_the_tier_discount_in_quote_and_purchase(engine: AsyncEngine, api: Api) -> None:
    program = await make_program(engine, tiers=LADDER)
    tapi = Api(api.client, await make_key(engine, program, "admin"))
    with clock.frozen(T):
        member_id, external = await new_member(tapi)
        manual = {"tier": "gold", "reason": "test"}
        assert (await tapi.post(f"/v1/members/{member_id}/tier/manual", manual)).status_code == 200
        # A personal free delivery is kept: the tier already gives it.
        await grant(tapi, member_id, "d", "free_delivery")
        body = buy(external, 10_099)
        quote = (await tapi.post("/v1/purchases/quote", body)).json()
        # 7 % of 100.99 roubles is 706.93 kopecks: rounded down.
        assert quote["discount"] == {"source": "tier", "percent": 7, "base": 10_099, "amount": 706}
        assert quote["free_delivery"] is True
        assert [(a["kind"], a["source"]) for a in quote["applied_benefits"]] == [
            ("discount", "tier"),
            ("free_delivery", "tier"),
        ]
        result = (await tapi.post("/v1/purchases", body)).json()
        assert result["discount"] == quote["discount"]
        page = await listed(tapi, member_id)
        assert page["tier"]["tier"] == "gold" and page["tier"]["discount_percent"] == 7
        assert [i["status"] for i in page["items"]] == ["active"]
        # Without a tier discount, nothing.
        _, plain_external = await new_member(tapi)
        quote = (await tapi.post("/v1/purchases/quote", buy(plain_external))).json()
        assert quote["discount"] is None and quote["applied_benefits"] == []


async def test_bad_input_names_the_field(api: Api) -> None:
    member_id, _ = await new_member(api)
    path = f"/v1/members/{member_id}/benefits"
    cases = [
        (
            {"kind": "boost", "grant_key": "x", "payload": {"factor_percent": "200"}},
            "factor_percent",
        ),
        (
            {"kind": "boost", "grant_key": "x", "payload": {"factor_percent": True}},
            "factor_percent",
        ),
        ({"kind": "boost", "grant_key": "x", "payload": {"factor_percent": 100}}, "factor_percent"),
        ({"kind": "free_sample", "grant_key": "x", "payload": {}}, "sku"),
        ({"kind": "free_delivery", "grant_key": "x", "payload": {"x": 1}}, "payload.x"),
        ({"kind": "cash", "grant_key": "x"}, "kind"),
        ({"kind": "free_delivery"}, "grant_key"),
    ]
    for body, field in cases:
        response = await api.post(path, body)
        assert response.status_code == 422, (body, response.text)
        assert field in field_of(response), (body, response.json())
    bad = await api.get(path, status="gone")
    assert bad.status_code == 422 and "status" in field_of(bad)
    assert (await listed(api, member_id))["items"] == []


async def test_another_programs_key_sees_nothing(engine: AsyncEngine, api: Api) -> None:
    with clock.frozen(T):
        member_id, _ = await new_member(api)
        benefit = await grant(api, member_id, "k", "free_delivery")
        other = await make_program(engine)
        oapi = Api(api.client, await make_key(engine, other, "admin"))
        assert (await oapi.get(f"/v1/members/{member_id}/benefits")).status_code == 404
        assert (await oapi.get(f"/v1/benefits/{benefit['id']}")).status_code == 404
        response = await oapi.post(
            f"/v1/members/{member_id}/benefits", {"kind": "free_delivery", "grant_key": "k"}
        )
        assert response.status_code == 404


async def test_a_purchase_dated_before_a_boost_was_given_does_not_use_it(api: Api) -> None:
    """An offline till's purchase sent late, dated before the offer existed."""
    with clock.frozen(T):
        member_id, external = await new_member(api)
        boost = await grant(api, member_id, "late", "boost", payload={"factor_percent": 200})
        earlier = purchase_body(external, 10_000, occurred_at=(T - timedelta(hours=1)).isoformat())
        first = (await api.post("/v1/purchases", earlier)).json()
        assert first["points_earned"] == 100 and first["applied_benefits"] == []
        later = purchase_body(external, 10_000, occurred_at=(T + timedelta(hours=1)).isoformat())
        second = (await api.post("/v1/purchases", later)).json()
        assert second["points_earned"] == 200
        assert [a["id"] for a in second["applied_benefits"]] == [boost["id"]]
