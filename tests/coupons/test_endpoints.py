"""Coupons over HTTP on both databases: campaigns, codes, validation, redemption within a
purchase, returns, codes issued by rules."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique
from tests.purchases.test_endpoints import assert_ledger_sound


def campaign_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "key": unique("camp").lower(),
        "name": "Spring sale",
        "discount": {"kind": "percent", "value": 10},
    }
    body.update(overrides)
    return body


async def new_campaign(api: Api, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/v1/coupon-campaigns", campaign_body(**overrides))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_codes(api: Api, key: str, **body: Any) -> list[str]:
    response = await api.post(f"/v1/coupon-campaigns/{key}/codes", body or {"count": 1})
    assert response.status_code == 201, response.text
    return list(response.json()["codes"])


async def new_member(api: Api) -> dict[str, Any]:
    body = member_body()
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return {**response.json(), "external_id": body["external_id"]}


def basket(member: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """800 ₽: two coffees at 250 ₽ and a cake at 300 ₽."""
    body = purchase_body(
        member["external_id"],
        80_000,
        lines=[
            {"sku": "COF", "category": "coffee", "quantity": 2, "unit_price": 25_000},
            {"sku": "CAKE", "category": "bakery", "quantity": 1, "unit_price": 30_000},
        ],
    )
    body.update(overrides)
    return body


async def test_campaign_is_created_read_listed_and_changed(api: Api) -> None:
    campaign = await new_campaign(
        api,
        min_basket=50_000,
        categories=["coffee"],
        per_member_limit=1,
        valid_until="2030-01-01T00:00:00Z",
    )
    assert campaign["discount"] == {
        "kind": "percent",
        "value": 10,
        "max_discount": None,
        "free_sku": None,
    }
    assert campaign["uses_per_code"] == 1 and campaign["codes"] == 0 and campaign["redeemed"] == 0
    key = campaign["key"]
    assert (await api.get(f"/v1/coupon-campaigns/{key}")).json()["key"] == key
    assert key in [c["key"] for c in (await api.get("/v1/coupon-campaigns")).json()]
    changed = await api.patch(f"/v1/coupon-campaigns/{key}", {"status": "paused"})
    assert changed.status_code == 200 and changed.json()["status"] == "paused"
    again = await api.post("/v1/coupon-campaigns", campaign_body(key=key))
    assert again.status_code == 409
    assert (await api.get("/v1/coupon-campaigns/nope")).status_code == 404


async def test_bad_campaigns_are_refused_naming_the_field(api: Api) -> None:
    bad_percent = await api.post(
        "/v1/coupon-campaigns", campaign_body(discount={"kind": "percent", "value": 150})
    )
    assert bad_percent.status_code == 422
    assert "discount" in bad_percent.text
    no_sku = await api.post(
        "/v1/coupon-campaigns", campaign_body(discount={"kind": "free_product"})
    )
    assert no_sku.status_code == 422 and "free_sku" in no_sku.text
    short = await api.post("/v1/coupon-campaigns", campaign_body(code_pattern="AB-##"))
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "code_pattern"
    window = await api.post(
        "/v1/coupon-campaigns",
        campaign_body(valid_from="2030-01-02T00:00:00Z", valid_until="2030-01-01T00:00:00Z"),
    )
    assert window.status_code == 422
    assert (await api.get("/v1/coupon-campaigns")).json() == []


async def test_codes_are_generated_imported_and_made_personal(api: Api) -> None:
    campaign = await new_campaign(api, code_pattern="SPR-####-####")
    key = campaign["key"]
    generated = await new_codes(api, key, count=500)
    assert len(set(generated)) == 500 and all(c.startswith("SPR-") for c in generated)
    imported = await new_codes(api, key, codes=["legacy-001", "LEGACY-002"])
    assert imported == ["LEGACY-001", "LEGACY-002"]
    clash = await api.post(f"/v1/coupon-campaigns/{key}/codes", {"codes": ["Legacy-001"]})
    assert clash.status_code == 409
    repeated = await api.post(f"/v1/coupon-campaigns/{key}/codes", {"codes": ["X1", "x1"]})
    assert repeated.status_code == 422
    member = await new_member(api)
    personal = await new_codes(api, key, count=1, members=[{"id": member["id"]}])
    mine = (await api.get(f"/v1/members/{member['id']}/coupons")).json()["items"]
    assert [c["code"] for c in mine] == personal
    assert mine[0]["member_id"] == member["id"]
    assert (await api.get(f"/v1/coupon-campaigns/{key}")).json()["codes"] == 503
    page = (await api.get(f"/v1/coupon-campaigns/{key}/codes", limit=200)).json()
    assert len(page["items"]) == 200 and page["next_cursor"]
    rest = await api.get(
        f"/v1/coupon-campaigns/{key}/codes", limit=1000, cursor=page["next_cursor"]
    )
    assert len(rest.json()["items"]) == 303


async def test_a_code_has_a_qr_svg(api: Api) -> None:
    campaign = await new_campaign(api)
    [code] = await new_codes(api, campaign["key"])
    response = await api.get(f"/v1/coupons/{code.lower()}/qr.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(response.text).tag.endswith("svg")
    assert (await api.get("/v1/coupons/NOPE-NOPE/qr.svg")).status_code == 404


async def test_validate_says_what_a_code_takes_off_and_changes_nothing(api: Api) -> None:
    campaign = await new_campaign(api, discount={"kind": "percent", "value": 15})
    [code] = await new_codes(api, campaign["key"])
    member = await new_member(api)
    body = {
        "codes": [code, "NO-SUCH-CODE"],
        "member": {"id": member["id"]},
        "total": 80_000,
        "lines": basket(member)["lines"],
    }
    for _ in range(2):
        result = (await api.post("/v1/coupons/validate", body)).json()
        assert result["valid"] is False
        assert result["discount"] == 12_000 and result["total_after_discount"] == 68_000
        first, second = result["codes"]
        assert first["valid"] and first["discount"] == 12_000 and first["campaign"]
        assert second == {
            "code": "NO-SUCH-CODE",
            "valid": False,
            "reason": "unknown",
            "message": "no such code",
            "campaign": None,
            "kind": None,
            "discount": 0,
            "free_delivery": False,
            "free_sku": None,
        }
    assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 0


async def test_purchase_redeems_a_code_once_and_earns_on_the_money_paid(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    campaign = await new_campaign(api, discount={"kind": "fixed", "value": 20_000})
    [code] = await new_codes(api, campaign["key"])
    member = await new_member(api)
    response = await api.post("/v1/purchases", basket(member, coupon_codes=[code.lower()]))
    assert response.status_code == 201, response.text
    result = response.json()
    payment = result["payment"]
    assert payment["discount"] == 20_000 and payment["paid"] == 60_000
    assert payment["earn_base"] == 60_000
    assert payment["coupons"][0]["code"] == code and payment["coupons"][0]["valid"]
    assert result["points_earned"] == 600  # 1 point per rouble paid, not per 800 ₽ basket
    assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 1
    again = await api.post("/v1/purchases", basket(member, coupon_codes=[code]))
    assert again.status_code == 409
    assert (
        again.json()["errors"][0]["field"] == "coupon_codes.0"
        and again.json()["reason"] == "used_up"
    )
    history = (await api.get(f"/v1/members/{member['id']}/history")).json()["items"]
    assert len(history) == 1  # the refused purchase moved nothing
    assert (await api.get(f"/v1/coupon-campaigns/{campaign['key']}")).json()["redeemed"] == 1
    await assert_ledger_sound(engine, program)


async def test_a_retried_purchase_does_not_use_its_code_twice(api: Api) -> None:
    campaign = await new_campaign(api, uses_per_code=None)
    [code] = await new_codes(api, campaign["key"])
    member = await new_member(api)
    body = basket(member, coupon_codes=[code])
    first = await api.post("/v1/purchases", body)
    second = await api.post("/v1/purchases", body)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == second.json()
    assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 1


async def test_a_refused_code_refuses_the_purchase_and_keeps_the_other_codes_unused(
    api: Api,
) -> None:
    good = await new_campaign(api, stackable=True)
    expired = await new_campaign(api, stackable=True, valid_until="2020-01-01T00:00:00Z")
    [good_code] = await new_codes(api, good["key"])
    [old_code] = await new_codes(api, expired["key"])
    member = await new_member(api)
    response = await api.post("/v1/purchases", basket(member, coupon_codes=[good_code, old_code]))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "coupon_codes.1"
    assert response.json()["reason"] == "expired"
    assert (await api.get(f"/v1/coupons/{good_code}")).json()["uses"] == 0


async def test_limits_per_member_and_in_total(api: Api) -> None:
    public = await new_campaign(api, uses_per_code=None, per_member_limit=2, total_limit=3)
    [code] = await new_codes(api, public["key"], codes=["WELCOME"])
    anna, boris = await new_member(api), await new_member(api)
    statuses = [
        (await api.post("/v1/purchases", basket(who, coupon_codes=[code]))).status_code
        for who in (anna, anna, anna, boris, boris)
    ]
    assert statuses == [201, 201, 409, 201, 409]
    reasons = await api.post("/v1/purchases", basket(boris, coupon_codes=[code]))
    assert reasons.json()["reason"] == "campaign_limit"
    assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 3


async def test_a_personal_code_is_only_for_its_member(api: Api) -> None:
    campaign = await new_campaign(api)
    anna, boris = await new_member(api), await new_member(api)
    [code] = await new_codes(api, campaign["key"], count=1, members=[{"id": anna["id"]}])
    refused = await api.post("/v1/purchases", basket(boris, coupon_codes=[code]))
    assert refused.status_code == 422 and refused.json()["reason"] == "not_yours"
    assert (await api.post("/v1/purchases", basket(anna, coupon_codes=[code]))).status_code == 201


async def test_a_coupon_that_does_not_stack_refuses_a_combination_either_way(api: Api) -> None:
    cake = await new_campaign(api, discount={"kind": "free_product", "free_sku": "CAKE"})
    delivery = await new_campaign(api, discount={"kind": "free_delivery"}, stackable=True)
    [cake_code] = await new_codes(api, cake["key"])
    [delivery_code] = await new_codes(api, delivery["key"])
    member = await new_member(api)
    for codes in ([cake_code, delivery_code], [delivery_code, cake_code]):
        refused = await api.post("/v1/purchases", basket(member, coupon_codes=codes))
        assert refused.status_code == 422
        assert refused.json()["reason"] == "not_stackable"
        assert refused.json()["errors"][0]["field"] == "coupon_codes.1"
    assert (await api.get(f"/v1/coupons/{delivery_code}")).json()["uses"] == 0


async def test_free_delivery_and_a_free_product_each_on_their_own(api: Api) -> None:
    cake = await new_campaign(api, discount={"kind": "free_product", "free_sku": "CAKE"})
    delivery = await new_campaign(api, discount={"kind": "free_delivery"})
    [cake_code] = await new_codes(api, cake["key"])
    [delivery_code] = await new_codes(api, delivery["key"])
    member = await new_member(api)
    free_cake = (await api.post("/v1/purchases", basket(member, coupon_codes=[cake_code]))).json()
    assert free_cake["payment"]["discount"] == 30_000 and free_cake["points_earned"] == 500
    free_ship = (
        await api.post("/v1/purchases", basket(member, coupon_codes=[delivery_code]))
    ).json()
    assert free_ship["payment"]["coupons"][0]["free_delivery"] is True
    assert free_ship["payment"]["discount"] == 0 and free_ship["points_earned"] == 800


async def test_a_return_in_full_gives_the_code_back_when_the_campaign_says_so(api: Api) -> None:
    giving = await new_campaign(api)
    keeping = await new_campaign(api, give_back_on_return=False)
    [given] = await new_codes(api, giving["key"])
    [kept] = await new_codes(api, keeping["key"])
    member = await new_member(api)
    for code in (given, kept):
        purchase = basket(member, coupon_codes=[code])
        assert (await api.post("/v1/purchases", purchase)).status_code == 201
        half = await api.post(
            "/v1/returns",
            {
                "external_id": unique("r"),
                "purchase_external_id": purchase["external_id"],
                "occurred_at": purchase["occurred_at"],
                "amount": 40_000,
            },
        )
        assert half.json()["coupons_given_back"] == []
        rest = await api.post(
            "/v1/returns",
            {
                "external_id": unique("r"),
                "purchase_external_id": purchase["external_id"],
                "occurred_at": purchase["occurred_at"],
            },
        )
        assert rest.status_code == 201, rest.text
        assert rest.json()["coupons_given_back"] == ([code] if code == given else [])
    assert (await api.get(f"/v1/coupons/{given}")).json()["uses"] == 0
    assert (await api.get(f"/v1/coupons/{kept}")).json()["uses"] == 1
    again = await api.post("/v1/purchases", basket(member, coupon_codes=[given]))
    assert again.status_code == 201


async def _return_in_full(api: Api, purchase: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": purchase["external_id"],
            "occurred_at": purchase["occurred_at"],
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_return_gives_a_limited_campaign_its_use_back(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    """Under a total and a per-member limit, a use given back by a full return counts no
    more: the member and the campaign may use it again, up to the limits and no further."""
    public = await new_campaign(api, uses_per_code=None, per_member_limit=1, total_limit=2)
    [code] = await new_codes(api, public["key"], codes=["SPRING"])
    anna, boris, vera = await new_member(api), await new_member(api), await new_member(api)
    annas = basket(anna, coupon_codes=[code])
    assert (await api.post("/v1/purchases", annas)).status_code == 201
    again = await api.post("/v1/purchases", basket(anna, coupon_codes=[code]))
    assert (again.status_code, again.json()["reason"]) == (409, "member_limit")
    assert (await api.post("/v1/purchases", basket(boris, coupon_codes=[code]))).status_code == 201
    full = await api.post("/v1/purchases", basket(vera, coupon_codes=[code]))
    assert (full.status_code, full.json()["reason"]) == (409, "campaign_limit")
    campaign = f"/v1/coupon-campaigns/{public['key']}"
    assert (await api.get(campaign)).json()["redeemed"] == 2

    assert (await _return_in_full(api, annas))["coupons_given_back"] == [code]
    assert (await api.get(campaign)).json()["redeemed"] == 1
    assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 1
    # The campaign has room for one more use again, and Anna her one use back.
    annas_again = await api.post("/v1/purchases", basket(anna, coupon_codes=[code]))
    assert annas_again.status_code == 201, annas_again.text
    assert annas_again.json()["payment"]["coupons"][0]["code"] == code
    # ... and that was the one: the limits hold as before.
    full = await api.post("/v1/purchases", basket(vera, coupon_codes=[code]))
    assert (full.status_code, full.json()["reason"]) == (409, "campaign_limit")
    assert (await api.get(campaign)).json()["redeemed"] == 2
    assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 2
    await assert_ledger_sound(engine, program)


async def test_a_return_gives_a_single_use_code_of_a_limited_campaign_back(api: Api) -> None:
    campaign = await new_campaign(api, total_limit=1)
    first, second = await new_codes(api, campaign["key"], count=2)
    member = await new_member(api)
    bought = basket(member, coupon_codes=[first])
    assert (await api.post("/v1/purchases", bought)).status_code == 201
    used_up = await api.post("/v1/purchases", basket(member, coupon_codes=[second]))
    assert (used_up.status_code, used_up.json()["reason"]) == (409, "campaign_limit")
    assert (await _return_in_full(api, bought))["coupons_given_back"] == [first]
    # Either code may take the campaign's one use now; the second then finds it used.
    assert (
        await api.post("/v1/purchases", basket(member, coupon_codes=[second]))
    ).status_code == 201
    used_up = await api.post("/v1/purchases", basket(member, coupon_codes=[first]))
    assert (used_up.status_code, used_up.json()["reason"]) == (409, "campaign_limit")


async def test_a_disabled_code_is_refused(api: Api) -> None:
    campaign = await new_campaign(api)
    [code] = await new_codes(api, campaign["key"])
    assert (await api.patch(f"/v1/coupons/{code}", {"status": "disabled"})).status_code == 200
    member = await new_member(api)
    refused = await api.post("/v1/purchases", basket(member, coupon_codes=[code]))
    assert refused.json()["reason"] == "disabled"


async def test_a_rule_issues_a_code_on_the_first_purchase_for_the_next_one(
    engine: AsyncEngine, http: Any
) -> None:
    rules = [
        {
            "id": "welcome",
            "conditions": [{"type": "first_purchase"}],
            "effects": [{"type": "coupon", "campaign": "welcome-15", "valid_days": 30}],
        },
        {
            "id": "orphan",
            "conditions": [{"type": "first_purchase"}],
            "effects": [{"type": "coupon", "campaign": "no-such-campaign"}],
        },
    ]
    program = await make_program(engine, rules=rules)
    api = Api(http, await make_key(engine, program))
    await new_campaign(api, key="welcome-15", discount={"kind": "percent", "value": 15})
    member = await new_member(api)
    occurred = datetime.now(UTC).replace(microsecond=0)
    first = await api.post("/v1/purchases", basket(member, occurred_at=occurred.isoformat()))
    benefits = {b["rule_id"]: b for b in first.json()["benefits"]}
    code = benefits["welcome"]["payload"]["code"]
    assert code and benefits["welcome"]["payload"]["campaign"] == "welcome-15"
    expires = datetime.fromisoformat(benefits["welcome"]["expires_at"])
    assert expires == occurred + timedelta(days=30)
    assert benefits["orphan"]["payload"] == {"campaign": "no-such-campaign", "code": None}
    mine = (await api.get(f"/v1/members/{member['id']}/coupons")).json()["items"]
    assert [c["code"] for c in mine] == [code]
    second = await api.post("/v1/purchases", basket(member, coupon_codes=[code]))
    assert second.status_code == 201, second.text
    assert second.json()["payment"]["discount"] == 12_000
    assert second.json()["benefits"] == []


async def test_the_quote_reports_codes_without_refusing_or_using_them(api: Api) -> None:
    campaign = await new_campaign(api)
    [code] = await new_codes(api, campaign["key"])
    member = await new_member(api)
    quote = await api.post("/v1/purchases/quote", basket(member, coupon_codes=[code, "NOPE"]))
    assert quote.status_code == 200, quote.text
    coupons = quote.json()["payment"]["coupons"]
    assert [c["valid"] for c in coupons] == [True, False]
    assert quote.json()["payment"]["discount"] == 8_000
    assert quote.json()["points_earned"] == 720
    assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 0


async def test_a_limit_set_on_a_running_campaign_counts_the_uses_so_far(api: Api) -> None:
    campaign = await new_campaign(api, uses_per_code=None)
    [code] = await new_codes(api, campaign["key"], codes=["RUNNING"])
    members = [await new_member(api) for _ in range(5)]
    for member in members[:3]:
        assert (
            await api.post("/v1/purchases", basket(member, coupon_codes=[code]))
        ).status_code == 201
    limited = await api.patch(f"/v1/coupon-campaigns/{campaign['key']}", {"total_limit": 4})
    assert limited.status_code == 200 and limited.json()["redeemed"] == 3
    fourth = await api.post("/v1/purchases", basket(members[3], coupon_codes=[code]))
    fifth = await api.post("/v1/purchases", basket(members[4], coupon_codes=[code]))
    assert fourth.status_code == 201
    assert fifth.status_code == 409 and fifth.json()["reason"] == "campaign_limit"


async def test_a_campaign_field_that_always_has_a_value_cannot_be_cleared(api: Api) -> None:
    campaign = await new_campaign(api)
    for field in ("status", "name", "stackable", "give_back_on_return"):
        response = await api.patch(f"/v1/coupon-campaigns/{campaign['key']}", {field: None})
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    cleared = await api.patch(f"/v1/coupon-campaigns/{campaign['key']}", {"valid_until": None})
    assert cleared.status_code == 200


async def test_generated_codes_must_stay_findable_and_hard_to_guess(api: Api) -> None:
    campaign = await new_campaign(api)
    lower = await api.post(
        f"/v1/coupon-campaigns/{campaign['key']}/codes", {"count": 1, "charset": "abcdefghjk"}
    )
    assert lower.status_code == 422 and "upper-case letters" in lower.text
    short = {"count": 900, "pattern": "X-####"}  # 31⁴ / 1,000 = 923 codes at most
    assert (
        await api.post(f"/v1/coupon-campaigns/{campaign['key']}/codes", short)
    ).status_code == 201
    again = await api.post(f"/v1/coupon-campaigns/{campaign['key']}/codes", short)
    assert again.status_code == 422 and "too short for 1800" in again.text
