"""How ``evaluate`` puts rules together, without a database: order, multipliers, exclusive
groups, limits and budgets, schedules, experiments, triggers, blocked members, personal
boosts; how a bad program document is refused; and properties over random programs."""

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.domain import (
    BasketLine,
    BenefitEffect,
    Boost,
    BoostUsed,
    CompiledProgram,
    EarnEffect,
    Evaluation,
    EvaluationContext,
    MemberFacts,
    RuleTrace,
    TagEffect,
    evaluate,
    period_key,
)
from kopilka.rules.registry import compile_program

AT = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
MOSCOW = ZoneInfo("Europe/Moscow")
CURRENCIES = [{"code": "points"}, {"code": "cashback", "kind": "money"}]
BASE = {"id": "base", "type": "per_amount", "points": 1, "per": 100}


def document(*rules: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"currencies": CURRENCIES, "rules": list(rules), **more}


def program(*rules: dict[str, Any], **more: Any) -> CompiledProgram:
    return compile_program(ProgramSettings.model_validate(document(*rules, **more)))


def rule(rule_id: str, *effects: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"id": rule_id, "effects": list(effects), **more}


def points(rule_id: str, amount: int, **more: Any) -> dict[str, Any]:
    return rule(rule_id, {"type": "points", "amount": amount}, **more)


def ctx(total: int = 10_000, at: datetime = AT, **more: Any) -> EvaluationContext:
    lines = [BasketLine("sku-1", "food", 1, total)]
    return EvaluationContext(total, lines, at, more.pop("channel", "pos"), "s1", **more)


def run(compiled: CompiledProgram, context: EvaluationContext | None = None) -> Evaluation:
    return evaluate(compiled, context or ctx(), explain=True)


def traces(result: Evaluation) -> dict[str, RuleTrace]:
    assert result.trace is not None
    return {t.rule_id: t for t in result.trace}


def earned(result: Evaluation) -> dict[str, int]:
    return {e.rule_id: e.amount for e in result.earned}


# --- order --------------------------------------------------------------------------------


ORDERED = [
    points("b", 1, priority=10),
    points("a", 2, priority=10, conditions=[{"type": "channel", "channels": ["pos"]}]),
    points("c", 3, conditions=[{"type": "store", "stores": ["elsewhere"]}]),
    points("d", 4, priority=-5, limits={"max_per_event": 2}),
    rule("e", {"type": "tag", "tag": "seen"}),
]


def test_rules_run_by_priority_then_id() -> None:
    result = run(program(*ORDERED, earning=[BASE]))
    assert result.trace is not None
    assert [t.rule_id for t in result.trace] == ["a", "b", "base", "c", "e", "d"]
    assert [t.fired for t in result.trace] == [True, True, True, False, True, True]


def test_document_order_does_not_change_the_result() -> None:
    expected = run(program(*ORDERED, earning=[BASE]))
    for permutation in itertools.permutations(ORDERED):
        assert run(program(*permutation, earning=[BASE])) == expected


def test_effects_come_in_rule_order_with_or_without_a_trace() -> None:
    grouped = points("a", 5, group="g", conditions=[{"type": "channel", "channels": ["pos"]}])
    plain = points("b", 7, conditions=[{"type": "channel", "channels": ["pos"]}])
    capped = rule("c", {"type": "tag", "tag": "t"}, limits={"max_per_event": 1})
    compiled = program(capped, plain, grouped)
    expected = [EarnEffect("a", "points", 5), EarnEffect("b", "points", 7), TagEffect("c", "t")]
    assert evaluate(compiled, ctx(), explain=True).effects == expected
    assert evaluate(compiled, ctx()).effects == expected


def test_multipliers_see_earning_rules_of_any_priority() -> None:
    double = rule("double", {"type": "multiplier", "factor": 2}, priority=1000)
    late = points("late", 40, priority=-1000, conditions=[{"type": "basket_total", "min": 1}])
    result = run(program(double, late, earning=[BASE]))
    assert earned(result) == {"base": 100, "late": 40, "double": 140}


# --- exclusive groups ---------------------------------------------------------------------


