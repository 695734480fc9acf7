"""Every condition type of the rules engine, without a database: when it holds, when it does
not, and what the trace says about the value it saw."""

from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.conditions import CONDITIONS
from kopilka.rules.domain import (
    BasketLine,
    EarnEffect,
    EvaluationContext,
    FailedCondition,
    MemberFacts,
    RuleTrace,
    evaluate,
)
from kopilka.rules.registry import compile_program

MOSCOW = ZoneInfo("Europe/Moscow")
AT = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday
MILK = BasketLine("milk-1", "dairy", 2, 300, "Prostokvashino", frozenset({"organic"}))
BREAD = BasketLine("bread-1", "bakery", 1, 700, "Hleb", frozenset())


def ctx(
    *lines: BasketLine,
    at: datetime = AT,
    member: MemberFacts | None = None,
    total: int | None = None,
    **more: Any,
) -> EvaluationContext:
    basket = lines or (MILK, BREAD)
    return EvaluationContext(
        total=sum(line.amount for line in basket) if total is None else total,
        lines=list(basket),
        occurred_at=at,
        channel=more.pop("channel", "pos"),
        store=more.pop("store", "s1"),
        member=member or MemberFacts(),
        **more,
    )


def trace_of(condition: dict[str, Any], context: EvaluationContext) -> RuleTrace:
    """Run a one-rule program (1 point when ``condition`` holds) and return its trace."""
    rule = {"id": "r", "conditions": [condition], "effects": [{"type": "points", "amount": 1}]}
    program = compile_program(ProgramSettings.model_validate({"rules": [rule]}))
    result = evaluate(program, context, explain=True)
    assert result.trace is not None and len(result.trace) == 1
    trace = result.trace[0]
    # The effects and the trace agree on whether the rule fired.
    assert result.effects == ([EarnEffect("r", "points", 1)] if trace.fired else [])
    return trace


def holds(condition: dict[str, Any], context: EvaluationContext) -> bool:
    trace = trace_of(condition, context)
    assert trace.fired == (trace.failed is None)
    return trace.fired


def failure(condition: dict[str, Any], context: EvaluationContext) -> FailedCondition:
    trace = trace_of(condition, context)
    assert not trace.fired and trace.failed is not None
    assert trace.reason == f"{trace.failed.condition} not met"
    return trace.failed


def member(**facts: Any) -> MemberFacts:
    return MemberFacts(**facts)


class Case(NamedTuple):
    condition: dict[str, Any]
    contexts: tuple[EvaluationContext, EvaluationContext]  # it holds in one, fails in the other
    failed: FailedCondition  # what the trace says for the second


def _days_ago(days: int, hours: int = 0) -> datetime:
    return AT - timedelta(days=days, hours=hours)


F = FailedCondition
RANGE = {"min": 1000, "max": 5000}
DAIRY_2 = {"type": "line_match", "lines": {"categories": ["dairy"]}, "min_quantity": 2}
ALL = [{"type": "channel", "channels": ["pos"]}, {"type": "basket_total", "min": 1000}]
ANY = [{"type": "store", "stores": ["s9"]}, {"type": "channel", "channels": ["web"]}]
SATURDAY = datetime(2026, 3, 7, 12, tzinfo=UTC)
MONTH = [(_days_ago(29), 100), (_days_ago(1), 100)]
MONTH_AND_A_DAY = [(_days_ago(30), 100), (_days_ago(1), 100)]


def _at(hour: int, minute: int = 0, day: int = 4) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def _with(**facts: Any) -> EvaluationContext:
    return ctx(member=MemberFacts(**facts))


