"""The rewards shop's pure rules: prices per tier, who may see and take a reward and why
not, what each kind starts as, and which definitions are sound."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.errors import InsufficientBalance, InvalidInput, MemberBlocked
from kopilka.rewards.domain import (
    COUPON_KINDS,
    KINDS,
    STAFF_FULFILLED,
    Reason,
    RewardUnavailable,
    Shopper,
    Terms,
    check_campaign,
    check_definition,
    in_stock,
    initial_status,
    judge,
    price_for,
    reaches,
    refusal,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
LADDER = ["base", "silver", "gold", "vip"]


def terms(**overrides: Any) -> Terms:
    base = Terms(
        key="mug",
        kind="physical",
        status="active",
        currency="points",
        price=500,
        tier_prices={},
        stock=None,
        available_from=None,
        available_until=None,
        min_tier=None,
        per_member_limit=None,
    )
    return replace(base, **overrides)


def shopper(**overrides: Any) -> Shopper:
    base = Shopper(status="active", tier="base", ladder=LADDER, available=1_000, taken=0)
    return replace(base, **overrides)


# -- prices -----------------------------------------------------------------------------------


def test_the_price_without_tier_prices_is_the_reward_price() -> None:
    assert price_for(terms(), "gold", LADDER) == 500
    assert price_for(terms(), None, []) == 500


def test_a_tier_price_holds_for_that_tier_and_the_tiers_above_until_one_has_its_own() -> None:
    priced = terms(tier_prices={"silver": 400, "vip": 100})
    assert price_for(priced, "base", LADDER) == 500
    assert price_for(priced, "silver", LADDER) == 400
    assert price_for(priced, "gold", LADDER) == 400  # silver's price, gold has none
    assert price_for(priced, "vip", LADDER) == 100


def test_tier_prices_of_tiers_the_ladder_no_longer_has_are_ignored() -> None:
    priced = terms(tier_prices={"platinum": 1})
    assert price_for(priced, "gold", LADDER) == 500
    assert price_for(priced, "platinum", LADDER) == 500  # a tier off the ladder


def test_a_free_reward_for_a_tier() -> None:
    assert price_for(terms(tier_prices={"gold": 0}), "vip", LADDER) == 0


@given(
    prices=st.dictionaries(st.sampled_from(LADDER), st.integers(0, 10_000)),
    base=st.integers(0, 10_000),
)
def test_the_price_is_always_the_base_or_a_tier_price_of_a_tier_at_or_below(
    prices: dict[str, int], base: int
) -> None:
    for rank, tier in enumerate(LADDER):
        price = price_for(terms(price=base, tier_prices=prices), tier, LADDER)
        below = [prices[t] for t in LADDER[: rank + 1] if t in prices]
        assert price == (below[-1] if below else base)


# -- tiers ------------------------------------------------------------------------------------


def test_a_minimum_tier_admits_that_tier_and_above() -> None:
    assert reaches(LADDER, "base", None)
    assert not reaches(LADDER, "silver", "gold")
    assert reaches(LADDER, "gold", "gold")
    assert reaches(LADDER, "vip", "gold")


def test_a_minimum_tier_off_the_ladder_or_without_a_ladder_admits_nobody() -> None:
    assert not reaches(LADDER, "vip", "platinum")
    assert not reaches([], None, "gold")
    assert not reaches(LADDER, "unknown", "base")


# -- judging ----------------------------------------------------------------------------------


def test_a_member_who_can_pay_gets_the_reward_at_their_price() -> None:
    verdict = judge(terms(tier_prices={"gold": 300}), shopper(tier="gold", available=300), NOW)
    assert (verdict.price, verdict.can_redeem, verdict.visible) == (300, True, True)
    assert verdict.reason is None and verdict.detail is None


@pytest.mark.parametrize(
    ("reward", "member", "reason", "visible"),
    [
        (terms(status="archived"), shopper(), Reason.ARCHIVED, False),
        (
            terms(available_from=NOW + timedelta(seconds=1)),
            shopper(),
            Reason.NOT_YET_AVAILABLE,
            False,
        ),
        (terms(available_until=NOW), shopper(), Reason.ENDED, False),
        (terms(min_tier="gold"), shopper(tier="silver"), Reason.TIER, False),
        (terms(stock=0), shopper(), Reason.OUT_OF_STOCK, False),
        (terms(kind="digital", codes_left=0), shopper(), Reason.OUT_OF_STOCK, False),
        (terms(), shopper(status="blocked"), Reason.MEMBER_BLOCKED, True),
        (terms(per_member_limit=2), shopper(taken=2), Reason.LIMIT_REACHED, True),
        (terms(), shopper(available=499), Reason.INSUFFICIENT_BALANCE, True),
        (terms(), shopper(available=-20), Reason.INSUFFICIENT_BALANCE, True),
    ],
)
def test_each_reason_a_member_cannot_take_a_reward(
    reward: Terms, member: Shopper, reason: Reason, visible: bool
) -> None:
    verdict = judge(reward, member, NOW)
    assert verdict.reason is reason
    assert not verdict.can_redeem
    assert verdict.visible is visible
    assert (verdict.detail and reward.key in verdict.detail) or reason is Reason.MEMBER_BLOCKED


def test_the_window_includes_its_start_and_excludes_its_end() -> None:
    window = terms(available_from=NOW, available_until=NOW + timedelta(days=1))
    assert judge(window, shopper(), NOW).can_redeem
    assert judge(window, shopper(), NOW + timedelta(days=1) - timedelta(microseconds=1)).can_redeem
    assert judge(window, shopper(), NOW + timedelta(days=1)).reason is Reason.ENDED


def test_below_the_limit_and_with_stock_left_the_member_may_take_it() -> None:
    assert judge(terms(per_member_limit=2, stock=1), shopper(taken=1), NOW).can_redeem


def test_what_hides_a_reward_is_reported_before_what_is_the_members() -> None:
    verdict = judge(terms(status="archived"), shopper(status="blocked", available=0), NOW)
    assert verdict.reason is Reason.ARCHIVED
    verdict = judge(terms(per_member_limit=1), shopper(taken=1, available=0), NOW)
    assert verdict.reason is Reason.LIMIT_REACHED


def test_stock_counts_and_pools_both_have_to_have_something_left() -> None:
    assert in_stock(terms())
    assert in_stock(terms(stock=1, codes_left=1))
    assert not in_stock(terms(stock=1, codes_left=0))
    assert not in_stock(terms(stock=0, codes_left=5))


def test_refusals_name_their_reason() -> None:
    member = shopper(available=100)
    blocked = refusal(judge(terms(), shopper(status="blocked"), NOW), member)
    assert isinstance(blocked, MemberBlocked) and blocked.extra["reason"] == "member_blocked"
    poor = refusal(judge(terms(), member, NOW), member)
    assert isinstance(poor, InsufficientBalance)
    assert poor.extra == {"reason": "insufficient_balance", "price": 500, "available": 100}
    assert poor.detail == "reward 'mug' costs 500 points; the member has 100 available"
    sold_out = refusal(judge(terms(stock=0), member, NOW), member)
    assert isinstance(sold_out, RewardUnavailable) and sold_out.status == 409
    assert sold_out.problem()["type"].endswith("/reward-unavailable")
    assert sold_out.problem()["reason"] == "out_of_stock"
    limit = refusal(judge(terms(per_member_limit=1), shopper(taken=1), NOW), member)
    assert limit.field == "member" and limit.extra["reason"] == "limit_reached"


# -- kinds ------------------------------------------------------------------------------------


def test_staff_fulfilled_kinds_start_issued_and_the_others_fulfilled() -> None:
    assert set(KINDS) == STAFF_FULFILLED | COUPON_KINDS | {"digital", "gift_certificate"}
    for kind in KINDS:
        expected = "issued" if kind in {"physical", "event", "charity"} else "fulfilled"
        assert initial_status(kind) == expected


# -- definitions ------------------------------------------------------------------------------


def definition(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": "physical",
        "currency": "points",
        "price": 500,
        "tier_prices": None,
        "min_tier": None,
        "available_from": None,
        "available_until": None,
        "coupon_campaign": None,
        "gift_amount": None,
        "code_source": None,
        "code_pattern": None,
        "currencies": ["points", "cashback"],
        "ladder": LADDER,
    }
    return fields | overrides


@pytest.mark.parametrize(
    "fields",
    [
        definition(),
        definition(kind="discount_coupon", coupon_campaign="ten-off"),
        definition(kind="free_product", coupon_campaign="free-coffee"),
        definition(kind="free_delivery", coupon_campaign="ship-free"),
        definition(kind="gift_certificate", gift_amount=100_000),
        definition(kind="event"),
        definition(kind="charity", price=0),
        definition(kind="digital"),
        definition(kind="digital", code_source="pool"),
        definition(kind="digital", code_source="generated", code_pattern="EARLY-######"),
        definition(min_tier="gold", tier_prices={"gold": 400, "vip": 0}),
        definition(available_from=NOW, available_until=NOW + timedelta(days=1)),
        definition(currency="cashback"),
    ],
)
def test_sound_definitions(fields: dict[str, Any]) -> None:
    check_definition(**fields)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (definition(kind="voucher"), "kind", "kind must be one of"),
        (definition(currency="miles"), "currency", "not one of the program's"),
        (definition(price=-1), "price", "must not be negative"),
        (definition(min_tier="gold", ladder=None), "min_tier", "no tier ladder"),
        (definition(tier_prices={"gold": 1}, ladder=None), "tier_prices", "no tier ladder"),
        (definition(min_tier="platinum"), "min_tier", "not a tier of the ladder"),
        (definition(tier_prices={"platinum": 1}), "tier_prices.platinum", "not a tier"),
        (definition(tier_prices={"gold": -1}), "tier_prices.gold", "must not be negative"),
        (
            definition(available_from=NOW, available_until=NOW),
            "available_until",
            "after available_from",
        ),
        (definition(kind="discount_coupon"), "coupon_campaign", "names the coupon campaign"),
        (definition(coupon_campaign="x"), "coupon_campaign", "only for"),
        (definition(kind="gift_certificate"), "gift_amount", "needs gift_amount"),
        (definition(gift_amount=100), "gift_amount", "only for gift_certificate"),
        (definition(code_source="pool"), "code_source", "only for digital"),
        (definition(code_pattern="####-####"), "code_pattern", "only for digital"),
        (
            definition(kind="digital", code_source="pool", code_pattern="####-####"),
            "code_pattern",
            "a pool hands out",
        ),
        (definition(kind="digital", code_pattern="AB#"), "code_pattern", "at least 4"),
        (definition(kind="digital", code_source="file"), "code_source", "pool or generated"),
    ],
)
def test_unsound_definitions_name_the_field(
    fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        check_definition(**fields)
    assert error.value.field == field
    assert message in error.value.detail


def test_a_coupon_reward_needs_a_campaign_that_gives_what_it_says() -> None:
    check_campaign("discount_coupon", "ten-off", "percent")
    check_campaign("discount_coupon", "100-off", "fixed")
    check_campaign("free_product", "coffee", "free_product")
    check_campaign("free_delivery", "ship", "free_delivery")
    with pytest.raises(InvalidInput) as error:
        check_campaign("free_delivery", "ten-off", "percent")
    assert error.value.field == "coupon_campaign"
    assert "gives percent" in error.value.detail