SMALL = points("small", 100, group="welcome", priority=5)
BIG = points("big", 300, group="welcome")
ALONE = points("alone", 7)


def test_a_group_keeps_the_best_rule_by_default() -> None:
    result = run(program(SMALL, BIG, ALONE))
    assert earned(result) == {"big": 300, "alone": 7}
    lost = traces(result)["small"]
    assert not lost.fired and lost.reason == "group welcome: big applies instead"
    assert lost.amount == 100
    assert traces(result)["big"].fired


def test_a_priority_group_keeps_the_highest_priority() -> None:
    result = run(program(SMALL, BIG, ALONE, groups={"welcome": "priority"}))
    assert earned(result) == {"small": 100, "alone": 7}
    assert traces(result)["big"].reason == "group welcome: small applies instead"


def test_a_tie_goes_to_the_rule_that_runs_first() -> None:
    tie = [points("z", 100, group="g"), points("y", 100, group="g")]
    assert earned(run(program(*tie))) == {"y": 100}
    tie_by_priority = [points("z", 100, group="g", priority=1), points("y", 100, group="g")]
    assert earned(run(program(*tie_by_priority))) == {"z": 100}
    same_priority = [points("z", 1, group="g"), points("y", 200, group="g")]
    assert earned(run(program(*same_priority, groups={"g": "priority"}))) == {"y": 200}


def test_a_group_rule_that_does_not_fire_leaves_the_other() -> None:
    web_only = {**BIG, "conditions": [{"type": "channel", "channels": ["web"]}]}
    assert earned(run(program(SMALL, web_only))) == {"small": 100}


def test_a_multiplier_of_a_group_loser_gives_nothing() -> None:
    of_small = rule("x2", {"type": "multiplier", "factor": 2, "of": ["small"]})
    of_big = rule("x3", {"type": "multiplier", "factor": 3, "of": ["big"]})
    assert earned(run(program(SMALL, BIG, of_small, of_big))) == {"big": 300, "x3": 600}


# --- limits -------------------------------------------------------------------------------


PER_AMOUNT = {"type": "points_per_amount", "per": 100}  # 100 on the default basket


def limited(**limits: Any) -> CompiledProgram:
    return program(rule("r", PER_AMOUNT, limits=limits))


def test_max_per_event_caps_the_amount() -> None:
    result = run(limited(max_per_event=30))
    assert earned(result) == {"r": 30}
    assert traces(result)["r"] == RuleTrace("r", True, "capped at 30 per event", 30)
    assert earned(run(limited(max_per_event=500))) == {"r": 100}


def member_usage(key: tuple[str, str], used: tuple[int, int], **more: Any) -> EvaluationContext:
    return ctx(member=MemberFacts(usage={key: used}), **more)


def test_a_member_limit_by_times_per_day() -> None:
    once_a_day = limited(periods=[{"period": "day", "times": 1}])
    today = ("r", period_key("day", AT))
    result = run(once_a_day, member_usage(today, (1, 100)))
    assert result.effects == []
    assert traces(result)["r"].reason == "used 1 of 1 times per member day"
    yesterday = ("r", period_key("day", AT - timedelta(days=1)))
    assert earned(run(once_a_day, member_usage(yesterday, (1, 100)))) == {"r": 100}
    twice = limited(periods=[{"period": "day", "times": 2}])
    assert earned(run(twice, member_usage(today, (1, 100)))) == {"r": 100}


def test_a_member_limit_counts_in_the_program_time_zone() -> None:
    once_a_day = limited(periods=[{"period": "day", "times": 1}])
    late = datetime(2026, 3, 4, 22, 30, tzinfo=UTC)  # already 5 March in Moscow
    used_4th = ("r", period_key("day", late))
    assert run(once_a_day, member_usage(used_4th, (1, 100), at=late)).effects == []
    moscow = member_usage(used_4th, (1, 100), at=late, timezone=MOSCOW)
    assert earned(run(once_a_day, moscow)) == {"r": 100}
    assert period_key("day", moscow.local_time) == "d2026-03-05"


