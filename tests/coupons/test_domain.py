"""Coupon rules without a database: eligibility, discounts, stacking, limits, codes."""

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.coupons.domain import (
    Code,
    Line,
    Presented,
    Terms,
    allocate,
    apply_codes,
)
from kopilka.errors import InvalidInput
from kopilka.kit.codes import UNAMBIGUOUS, capacity, generate_codes, normalise_code, qr_svg

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
MEMBER = uuid4()


def terms(**overrides: object) -> Terms:
    base = Terms(id=uuid4(), key="spring", kind="percent", value=10)
    return replace(base, **overrides)  # type: ignore[arg-type]


def presented(t: Terms, text: str = "AAAA-BBBB", **code: object) -> Presented:
    fields: dict[str, object] = {
        "id": uuid4(),
        "code": text,
        "campaign_id": t.id,
        "member_id": None,
        "uses": 0,
        "max_uses": 1,
        "active": True,
        "valid_until": None,
    }
    fields.update({k: v for k, v in code.items() if k != "member_uses"})
    member_uses = int(code.get("member_uses", 0))  # type: ignore[call-overload]
    return Presented(text, Code(**fields), t, member_uses)  # type: ignore[arg-type]


def lines(*items: tuple[str, str, int, int]) -> list[Line]:
    return [Line(sku, cat, qty, price, qty * price) for sku, cat, qty, price in items]


BASKET = lines(("COF", "coffee", 2, 25_000), ("CAKE", "bakery", 1, 30_000))  # 800 ₽


def one(t: Terms, basket: list[Line] = BASKET, member: object = MEMBER, **code: object):  # type: ignore[no-untyped-def]
    total = sum(line.amount for line in basket)
    return apply_codes([presented(t, **code)], basket, total, member, NOW)[0]  # type: ignore[arg-type]


def test_percent_discount_is_rounded_down_and_shared_over_the_lines() -> None:
    decision = one(terms(value=15), lines(("A", "x", 1, 999)))
    assert decision.accepted and decision.discount == 149  # 149.85 → 149
    decision = one(terms(value=10))
    assert decision.discount == 8_000
    assert decision.line_discounts == [5_000, 3_000]


def test_percent_discount_is_capped_by_max_discount() -> None:
    assert one(terms(value=50, max_discount=10_000)).discount == 10_000


def test_fixed_discount_never_exceeds_what_it_applies_to() -> None:
    assert one(terms(kind="fixed", value=20_000)).discount == 20_000
    only_cake = terms(kind="fixed", value=50_000, categories=frozenset({"bakery"}))
    decision = one(only_cake)
    assert decision.discount == 30_000
    assert decision.line_discounts == [0, 30_000]


def test_categories_and_skus_restrict_the_lines() -> None:
    coffee = one(terms(value=10, categories=frozenset({"coffee"})))
    assert coffee.discount == 5_000 and coffee.line_discounts == [5_000, 0]
    cake = one(terms(value=10, skus=frozenset({"CAKE"})))
    assert cake.line_discounts == [0, 3_000]
    nothing = one(terms(value=10, categories=frozenset({"tea"})))
    assert nothing.reason == "no_applicable_items" and nothing.discount == 0


def test_free_product_takes_one_unit_of_the_cheapest_matching_line() -> None:
    basket = lines(("COF", "coffee", 2, 25_000), ("COF", "coffee", 1, 20_000))
    decision = one(terms(kind="free_product", value=0, free_sku="COF"), basket)
    assert decision.discount == 20_000
    assert decision.line_discounts == [0, 20_000]
    missing = one(terms(kind="free_product", value=0, free_sku="TEA"))
    assert missing.reason == "free_product_missing"


def test_free_delivery_takes_no_money_but_is_flagged() -> None:
    decision = one(terms(kind="free_delivery", value=0))
    assert decision.accepted and decision.discount == 0 and decision.free_delivery


def test_minimum_basket() -> None:
    assert one(terms(min_basket=80_001)).reason == "min_basket"
    assert one(terms(min_basket=80_000)).accepted


@pytest.mark.parametrize(
    ("changes", "code", "reason"),
    [
        ({"valid_from": NOW + timedelta(days=1)}, {}, "not_started"),
        ({"valid_until": NOW}, {}, "expired"),
        ({}, {"valid_until": NOW - timedelta(seconds=1)}, "expired"),
        ({}, {"uses": 1, "max_uses": 1}, "used_up"),
        ({}, {"active": False}, "disabled"),
        ({"active": False}, {}, "campaign_inactive"),
        ({"per_member_limit": 2}, {"member_uses": 2, "max_uses": None}, "member_limit"),
        ({"total_limit": 5, "redeemed_count": 5}, {}, "campaign_limit"),
        ({}, {"member_id": uuid4()}, "not_yours"),
    ],
)
def test_reasons_a_code_is_refused(
    changes: dict[str, object], code: dict[str, object], reason: str
) -> None:
    decision = one(terms(**changes), **code)
    assert decision.reason == reason
    assert decision.discount == 0 and not decision.accepted
    assert decision.message


def test_a_personal_code_needs_its_member() -> None:
    assert one(terms(), member_id=MEMBER).accepted
    assert one(terms(), member=None, member_id=MEMBER).reason == "member_required"
    assert one(terms(), member=None).accepted  # a public code needs nobody