CASES: dict[str, Case] = {
    "basket_total": Case(
        {"type": "basket_total", **RANGE},
        (ctx(total=1000), ctx(total=5001)),
        F("basket_total", 5001, RANGE),
    ),
    "line_match": Case(
        DAIRY_2,
        (ctx(MILK, BREAD), ctx(MILK._replace(quantity=1), BREAD)),
        F("line_match", {"quantity": 1, "amount": 300}, {"min_quantity": 2, "min_amount": 0}),
    ),
    "distinct_items": Case(
        {"type": "distinct_items", "min": 2},
        (ctx(MILK, BREAD), ctx(MILK, MILK._replace(quantity=5))),
        F("distinct_items", 1, {"min": 2}),
    ),
    "first_purchase": Case(
        {"type": "first_purchase"},
        (_with(purchase_count=0), _with(purchase_count=3)),
        F("first_purchase", {"earlier_purchases": 3}, {"earlier_purchases": 0}),
    ),
    "nth_purchase": Case(
        {"type": "nth_purchase", "n": 3},
        (_with(purchase_count=2), _with(purchase_count=3)),
        F("nth_purchase", 4, 3),
    ),
    "payment_method": Case(
        {"type": "payment_method", "methods": ["card", "sbp"]},
        (ctx(payment_method="sbp"), ctx(payment_method="cash")),
        F("payment_method", "cash", ["card", "sbp"]),
    ),
    "coupon_code": Case(
        {"type": "coupon_code", "code": "SPRING"},
        (ctx(coupons=frozenset({"SPRING", "X"})), ctx(coupons=frozenset({"WINTER"}))),
        F("coupon_code", ["WINTER"], "SPRING"),
    ),
    "store": Case(
        {"type": "store", "stores": ["s1"]},
        (ctx(store="s1"), ctx(store="s2")),
        F("store", "s2", ["s1"]),
    ),
    "channel": Case(
        {"type": "channel", "channels": ["web", "app"]},
        (ctx(channel="app"), ctx(channel="pos")),
        F("channel", "pos", ["app", "web"]),
    ),
    "region": Case(
        {"type": "region", "regions": ["kazan"]},
        (ctx(region="kazan"), ctx(region=None)),
        F("region", None, ["kazan"]),
    ),
    "weekday": Case(
        {"type": "weekday", "days": ["sat", "sun"]},
        (ctx(at=SATURDAY), ctx()),
        F("weekday", "wed", ["sat", "sun"]),
    ),
    "time_of_day": Case(
        {"type": "time_of_day", "start": "09:00", "end": "11:00"},
        (ctx(at=_at(9)), ctx(at=_at(11))),
        F("time_of_day", "11:00", "09:00–11:00"),
    ),
    "date_range": Case(
        {"type": "date_range", "start": "2026-03-01", "end": "2026-03-08"},
        (ctx(at=_at(20, day=8)), ctx(at=_at(0, 30, day=9))),
        F("date_range", "2026-03-09", {"start": "2026-03-01", "end": "2026-03-08"}),
    ),
    "tier": Case(
        {"type": "tier", "tiers": ["gold", "platinum"]},
        (_with(tier="gold"), _with(tier="silver")),
        F("tier", "silver", ["gold", "platinum"]),
    ),
    "tenure_days": Case(
        {"type": "tenure_days", "min": 365},
        (_with(joined_at=_days_ago(365)), _with(joined_at=_days_ago(364, 23))),
        F("tenure_days", 364, {"min": 365}),
    ),
    "birthday": Case(
        {"type": "birthday"},
        (_with(birthday=date(1990, 3, 4)), _with(birthday=date(1990, 3, 5))),
        F("birthday", "1990-03-05", "today"),
    ),
    "days_since_last_purchase": Case(
        {"type": "days_since_last_purchase", "min": 30},
        (_with(last_purchase_at=_days_ago(30)), _with(last_purchase_at=_days_ago(29, 23))),
        F("days_since_last_purchase", 29, {"min": 30}),
    ),
    "purchases_in_window": Case(
        {"type": "purchases_in_window", "days": 30, "min": 2},
        (_with(recent=MONTH), _with(recent=MONTH_AND_A_DAY)),
        F("purchases_in_30_days", 1, {"min": 2}),
    ),
    "spend_in_window": Case(
        {"type": "spend_in_window", "days": 7, "max": 5000},
        (
            _with(recent=[(_days_ago(8), 9000), (_days_ago(2), 5000)]),
            _with(recent=[(_days_ago(6), 9000), (_days_ago(2), 5000)]),
        ),
        F("spend_in_7_days", 14000, {"max": 5000}),
    ),
    "lifetime_spend": Case(
        {"type": "lifetime_spend", "min": 100_000},
        (_with(lifetime_spend=100_000), _with(lifetime_spend=99_999)),
        F("lifetime_spend", 99_999, {"min": 100_000}),
    ),
    "segment": Case(
        {"type": "segment", "segments": ["vip", "churn_risk"]},
        (_with(segments=frozenset({"churn_risk", "new"})), _with(segments=frozenset({"new"}))),
        F("segment", ["new"], ["churn_risk", "vip"]),
    ),
    "churn_risk": Case(
        {"type": "churn_risk", "min": 60},
        (_with(churn_risk=60), _with(churn_risk=59)),
        F("churn_risk", 59, {"min": 60}),
    ),
    "clv": Case(
        {"type": "clv", "max": 500_000},
        (_with(clv=500_000), _with(clv=None)),
        F("clv", None, {"max": 500_000}),
    ),
    "member_tag": Case(
        {"type": "member_tag", "tags": ["student", "staff"], "all": True},
        (_with(tags=frozenset({"student", "staff", "x"})), _with(tags=frozenset({"student"}))),
        F("member_tag", ["student"], {"all": ["staff", "student"]}),
    ),
    "attribute": Case(
        {"type": "attribute", "name": "city", "equals": "Kazan"},
        (_with(attributes={"city": "Kazan"}), _with(attributes={"city": "Moscow"})),
        F("attribute.city", "Moscow", {"equals": "Kazan"}),
    ),
    "experiment_arm": Case(
        {"type": "experiment_arm", "experiment": "e1", "arms": ["test"]},
        (_with(arms={"e1": "test"}), _with(arms={"e1": "holdout"})),
        F("experiment.e1", "holdout", ["test"]),
    ),
    "all": Case(
        {"type": "all", "conditions": ALL},
        (ctx(total=1000), ctx(total=999)),
        F("all", {"condition": "basket_total", "actual": 999, "expected": {"min": 1000}}, "all"),
    ),
    "any": Case(
        {"type": "any", "conditions": ANY},
        (ctx(channel="web"), ctx()),
        F("any", [F("store", "s1", ["s9"]), F("channel", "pos", ["web"])], "at least one"),
    ),
    "not": Case(
        {"type": "not", "condition": {"type": "store", "stores": ["outlet"]}},
        (ctx(store="s1"), ctx(store="outlet")),
        F("not store", "outlet", {"not": ["outlet"]}),
    ),
}