def test_a_member_limit_by_amount_per_month() -> None:
    monthly = limited(periods=[{"period": "month", "amount": 250}])
    month = ("r", period_key("month", AT))
    assert month[1] == "m2026-03"
    result = run(monthly, member_usage(month, (3, 170)))
    assert earned(result) == {"r": 80}
    assert traces(result)["r"].reason == "170 of 250 per member month used"
    spent = run(monthly, member_usage(month, (4, 250)))
    assert spent.effects == [] and not traces(spent)["r"].fired
    assert earned(run(monthly, member_usage(month, (1, 150)))) == {"r": 100}


def test_week_and_year_limits_use_their_own_keys() -> None:
    weekly = limited(periods=[{"period": "week", "times": 1}, {"period": "year", "amount": 1000}])
    week, year = ("r", period_key("week", AT)), ("r", period_key("year", AT))
    assert (week[1], year[1]) == ("w2026-10", "y2026")
    facts = MemberFacts(usage={week: (1, 10), year: (1, 10)})
    assert run(weekly, ctx(member=facts)).effects == []
    facts = MemberFacts(usage={year: (9, 950)})
    assert earned(run(weekly, ctx(member=facts))) == {"r": 50}


def test_program_limits_count_across_members() -> None:
    first_hundred = limited(periods=[{"per": "program", "period": "ever", "times": 100}])
    assert earned(run(first_hundred, ctx(program_usage={("r", "ever"): (99, 9_000)}))) == {"r": 100}
    assert run(first_hundred, ctx(program_usage={("r", "ever"): (100, 9_000)})).effects == []
    # Member usage does not count against a program limit.
    assert earned(run(first_hundred, member_usage(("r", "ever"), (500, 0)))) == {"r": 100}


def test_a_budget_caps_and_then_stops_the_rule() -> None:
    budget = program(
        rule(
            "r",
            PER_AMOUNT,
            {"type": "free_delivery"},
            limits={"budget": 1_000, "max_per_event": 90},
        )
    )
    nearly = run(budget, ctx(program_usage={("r", "ever"): (20, 960)}))
    assert nearly.effects == [
        EarnEffect("r", "points", 40),
        BenefitEffect("r", "free_delivery", {}, None),
    ]
    assert run(budget).effects[0] == EarnEffect("r", "points", 90)
    spent = run(budget, ctx(program_usage={("r", "ever"): (21, 1_000)}))
    assert spent.effects == []
    assert traces(spent)["r"] == RuleTrace("r", False, "1000 of 1000 per program ever used")


# --- schedule, experiments, triggers ------------------------------------------------------


def test_schedule_from_inclusive_to_exclusive() -> None:
    schedule = {"valid_from": "2026-03-01T00:00:00+03:00", "valid_to": "2026-03-09T00:00:00+03:00"}
    spring = program(points("spring", 8, schedule=schedule))
    start = datetime(2026, 2, 28, 21, 0, tzinfo=UTC)
    end = datetime(2026, 3, 8, 21, 0, tzinfo=UTC)
    assert earned(run(spring, ctx(at=start))) == {"spring": 8}
    assert earned(run(spring, ctx(at=end - timedelta(seconds=1)))) == {"spring": 8}
    early = traces(run(spring, ctx(at=start - timedelta(seconds=1))))["spring"]
    assert not early.fired and early.reason.startswith("starts 2026-03-01")
    late = traces(run(spring, ctx(at=end)))["spring"]
    assert not late.fired and late.reason.startswith("ended 2026-03-09")


EXPERIMENT = {
    "name": "double",
    "arms": [{"name": "test", "percent": 10}, {"name": "holdout", "percent": 90}],
}


def test_experiment_rules_run_in_their_arm_only() -> None:
    tested = program(
        points("t", 5, experiment={"experiment": "double", "arm": "test"}), experiments=[EXPERIMENT]
    )
    assert "experiments" in tested.needs
    assert earned(run(tested, ctx(member=MemberFacts(arms={"double": "test"})))) == {"t": 5}
    holdout = run(tested, ctx(member=MemberFacts(arms={"double": "holdout"})))
    assert holdout.effects == []
    assert (
        traces(holdout)["t"].reason
        == "member is in arm 'holdout' of experiment 'double', not 'test'"
    )
    assert run(tested, ctx(member=MemberFacts(arms={"other": "test"}))).effects == []


