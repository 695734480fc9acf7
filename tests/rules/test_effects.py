"""Every effect type of the rules engine, without a database: the amounts, their rounding,
line filters, multipliers and the benefits a rule hands out."""

from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.domain import (
    BasketLine,
    BenefitEffect,
    CompiledProgram,
    EarnEffect,
    Effect,
    Evaluation,
    EvaluationContext,
    EventEffect,
    MemberFacts,
    TagEffect,
    evaluate,
)
from kopilka.rules.effects import EFFECTS, divide
from kopilka.rules.registry import compile_program

AT = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
CURRENCIES = [{"code": "points"}, {"code": "cashback", "kind": "money"}]
MILK = BasketLine("milk-1", "dairy", 3, 450, "Prostokvashino", frozenset({"organic"}))
CHEESE = BasketLine("cheese-1", "dairy", 1, 1_250, "Valio", frozenset())
CIGARS = BasketLine("cigars-1", "tobacco", 2, 5_000, "Havana", frozenset())
BREAD = BasketLine("bread-1", "bakery", 1, 99, None, frozenset({"organic"}))
BASKET = (MILK, CHEESE, CIGARS, BREAD)  # 6,799 in all


def ctx(*lines: BasketLine, total: int | None = None) -> EvaluationContext:
    basket = lines or BASKET
    return EvaluationContext(
        total=sum(line.amount for line in basket) if total is None else total,
        lines=list(basket),
        occurred_at=AT,
        channel="pos",
        store="s1",
    )


def program(*rules: dict[str, Any], **document: Any) -> CompiledProgram:
    settings = {"currencies": CURRENCIES, "rules": list(rules), **document}
    return compile_program(ProgramSettings.model_validate(settings))


def rule(rule_id: str, *effects: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": rule_id, "effects": list(effects), **more}


def run(*effects: dict[str, Any], context: EvaluationContext | None = None) -> Evaluation:
    result = evaluate(program(rule("r", *effects)), context or ctx(), explain=True)
    # Whether a trace is asked for never changes the effects.
    assert evaluate(program(rule("r", *effects)), context or ctx()).effects == result.effects
    return result


def effects_of(*effects: dict[str, Any], context: EvaluationContext | None = None) -> list[Effect]:
    return run(*effects, context=context).effects


class Case(NamedTuple):
    rules: list[dict[str, Any]]
    expected: list[Effect]


CASES: dict[str, Case] = {
    "points": Case([rule("r", {"type": "points", "amount": 50})], [EarnEffect("r", "points", 50)]),
    "points_per_amount": Case(
        [rule("r", {"type": "points_per_amount", "points": 2, "per": 100})],
        [EarnEffect("r", "points", 135)],
    ),
    "percent": Case(
        [rule("r", {"type": "percent", "basis_points": 500, "currency": "cashback"})],
        [EarnEffect("r", "cashback", 339)],
    ),
    "points_per_line": Case(
        [rule("r", {"type": "points_per_line", "points": 5, "lines": {"categories": ["dairy"]}})],
        [EarnEffect("r", "points", 10)],
    ),
    "multiplier": Case(
        [
            rule("r", {"type": "points", "amount": 30}),
            rule("x2", {"type": "multiplier", "factor": 2, "of": ["r"]}),
        ],
        [EarnEffect("r", "points", 30), EarnEffect("x2", "points", 30)],
    ),
    # A member with no tier (rate 100 %) gets nothing extra; see the tier tests below.
    "tier_multiplier": Case(
        [
            rule("r", {"type": "points", "amount": 30}),
            rule("t", {"type": "tier_multiplier", "of": ["r"]}),
        ],
        [EarnEffect("r", "points", 30)],
    ),
    "coupon": Case(
        [rule("r", {"type": "coupon", "campaign": "spring"})],
        [BenefitEffect("r", "coupon", {"campaign": "spring"}, None)],
    ),
    "reward": Case(
        [rule("r", {"type": "reward", "reward": "lounge", "valid_days": 90})],
        [BenefitEffect("r", "reward", {"reward": "lounge"}, 90)],
    ),
    "free_delivery": Case(
        [rule("r", {"type": "free_delivery"})], [BenefitEffect("r", "free_delivery", {}, None)]
    ),
    "free_sample": Case(
        [rule("r", {"type": "free_sample", "sku": "choco", "quantity": 2})],
        [BenefitEffect("r", "free_sample", {"sku": "choco", "quantity": 2}, None)],
    ),
    "boost": Case(
        [rule("r", {"type": "boost", "factor": "1.5", "valid_days": 7})],
        [BenefitEffect("r", "boost", {"factor_percent": 150}, 7)],
    ),
    "emit_event": Case(
        [rule("r", {"type": "emit_event", "name": "badge.step", "payload": {"badge": "owl"}})],
        [EventEffect("r", "badge.step", {"badge": "owl"})],
    ),
    "tag": Case(
        [rule("r", {"type": "tag", "tag": "coffee-lover"})], [TagEffect("r", "coffee-lover")]
    ),
}


def test_every_effect_type_has_a_case() -> None:
    assert set(CASES) == set(EFFECTS)
    for kind, case in CASES.items():
        assert kind in {e["type"] for r in case.rules for e in r["effects"]}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_effect_gives_what_it_says(kind: str) -> None:
    case = CASES[kind]
    assert evaluate(program(*case.rules), ctx()).effects == case.expected


# --- fixed points -------------------------------------------------------------------------


def test_points_in_another_currency_and_explained() -> None:
    result = run({"type": "points", "amount": 700, "currency": "cashback"})
    assert result.effects == [EarnEffect("r", "cashback", 700)]
    assert result.trace is not None and result.trace[0].reason == "700 cashback"
    assert result.trace[0].amount == 700 and result.trace[0].fired


# --- per amount and percent ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "rounding", "expected"),
    [
        (250, "floor", 2),
        (250, "round", 3),  # half up
        (250, "ceil", 3),
        (249, "floor", 2),
        (249, "round", 2),
        (249, "ceil", 3),
        (200, "ceil", 2),
        (99, "floor", 0),
        (50, "round", 1),
        (49, "round", 0),
    ],
)
def test_points_per_amount_rounding(total: int, rounding: str, expected: int) -> None:
    spec = {"type": "points_per_amount", "points": 1, "per": 100, "rounding": rounding}
    earned = effects_of(spec, context=ctx(BasketLine("x", None, 1, total)))
    assert earned == ([EarnEffect("r", "points", expected)] if expected else [])