def test_every_condition_type_has_a_case() -> None:
    assert set(CASES) == set(CONDITIONS)
    assert all(case.condition["type"] == kind for kind, case in CASES.items())


@pytest.mark.parametrize("kind", sorted(CASES))
def test_condition_holds_and_fails_with_the_actual_value(kind: str) -> None:
    case = CASES[kind]
    yes, no = case.contexts
    assert holds(case.condition, yes)
    assert failure(case.condition, no) == case.failed


# --- calendar and clock, in the program's time zone ---------------------------------------


NIGHT = {"type": "time_of_day", "start": "22:00", "end": "02:00"}


@pytest.mark.parametrize(
    ("clock", "inside"),
    [
        ("21:59", False),
        ("22:00", True),
        ("23:59", True),
        ("00:00", True),
        ("01:59", True),
        ("02:00", False),
        ("12:00", False),
    ],
)
def test_time_of_day_window_crossing_midnight(clock: str, inside: bool) -> None:
    hour, minute = map(int, clock.split(":"))
    assert holds(NIGHT, ctx(at=datetime(2026, 3, 4, hour, minute, tzinfo=UTC))) is inside


def test_time_of_day_is_read_in_the_program_time_zone() -> None:
    at = datetime(2026, 3, 4, 19, 30, tzinfo=UTC)  # 22:30 in Moscow
    assert holds(NIGHT, ctx(at=at, timezone=MOSCOW))
    assert failure(NIGHT, ctx(at=at)).actual == "19:30"