@pytest.mark.parametrize("conditional", [False, True])
def test_a_signup_rule_does_not_fire_on_a_purchase(conditional: bool) -> None:
    conditions = [{"type": "channel", "channels": ["pos"]}] if conditional else []
    welcome = program(
        points("welcome", 500, trigger="signup", conditions=conditions), earning=[BASE]
    )
    purchase = run(welcome)
    assert earned(purchase) == {"base": 100}
    assert traces(purchase)["welcome"].reason == "trigger is purchase"
    signup = run(welcome, ctx(trigger="signup"))
    assert earned(signup) == {"welcome": 500}
    assert traces(signup)["base"].reason == "trigger is signup"


def test_an_event_rule_fires_for_its_event_only() -> None:
    review = program(points("review", 50, trigger="event", event="review.left"))
    assert earned(run(review, ctx(trigger="event", event_name="review.left"))) == {"review": 50}
    other = run(review, ctx(trigger="event", event_name="survey.done"))
    assert other.effects == []
    assert traces(other)["review"].reason == "event is survey.done, not review.left"
    assert run(review).effects == []


def test_a_blocked_member_earns_nothing() -> None:
    boost = Boost("b1", "promo", 300, None)
    blocked = program(points("bonus", 10), rule("gift", {"type": "free_delivery"}), earning=[BASE])
    context = ctx(member_status="blocked", member=MemberFacts(boosts=[boost]))
    result = run(blocked, context)
    assert result.effects == []
    assert result.trace is not None
    assert {(t.fired, t.reason) for t in result.trace} == {(False, "member is blocked")}
    assert len(result.trace) == 3
    assert evaluate(blocked, context).effects == []


# --- personal boosts ----------------------------------------------------------------------


def boosted(*boosts: Boost, **more: Any) -> Evaluation:
    compiled = program(
        points("bonus", 20),
        rule("cb", {"type": "percent", "basis_points": 100, "currency": "cashback"}),
        earning=[BASE],
    )
    return run(compiled, ctx(member=MemberFacts(boosts=list(boosts)), **more))


def test_a_live_boost_multiplies_the_points_of_the_purchase() -> None:
    result = boosted(Boost("b1", "promo", 200, AT + timedelta(days=1)))
    assert result.effects[-2:] == [EarnEffect("promo", "points", 120), BoostUsed("b1", "promo")]
    assert EarnEffect("cb", "cashback", 100) in result.effects  # cashback is not boosted
    assert result.trace is not None
    assert result.trace[-1] == RuleTrace("boost:b1", True, "personal boost from rule promo")
    one_and_half = boosted(Boost("b2", "promo", 150, None))
    assert one_and_half.effects[-2:] == [
        EarnEffect("promo", "points", 60),
        BoostUsed("b2", "promo"),
    ]


def test_the_soonest_expiring_boost_is_used_first() -> None:
    later = Boost("later", "p1", 300, AT + timedelta(days=5))
    sooner = Boost("sooner", "p2", 200, AT + timedelta(hours=1))
    forever = Boost("forever", "p3", 500, None)
    result = boosted(forever, later, sooner)
    assert [e for e in result.effects if isinstance(e, BoostUsed)] == [BoostUsed("sooner", "p2")]


def test_an_expired_boost_is_not_used() -> None:
    result = boosted(Boost("old", "promo", 200, AT))
    assert not any(isinstance(e, BoostUsed) for e in result.effects)
    assert earned(result) == {"base": 100, "bonus": 20, "cb": 100}


def test_a_boost_waits_for_a_purchase() -> None:
    result = boosted(Boost("b1", "promo", 200, None), trigger="signup")
    assert result.effects == []


# --- validation ---------------------------------------------------------------------------


def refused(doc: dict[str, Any]) -> str:
    """Where and why the document is refused, one line per error."""
    with pytest.raises(ValidationError) as error:
        ProgramSettings.model_validate(doc)
    return "\n".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.value.errors())