def test_points_per_amount_defaults_to_floor() -> None:
    floor = effects_of({"type": "points_per_amount", "points": 3, "per": 1000})
    assert floor == [EarnEffect("r", "points", 6_799 * 3 // 1000)]


def test_points_per_amount_on_filtered_lines() -> None:
    dairy = {"type": "points_per_amount", "per": 100, "lines": {"categories": ["dairy"]}}
    assert effects_of(dairy) == [EarnEffect("r", "points", 17)]  # 450 + 1,250
    organic = {"type": "points_per_amount", "per": 10, "lines": {"tags": ["organic"]}}
    assert effects_of(organic) == [EarnEffect("r", "points", 54)]  # 450 + 99
    by_sku_or_brand = {
        "type": "points_per_amount",
        "per": 1,
        "lines": {"skus": ["bread-1"], "brands": ["Valio"]},
    }
    assert effects_of(by_sku_or_brand) == [EarnEffect("r", "points", 1_349)]
    nothing = {"type": "points_per_amount", "lines": {"brands": ["Nobody"]}}
    result = run(nothing)
    assert result.effects == []
    assert result.trace is not None and not result.trace[0].fired


def test_points_per_amount_without_excluded_categories() -> None:
    no_tobacco = {"type": "points_per_amount", "per": 100, "exclude_categories": ["tobacco"]}
    assert effects_of(no_tobacco) == [EarnEffect("r", "points", 17)]  # 1,799
    # A line filter and an exclusion together: organic lines, but no bakery.
    organic_no_bread = {
        "type": "points_per_amount",
        "per": 10,
        "lines": {"tags": ["organic"]},
        "exclude_categories": ["bakery"],
    }
    assert effects_of(organic_no_bread) == [EarnEffect("r", "points", 45)]
    everything_excluded = {
        "type": "points_per_amount",
        "per": 1,
        "exclude_categories": ["dairy", "tobacco", "bakery"],
    }
    assert effects_of(everything_excluded) == []


def test_filtered_rules_sharing_a_basket_do_not_mix_their_amounts() -> None:
    rules = [
        rule(
            "dairy", {"type": "points_per_amount", "per": 100, "lines": {"categories": ["dairy"]}}
        ),
        rule("all", {"type": "points_per_amount", "per": 100}),
        rule(
            "smokes", {"type": "percent", "basis_points": 100, "lines": {"categories": ["tobacco"]}}
        ),
        rule(
            "dairy-count",
            {"type": "points", "amount": 1},
            conditions=[
                {"type": "line_match", "lines": {"categories": ["dairy"]}, "min_quantity": 4}
            ],
        ),
    ]
    assert evaluate(program(*rules), ctx()).effects == [
        EarnEffect("all", "points", 67),
        EarnEffect("dairy", "points", 17),
        EarnEffect("smokes", "points", 50),
        EarnEffect("dairy-count", "points", 1),
    ]


@pytest.mark.parametrize(("rounding", "expected"), [("floor", 99), ("round", 100), ("ceil", 100)])
def test_percent_cashback_rounding(rounding: str, expected: int) -> None:
    five_percent = {
        "type": "percent",
        "basis_points": 500,
        "currency": "cashback",
        "rounding": rounding,
    }
    earned = effects_of(five_percent, context=ctx(BasketLine("x", None, 1, 1_999)))
    assert earned == [EarnEffect("r", "cashback", expected)]


def test_percent_on_lines_and_explained() -> None:
    spec = {
        "type": "percent",
        "basis_points": 1_000,
        "currency": "cashback",
        "lines": {"categories": ["dairy"]},
    }
    result = run(spec)
    assert result.effects == [EarnEffect("r", "cashback", 170)]
    assert result.trace is not None and result.trace[0].reason == "1000 bp of 1700 (floor)"
    assert run({"type": "percent", "basis_points": 10_000}).effects == [
        EarnEffect("r", "points", 6_799)
    ]


# --- per line -----------------------------------------------------------------------------


def test_points_per_line_per_line_and_per_unit() -> None:
    dairy = {"categories": ["dairy"]}
    per_line = run({"type": "points_per_line", "points": 5, "lines": dairy})
    assert per_line.effects == [EarnEffect("r", "points", 10)]
    assert per_line.trace is not None and per_line.trace[0].reason == "5 × 2 matching lines"
    per_unit = run({"type": "points_per_line", "points": 5, "lines": dairy, "per_unit": True})
    assert per_unit.effects == [EarnEffect("r", "points", 20)]  # 3 + 1 units
    assert per_unit.trace is not None and per_unit.trace[0].reason == "5 × 4 matching units"
    every_line = {"type": "points_per_line", "points": 1, "per_unit": True, "currency": "cashback"}
    assert effects_of(every_line) == [EarnEffect("r", "cashback", 7)]
    assert effects_of({"type": "points_per_line", "points": 5, "lines": {"skus": ["none"]}}) == []


# --- multipliers --------------------------------------------------------------------------


BASE = {"id": "base", "type": "per_amount", "points": 1, "per": 100}  # 67 on the basket
BONUS = rule("bonus", {"type": "points", "amount": 100})


def test_multiplier_of_named_rules_only() -> None:
    double_bonus = rule("x2", {"type": "multiplier", "factor": 2, "of": ["bonus"]})
    result = evaluate(program(BONUS, double_bonus, earning=[BASE]), ctx(), explain=True)
    assert result.effects == [
        EarnEffect("base", "points", 67),
        EarnEffect("bonus", "points", 100),
        EarnEffect("x2", "points", 100),
    ]
    assert result.trace is not None
    assert [t.reason for t in result.trace if t.rule_id == "x2"] == ["×2 of bonus"]


@pytest.mark.parametrize(("percent", "extra"), [(100, 0), (125, 8), (150, 16), (200, 33)])
def test_tier_multiplier_pays_the_members_tier_rate(percent: int, extra: int) -> None:
    rules = program(
        rule("r", {"type": "points", "amount": 33}),
        rule("t", {"type": "tier_multiplier", "of": ["r"]}),
    )
    member = MemberFacts(tier="gold", tier_earn_percent=percent)
    context = EvaluationContext(
        total=100, lines=[], occurred_at=AT, channel="pos", store=None, member=member
    )
    expected = [EarnEffect("r", "points", 33)] + (
        [EarnEffect("t", "points", extra)] if extra else []
    )
    assert evaluate(rules, context).effects == expected  # the generated fast path
    explained = evaluate(rules, context, explain=True)
    assert explained.effects == expected
    assert explained.trace is not None
    assert explained.trace[-1].reason == f"tier gold rate {percent}% of r"


def test_multiplier_of_several_named_rules() -> None:
    triple = rule("x3", {"type": "multiplier", "factor": 3, "of": ["bonus", "base"]})
    extra = [
        e
        for e in evaluate(program(BONUS, triple, earning=[BASE]), ctx()).effects
        if e.rule_id == "x3"
    ]
    assert extra == [EarnEffect("x3", "points", 2 * 167)]


@pytest.mark.parametrize(("rounding", "expected"), [("floor", 83), ("round", 84), ("ceil", 84)])
def test_multiplier_of_everything_earned_in_a_currency(rounding: str, expected: int) -> None:
    # 67 + 100 = 167 points; ×1.5 adds 83.5.
    one_and_half = rule("x1.5", {"type": "multiplier", "factor": "1.5", "rounding": rounding})
    cashback = rule("cb", {"type": "points", "amount": 1_000, "currency": "cashback"})
    effects = evaluate(program(BONUS, one_and_half, cashback, earning=[BASE]), ctx()).effects
    assert EarnEffect("x1.5", "points", expected) in effects
    assert (
        sum(e.amount for e in effects if isinstance(e, EarnEffect) and e.rule_id == "x1.5")
        == expected
    )


def test_multiplier_in_cashback_sees_only_cashback() -> None:
    cashback = rule("cb", {"type": "percent", "basis_points": 300, "currency": "cashback"})
    double = rule("x2", {"type": "multiplier", "factor": 2, "currency": "cashback"})
    effects = evaluate(program(BONUS, cashback, double, earning=[BASE]), ctx()).effects
    assert EarnEffect("cb", "cashback", 203) in effects
    assert [e for e in effects if e.rule_id == "x2"] == [EarnEffect("x2", "cashback", 203)]


def test_multiplier_of_nothing_earned_gives_nothing() -> None:
    double = rule("x2", {"type": "multiplier", "factor": 2, "of": ["bonus"]})
    quiet_bonus = {**BONUS, "conditions": [{"type": "channel", "channels": ["web"]}]}
    result = evaluate(program(quiet_bonus, double), ctx(), explain=True)
    assert result.effects == []
    assert result.trace is not None and [t.fired for t in result.trace] == [False, False]


def test_multipliers_do_not_multiply_each_other() -> None:
    first = rule("x2", {"type": "multiplier", "factor": 2})
    second = rule("x3", {"type": "multiplier", "factor": 3})
    effects = evaluate(program(BONUS, first, second), ctx()).effects
    assert effects == [
        EarnEffect("bonus", "points", 100),
        EarnEffect("x2", "points", 100),
        EarnEffect("x3", "points", 200),
    ]


# --- benefits, events and tags ------------------------------------------------------------


def test_coupon_names_its_campaign_and_may_set_its_own_validity() -> None:
    coupon = {"type": "coupon", "campaign": "welcome", "valid_days": 14}
    assert effects_of(coupon) == [BenefitEffect("r", "coupon", {"campaign": "welcome"}, 14)]


def test_boost_factor_is_kept_in_percent_and_defaults_to_two_weeks() -> None:
    assert effects_of({"type": "boost", "factor": 3}) == [
        BenefitEffect("r", "boost", {"factor_percent": 300}, 14)
    ]
    (quarter,) = effects_of({"type": "boost", "factor": "1.25"})
    assert isinstance(quarter, BenefitEffect) and quarter.payload == {"factor_percent": 125}


def test_a_rule_gives_all_its_effects_in_order() -> None:
    result = run(
        {"type": "points", "amount": 10},
        {"type": "free_delivery"},
        {"type": "tag", "tag": "regular"},
        {"type": "emit_event", "name": "regular.reached"},
        {"type": "percent", "basis_points": 100, "currency": "cashback"},
    )
    assert result.effects == [
        EarnEffect("r", "points", 10),
        BenefitEffect("r", "free_delivery", {}, None),
        TagEffect("r", "regular"),
        EventEffect("r", "regular.reached", {}),
        EarnEffect("r", "cashback", 67),
    ]
    assert result.trace is not None
    trace = result.trace[0]
    # The rule's amount is in its currency: that of its first earning effect.
    assert trace.fired and trace.amount == 10
    assert (
        trace.reason
        == "10 points; free_delivery {}; tag regular; event regular.reached; 100 bp of 6799 (floor)"
    )


def test_a_benefit_only_rule_fires_without_earning() -> None:
    result = run({"type": "free_sample", "sku": "choco"})
    assert result.effects == [
        BenefitEffect("r", "free_sample", {"sku": "choco", "quantity": 1}, None)
    ]
    assert result.trace is not None and result.trace[0].fired and result.trace[0].amount == 0


# --- integer division ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "floor", "half_up", "ceil"),
    [
        (0, 7, 0, 0, 0),
        (7, 7, 1, 1, 1),
        (10, 4, 2, 3, 3),
        (9, 4, 2, 2, 3),
        (11, 4, 2, 3, 3),
        (1, 3, 0, 0, 1),
    ],
)
def test_divide_rounds_as_told(
    numerator: int, denominator: int, floor: int, half_up: int, ceil: int
) -> None:
    assert divide(numerator, denominator, "floor") == floor
    assert divide(numerator, denominator, "round") == half_up
    assert divide(numerator, denominator, "ceil") == ceil


def test_a_coupon_written_with_its_own_value_still_loads_and_the_campaign_decides() -> None:
    older = {"type": "coupon", "campaign": "welcome-15", "discount_percent": 15, "valid_days": 30}
    assert effects_of(older) == [BenefitEffect("r", "coupon", {"campaign": "welcome-15"}, 30)]