def test_weekday_and_date_are_local() -> None:
    friday_night = datetime(2026, 3, 6, 23, 30, tzinfo=UTC)  # Saturday 02:30 in Moscow
    weekend = {"type": "weekday", "days": ["sat", "sun"]}
    assert holds(weekend, ctx(at=friday_night, timezone=MOSCOW))
    assert failure(weekend, ctx(at=friday_night)).actual == "fri"
    march_6 = {"type": "date_range", "end": "2026-03-06"}
    assert holds(march_6, ctx(at=friday_night))
    assert failure(march_6, ctx(at=friday_night, timezone=MOSCOW)).actual == "2026-03-07"


def test_date_range_with_only_a_start() -> None:
    from_8th = {"type": "date_range", "start": "2026-03-08"}
    assert holds(from_8th, ctx(at=datetime(2030, 1, 1, tzinfo=UTC)))
    assert not holds(from_8th, ctx(at=datetime(2026, 3, 7, 23, tzinfo=UTC)))


# --- birthdays ----------------------------------------------------------------------------


def _birthday_on(day: date, birthday: date | None, within: str = "today") -> bool:
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return holds(
        {"type": "birthday", "within": within}, ctx(at=at, member=member(birthday=birthday))
    )


LEAP_BABY = date(2000, 2, 29)


def test_a_29_february_birthday_counts_on_28_february_in_common_years() -> None:
    assert _birthday_on(date(2027, 2, 28), LEAP_BABY)
    assert not _birthday_on(date(2027, 3, 1), LEAP_BABY)


def test_a_29_february_birthday_counts_once_in_leap_years() -> None:
    assert _birthday_on(date(2028, 2, 29), LEAP_BABY)
    assert not _birthday_on(date(2028, 2, 28), LEAP_BABY)


@pytest.mark.parametrize(
    ("day", "inside"),
    [
        (date(2026, 3, 6), False),
        (date(2026, 3, 7), True),
        (date(2026, 3, 10), True),
        (date(2026, 3, 13), True),
        (date(2026, 3, 14), False),
    ],
)
def test_birthday_week_is_three_days_either_side(day: date, inside: bool) -> None:
    assert _birthday_on(day, date(1985, 3, 10), "week") is inside


def test_birthday_week_crosses_the_new_year() -> None:
    assert _birthday_on(date(2026, 12, 30), date(1985, 1, 2), "week")
    assert _birthday_on(date(2027, 1, 3), date(1985, 12, 31), "week")
    assert not _birthday_on(date(2027, 1, 4), date(1985, 12, 31), "week")


def test_birthday_month_and_unknown_birthday() -> None:
    assert _birthday_on(date(2026, 3, 31), date(1985, 3, 1), "month")
    assert not _birthday_on(date(2026, 4, 1), date(1985, 3, 1), "month")
    assert _birthday_on(date(2027, 2, 1), LEAP_BABY, "month")
    unknown = failure({"type": "birthday", "within": "month"}, ctx(member=member()))
    assert unknown == FailedCondition("birthday", None, "month")


def test_birthday_is_the_local_date() -> None:
    at = datetime(2026, 3, 3, 22, 0, tzinfo=UTC)  # 4 March, 01:00 in Moscow
    facts = member(birthday=date(1990, 3, 4))
    assert holds({"type": "birthday"}, ctx(at=at, member=facts, timezone=MOSCOW))
    assert not holds({"type": "birthday"}, ctx(at=at, member=facts))


# --- purchase history ---------------------------------------------------------------------


def test_days_since_last_purchase_fails_for_a_first_purchase() -> None:
    quiet = {"type": "days_since_last_purchase", "min": 0}
    assert failure(quiet, ctx(member=member())) == FailedCondition(
        "days_since_last_purchase", None, {"min": 0}
    )
    assert holds(quiet, ctx(member=member(last_purchase_at=AT)))


def test_tenure_of_a_member_without_a_join_date_fails() -> None:
    assert failure({"type": "tenure_days", "max": 10}, ctx()).actual is None