def test_an_unknown_condition_type_is_refused_where_it_is() -> None:
    bad = (
        points("ok", 1),
        points("r", 1, conditions=[{"type": "store", "stores": ["s1"]}, {"type": "moon_phase"}]),
    )
    message = refused(document(*bad))
    assert "rules.1.conditions.1" in message and "moon_phase" in message


def test_an_unknown_effect_type_and_a_bad_range_are_refused_where_they_are() -> None:
    assert "rules.0.effects.0" in refused(document(rule("r", {"type": "lottery"})))
    reversed_range = points("r", 1, conditions=[{"type": "basket_total", "min": 5, "max": 1}])
    message = refused(document(reversed_range))
    assert "rules.0.conditions.0" in message and "min is larger than max" in message


def test_a_multiplier_of_an_unknown_rule_is_refused() -> None:
    message = refused(
        document(
            points("ok", 1), rule("x2", {"type": "multiplier", "factor": 2, "of": ["ok", "nope"]})
        )
    )
    assert "rules[1] (x2)" in message and "'nope'" in message and "'ok'" not in message


def test_an_experiment_that_does_not_exist_is_refused() -> None:
    no_arm = points("r", 1, experiment={"experiment": "double", "arm": "control"})
    message = refused(document(no_arm, experiments=[EXPERIMENT]))
    assert "rules[0] (r)" in message and "no arm 'control'" in message
    no_experiment = points("r", 1, experiment={"experiment": "triple", "arm": "test"})
    assert "no experiment 'triple'" in refused(document(no_experiment, experiments=[EXPERIMENT]))


def test_arms_must_add_up_to_a_hundred() -> None:
    uneven = {"name": "e", "arms": [{"name": "a", "percent": 50}, {"name": "b", "percent": 40}]}
    message = refused(document(experiments=[EXPERIMENT, uneven]))
    assert "experiments.1" in message and "add up to 100" in message


def test_duplicate_rule_ids_are_refused() -> None:
    message = refused(document(points("r", 1), points("r", 2)))
    assert "rules" in message and "must be unique" in message
    assert "must be unique" in refused(document(points("base", 1), earning=[BASE]))


def test_an_unknown_currency_and_an_unnamed_event_are_refused() -> None:
    message = refused(
        document(points("ok", 1), rule("r", {"type": "points", "amount": 1, "currency": "miles"}))
    )
    assert "rules[1] (r)" in message and "'miles'" in message
    assert "names the event" in refused(document(points("r", 1, trigger="event")))


def test_a_disabled_rule_is_not_compiled() -> None:
    compiled = program(points("on", 1), points("off", 2, enabled=False))
    assert [r.id for r in compiled.rules] == ["on"]


# --- properties ---------------------------------------------------------------------------


CATEGORIES = ["food", "drinks", "tobacco", None]
LINE = st.builds(
    BasketLine,
    sku=st.sampled_from(["a", "b", "c", "d"]),
    category=st.sampled_from(CATEGORIES),
    quantity=st.integers(1, 5),
    amount=st.integers(0, 10**6),
)
ROUNDING = st.sampled_from(["floor", "round", "ceil"])
CURRENCY = st.sampled_from(["points", "cashback"])
EXCLUDED = st.lists(st.sampled_from(["food", "drinks", "tobacco"]), max_size=2, unique=True)
EARNING = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("points_per_amount"),
            "points": st.integers(1, 10),
            "per": st.integers(1, 1000),
        },
        optional={"rounding": ROUNDING, "currency": CURRENCY, "exclude_categories": EXCLUDED},
    ),
    st.fixed_dictionaries(
        {"type": st.just("percent"), "basis_points": st.integers(1, 10_000)},
        optional={"rounding": ROUNDING, "currency": CURRENCY, "exclude_categories": EXCLUDED},
    ),
    st.fixed_dictionaries(
        {"type": st.just("multiplier"), "factor": st.decimals("1.01", "5", places=2)},
        optional={"rounding": ROUNDING, "currency": CURRENCY},
    ),
)
RULE = st.fixed_dictionaries(
    {"effects": st.lists(EARNING, min_size=1, max_size=2)},
    optional={
        "priority": st.integers(-3, 3),
        "group": st.sampled_from(["g1", "g2"]),
        "conditions": st.just([{"type": "basket_total", "min": 1000}]),
        "limits": st.builds(lambda cap: {"max_per_event": cap}, st.integers(1, 5000)),
    },
)