def test_unknown_and_duplicate_codes() -> None:
    assert (
        apply_codes([Presented("NOPE", None, None)], BASKET, 80_000, MEMBER, NOW)[0].reason
        == "unknown"
    )
    t = terms(stackable=True)
    first = presented(t)
    decisions = apply_codes([first, first], BASKET, 80_000, MEMBER, NOW)
    assert [d.reason for d in decisions] == [None, "duplicate"]


def test_stackable_codes_apply_in_turn_on_what_is_left() -> None:
    a, b = terms(value=50, stackable=True), terms(kind="fixed", value=30_000, stackable=True)
    decisions = apply_codes(
        [presented(a, "A-1111"), presented(b, "B-2222")], BASKET, 80_000, MEMBER, NOW
    )
    assert [d.discount for d in decisions] == [40_000, 30_000]


def test_a_coupon_that_does_not_stack_stands_alone() -> None:
    alone, other = terms(value=10), terms(value=5, stackable=True)
    after = apply_codes(
        [presented(other, "B-2222"), presented(alone, "A-1111")], BASKET, 80_000, MEMBER, NOW
    )
    assert [d.reason for d in after] == [None, "not_stackable"]
    before = apply_codes(
        [presented(alone, "A-1111"), presented(other, "B-2222")], BASKET, 80_000, MEMBER, NOW
    )
    assert [d.reason for d in before] == [None, "not_stackable"]


def test_codes_of_one_campaign_in_one_basket_count_against_the_member_limit_together() -> None:
    t = terms(per_member_limit=2, stackable=True)
    codes = [presented(t, f"C-{i}", member_uses=1) for i in range(2)]
    decisions = apply_codes(codes, BASKET, 80_000, MEMBER, NOW)
    assert [d.reason for d in decisions] == [None, "member_limit"]


def test_a_basket_without_lines_is_one_line_of_its_total() -> None:
    decision = apply_codes([presented(terms(value=10))], [], 12_345, MEMBER, NOW)[0]
    assert decision.discount == 1_234 and decision.line_discounts == [1_234]


@given(
    st.integers(0, 10**9),
    st.lists(st.integers(0, 10**7), min_size=1, max_size=20),
)
def test_allocate_is_exact_and_proportional(amount: int, weights: list[int]) -> None:
    shares = allocate(amount, weights)
    if sum(weights) == 0:
        assert shares == [0] * len(weights)
        return
    assert sum(shares) == amount
    for share, weight in zip(shares, weights, strict=True):
        assert abs(share - amount * weight / sum(weights)) < 1
        if amount <= sum(weights):
            assert share <= weight


amounts = st.lists(
    st.tuples(
        st.sampled_from(["coffee", "bakery", "tea"]), st.integers(1, 5), st.integers(0, 10**6)
    ),
    min_size=1,
    max_size=8,
)
campaigns = st.builds(
    lambda kind, value, stackable, cats: terms(
        kind=kind,
        value=value if kind != "percent" else max(1, value % 101),
        stackable=stackable,
        categories=cats,
    ),
    st.sampled_from(["percent", "fixed"]),
    st.integers(1, 10**6),
    st.booleans(),
    st.one_of(st.none(), st.frozensets(st.sampled_from(["coffee", "bakery", "tea"]), min_size=1)),
)


@given(amounts, st.lists(campaigns, min_size=1, max_size=5))
def test_discounts_never_exceed_the_basket_or_any_line(
    items: list[tuple[str, int, int]], offers: list[Terms]
) -> None:
    basket = lines(*((f"S{i}", cat, qty, price) for i, (cat, qty, price) in enumerate(items)))
    total = sum(line.amount for line in basket)
    codes = [presented(t, f"X-{i}") for i, t in enumerate(offers)]
    decisions = apply_codes(codes, basket, total, MEMBER, NOW)
    accepted = [d for d in decisions if d.accepted]
    assert sum(d.discount for d in accepted) <= total
    for index, line in enumerate(basket):
        assert sum(d.line_discounts[index] for d in accepted) <= line.amount
    for d in accepted:
        assert sum(d.line_discounts) == d.discount
    assert all(d.discount == 0 and not d.line_discounts for d in decisions if not d.accepted)


def test_a_hundred_thousand_codes_are_distinct_unambiguous_and_follow_the_pattern() -> None:
    codes = generate_codes("SPRING-####-####", 100_000)
    assert len(set(codes)) == 100_000
    for code in codes[:2000]:
        assert code.startswith("SPRING-") and len(code) == 16 and code[11] == "-"
        assert set(code[7:11] + code[12:]) <= set(UNAMBIGUOUS)
    assert not set("0O1IL") & set(UNAMBIGUOUS)


def test_codes_avoid_taken_ones_and_a_too_small_pattern_is_refused() -> None:
    taken = set(generate_codes("####-####", 1000))
    fresh = generate_codes("####-####", 1000, taken=taken)
    assert not taken & set(fresh)
    assert capacity("####") == 31**4 // 1000
    with pytest.raises(InvalidInput, match="too short"):
        generate_codes("####", 924)
    with pytest.raises(InvalidInput, match="at least 4"):
        generate_codes("AB##", 1)
    with pytest.raises(InvalidInput, match="upper case"):
        generate_codes("ab-####", 1)


def test_codes_are_looked_up_in_upper_case_without_blanks() -> None:
    assert normalise_code("  spring-ab12 ") == "SPRING-AB12"


def test_qr_code_is_an_svg_document() -> None:
    svg = qr_svg("SPRING-AB12-CD34")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and int(root.get("width", "0")) > 0