def test_rolling_windows_count_only_the_window() -> None:
    recent = [(_days_ago(40), 50_000), (_days_ago(20), 3_000), (_days_ago(5), 2_000)]
    facts = member(recent=recent, purchase_count=3, lifetime_spend=55_000)
    assert holds({"type": "purchases_in_window", "days": 30, "min": 2, "max": 2}, ctx(member=facts))
    assert holds({"type": "purchases_in_window", "days": 45, "min": 3}, ctx(member=facts))
    tight = {"type": "purchases_in_window", "days": 10, "min": 2}
    assert failure(tight, ctx(member=facts)).actual == 1
    spend = {"type": "spend_in_window", "days": 30, "min": 5_000}
    assert holds(spend, ctx(member=facts))
    assert failure({**spend, "min": 5_001}, ctx(member=facts)).actual == 5_000
    lapsed = {"type": "purchases_in_window", "days": 30, "max": 0}
    assert holds(lapsed, ctx(member=member(recent=recent[:1])))


@pytest.mark.parametrize(
    ("earlier", "fires"),
    [(0, False), (1, False), (2, True), (3, False), (5, True), (8, True), (9, False)],
)
def test_every_nth_purchase(earlier: int, fires: bool) -> None:
    every_third = {"type": "nth_purchase", "n": 3, "every": True}
    context = ctx(member=member(purchase_count=earlier))
    if fires:
        assert holds(every_third, context)
    else:
        assert failure(every_third, context) == FailedCondition(
            "nth_purchase", earlier + 1, "every 3th"
        )


def test_nth_purchase_without_every_fires_once() -> None:
    third = {"type": "nth_purchase", "n": 3}
    assert holds(third, ctx(member=member(purchase_count=2)))
    assert not holds(third, ctx(member=member(purchase_count=5)))


# --- basket lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line_filter",
    [
        {"skus": ["milk-1"]},
        {"categories": ["dairy"]},
        {"brands": ["Prostokvashino"]},
        {"tags": ["organic", "vegan"]},
        {"skus": ["nothing"], "brands": ["Prostokvashino"]},
    ],
)
def test_line_match_by_sku_category_brand_or_tag(line_filter: dict[str, list[str]]) -> None:
    match = {"type": "line_match", "lines": line_filter, "min_quantity": 2, "min_amount": 300}
    assert holds(match, ctx(MILK, BREAD))
    assert failure(match, ctx(BREAD)).actual == {"quantity": 0, "amount": 0}
    # Two lines of one item each (scanned apart) reach the minimum together.
    single = MILK._replace(quantity=1, amount=150)
    assert holds(match, ctx(single, BREAD, single))


def test_line_match_minimum_amount_and_quantity() -> None:
    dairy = {"type": "line_match", "lines": {"categories": ["dairy"]}}
    assert failure({**dairy, "min_amount": 301}, ctx(MILK)).actual == {"quantity": 2, "amount": 300}
    assert failure({**dairy, "min_quantity": 3}, ctx(MILK)).actual == {"quantity": 2, "amount": 300}
    # ``min_quantity: 0`` still wants one matching line.
    nothing = failure({**dairy, "min_quantity": 0}, ctx(BREAD))
    assert nothing.expected == {"min_quantity": 1, "min_amount": 0}
    # An empty filter matches every line.
    assert holds({"type": "line_match", "lines": {}, "min_quantity": 3}, ctx(MILK, BREAD))


def test_coupon_code_without_a_code_wants_any_coupon() -> None:
    any_coupon = {"type": "coupon_code"}
    assert holds(any_coupon, ctx(coupons=frozenset({"X"})))
    assert failure(any_coupon, ctx()) == FailedCondition("coupon_code", [], "any coupon")


# --- member profile -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "fires"),
    [
        ({"one_of": ["a", "b"]}, "b", True),
        ({"one_of": ["a", "b"]}, "c", False),
        ({"one_of": [1, 2]}, 2, True),
        ({"min": 18, "max": 65}, 18, True),
        ({"min": 18, "max": 65}, 65, True),
        ({"min": 18, "max": 65}, 66, False),
        ({"min": 18}, 17.5, False),
        ({"min": 18}, "forty", False),
        ({"max": 1}, True, False),
        ({"equals": True}, True, True),
        ({"equals": 5}, 6, False),
        ({}, "anything", True),
        ({}, None, False),
    ],
)
def test_attribute_equals_one_of_and_range(
    condition: dict[str, Any], value: Any, fires: bool
) -> None:
    spec = {"type": "attribute", "name": "x", **condition}
    facts = member(attributes={} if value is None else {"x": value})
    trace = trace_of(spec, ctx(member=facts))
    assert trace.fired is fires
    if not fires:
        assert trace.failed is not None and trace.failed.actual == value
        assert trace.failed.expected == (condition or "present")