@st.composite
def programs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A random program document, and the same document with its rules shuffled."""
    bodies = draw(st.lists(RULE, min_size=1, max_size=6))
    rules = [{"id": f"r{i}", **body} for i, body in enumerate(bodies)]
    for rule in rules:  # a group holds earning rules or multipliers, never both
        if "group" in rule and any(e["type"] == "multiplier" for e in rule["effects"]):
            rule["group"] = "m-" + rule["group"]
    groups = draw(
        st.dictionaries(st.sampled_from(["g1", "g2"]), st.sampled_from(["best", "priority"]))
    )
    earning = draw(
        st.lists(
            st.sampled_from(
                [BASE, {"id": "cb", "type": "percent", "basis_points": 300, "currency": "cashback"}]
            ),
            unique_by=lambda r: r["id"],
        )
    )
    shuffled = draw(st.permutations(rules))
    return document(*rules, earning=earning, groups=groups), document(
        *shuffled, earning=earning, groups=groups
    )


def basket_context(lines: list[BasketLine], boost: bool) -> EvaluationContext:
    facts = MemberFacts(boosts=[Boost("b", "promo", 150, None)] if boost else [])
    return EvaluationContext(
        sum(line.amount for line in lines), lines, AT, "pos", "s1", member=facts
    )


@settings(max_examples=200, deadline=None)
@given(programs(), st.lists(LINE, max_size=6), st.booleans())
def test_random_programs_earn_whole_non_negative_amounts_deterministically(
    docs: tuple[dict[str, Any], dict[str, Any]], lines: list[BasketLine], boost: bool
) -> None:
    original, shuffled = (compile_program(ProgramSettings.model_validate(d)) for d in docs)
    context = basket_context(lines, boost)
    first = evaluate(original, context, explain=True)
    for effect in first.earned:
        assert type(effect.amount) is int and effect.amount >= 0
    # The same context again (its caches warm), a fresh one, and the shuffled document.
    assert evaluate(original, context, explain=True) == first
    assert evaluate(original, basket_context(lines, boost), explain=True) == first
    assert evaluate(shuffled, basket_context(lines, boost), explain=True) == first
    assert evaluate(original, basket_context(lines, boost)).effects == first.effects


@given(st.lists(LINE, max_size=6), st.integers(1, 10), st.integers(1, 10_000), EXCLUDED)
def test_rounding_orders_floor_round_ceil(
    lines: list[BasketLine], per_points: int, per: int, excluded: list[str]
) -> None:
    def amount(rounding: str) -> int:
        spec = {
            "type": "points_per_amount",
            "points": per_points,
            "per": per,
            "rounding": rounding,
            "exclude_categories": excluded,
        }
        return sum(
            e.amount
            for e in evaluate(program(rule("r", spec)), basket_context(lines, False)).earned
        )

    floor, half_up, ceil = amount("floor"), amount("round"), amount("ceil")
    eligible = sum(line.amount for line in lines if line.category not in excluded)
    assert floor == eligible * per_points // per
    assert floor <= half_up <= ceil <= floor + 1
    assert (ceil == floor) == (eligible * per_points % per == 0)


def test_shuffled_documents_agree_on_a_busy_program() -> None:
    rules = [
        points(f"p{i}", 10 * i, priority=i % 3, group=("g" if i % 2 else None)) for i in range(1, 9)
    ] + [rule("x", {"type": "multiplier", "factor": "1.5", "rounding": "round"})]
    expected = run(program(*rules, earning=[BASE]))
    generator = random.Random(7)
    for _ in range(20):
        generator.shuffle(rules)
        assert run(program(*rules, earning=[BASE])) == expected


def test_a_group_mixing_earning_rules_and_multipliers_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"groups \['g'\]: a group holds earning rules"):
        program(
            points("a", 5, group="g"),
            {"id": "m", "group": "g", "effects": [{"type": "multiplier", "factor": 2}]},
        )
    with pytest.raises(ValidationError, match=r"repeated: \['a'\]"):
        program(points("a", 5), points("a", 6))