def test_member_tag_any_of() -> None:
    student = {"type": "member_tag", "tags": ["student", "staff"]}
    assert holds(student, ctx(member=member(tags=frozenset({"staff"}))))
    assert failure(student, ctx()).expected == {"any": ["staff", "student"]}


# --- combinations -------------------------------------------------------------------------


NESTED = {
    "type": "all",
    "conditions": [
        {
            "type": "any",
            "conditions": [
                {"type": "tier", "tiers": ["gold"]},
                {"type": "basket_total", "min": 5000},
            ],
        },
        {"type": "not", "condition": {"type": "channel", "channels": ["web"]}},
        {
            "type": "not",
            "condition": {
                "type": "all",
                "conditions": [
                    {"type": "store", "stores": ["outlet"]},
                    {"type": "weekday", "days": ["wed"]},
                ],
            },
        },
    ],
}


@pytest.mark.parametrize(
    ("tier", "total", "channel", "store", "fires"),
    [
        ("gold", 100, "pos", "s1", True),
        (None, 5000, "pos", "s1", True),
        (None, 4999, "pos", "s1", False),
        ("gold", 100, "web", "s1", False),
        ("gold", 100, "pos", "outlet", False),  # an outlet on a Wednesday
    ],
)
def test_nested_all_any_not(
    tier: str | None, total: int, channel: str, store: str, fires: bool
) -> None:
    context = ctx(total=total, channel=channel, store=store, member=member(tier=tier))
    assert holds(NESTED, context) is fires


def test_nested_failure_names_the_first_failing_branch() -> None:
    failed = failure(NESTED, ctx(total=100, channel="web", member=member(tier="gold")))
    assert failed.condition == "all"
    assert failed.actual == {
        "condition": "not channel",
        "actual": "web",
        "expected": {"not": ["web"]},
    }
    outlet = failure(NESTED, ctx(total=100, store="outlet", member=member(tier="gold")))
    assert outlet.actual["condition"] == "not all"


def test_not_of_not_is_the_condition_itself() -> None:
    twice = {
        "type": "not",
        "condition": {"type": "not", "condition": {"type": "store", "stores": ["s1"]}},
    }
    assert holds(twice, ctx(store="s1"))
    assert failure(twice, ctx(store="s2")).condition == "not not store"


def test_a_rule_needs_every_condition() -> None:
    rule = {
        "id": "r",
        "conditions": [
            {"type": "store", "stores": ["s1"]},
            {"type": "channel", "channels": ["web"]},
        ],
        "effects": [{"type": "points", "amount": 1}],
    }
    program = compile_program(ProgramSettings.model_validate({"rules": [rule]}))
    trace = evaluate(program, ctx(store="s1"), explain=True).trace
    assert trace is not None and trace[0].failed == FailedCondition("channel", "pos", ["web"])


def test_the_program_knows_what_its_conditions_read() -> None:
    rule = {
        "id": "r",
        "conditions": [
            {"type": "birthday"},
            {
                "type": "not",
                "condition": {
                    "type": "any",
                    "conditions": [
                        {"type": "spend_in_window", "days": 90, "min": 1},
                        {"type": "purchases_in_window", "days": 30, "min": 1},
                    ],
                },
            },
            {"type": "tier", "tiers": ["gold"]},
        ],
        "effects": [{"type": "points", "amount": 1}],
    }
    program = compile_program(ProgramSettings.model_validate({"rules": [rule]}))
    assert program.window_days == 90
    assert {"profile", "history", "tier"} <= program.needs
    assert "segments" not in program.needs
