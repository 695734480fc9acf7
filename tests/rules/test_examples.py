"""The example programs in ``examples/``: each validates, compiles and earns what its opening
comment promises on a few realistic events (pure evaluation, no database). And
``docs/rules.md`` documents every registered condition and effect type with examples that
validate."""

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import TypeAdapter

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.conditions import CONDITIONS, Condition
from kopilka.rules.domain import (
    BasketLine,
    BenefitEffect,
    Boost,
    BoostUsed,
    CompiledProgram,
    EarnEffect,
    Evaluation,
    EvaluationContext,
    EventEffect,
    MemberFacts,
    evaluate,
)
from kopilka.rules.effects import EFFECTS, EffectSpec
from kopilka.rules.experiments import assign_arm
from kopilka.rules.registry import compile_program
from kopilka.rules.schemas import Rule

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs" / "rules.md"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@cache
def settings(name: str) -> ProgramSettings:
    return ProgramSettings.model_validate(yaml.safe_load((EXAMPLES / name).read_text("utf-8")))


@cache
def compiled(name: str) -> CompiledProgram:
    return compile_program(settings(name))


def earned(result: Evaluation, currency: str = "points") -> dict[str, int]:
    """What each rule earned in ``currency``."""
    return {e.rule_id: e.amount for e in result.earned if e.currency == currency}


def benefits(result: Evaluation) -> list[BenefitEffect]:
    return [e for e in result.effects if isinstance(e, BenefitEffect)]


def trace_of(result: Evaluation, rule_id: str) -> Any:
    assert result.trace is not None
    return next(t for t in result.trace if t.rule_id == rule_id)


# --- every example ---------------------------------------------------------------------------


def test_the_three_examples_are_there() -> None:
    assert {p.name for p in EXAMPLE_FILES} >= {
        "coffee-chain.yaml",
        "fashion-retailer.yaml",
        "online-shop.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_explains_itself_validates_and_compiles(path: Path) -> None:
    text = path.read_text("utf-8")
    assert text.startswith("# "), "an example opens with a comment explaining the program"
    document = ProgramSettings.model_validate(yaml.safe_load(text))
    program = compile_program(document)
    ids = [r.id for r in document.earning] + [r.id for r in document.rules if r.enabled]
    assert sorted(r.id for r in program.rules) == sorted(ids)
    assert [(-r.priority, r.id) for r in program.rules] == sorted(
        (-r.priority, r.id) for r in program.rules
    )


# --- coffee chain ----------------------------------------------------------------------------

COFFEE = "coffee-chain.yaml"
MOSCOW = ZoneInfo("Europe/Moscow")
WEDNESDAY_NOON = datetime(2026, 3, 4, 12, 0, tzinfo=MOSCOW)  # outside happy hours
WEDNESDAY_1530 = datetime(2026, 3, 4, 15, 30, tzinfo=MOSCOW)
SATURDAY_1530 = datetime(2026, 3, 7, 15, 30, tzinfo=MOSCOW)


def member_with_visits(
    at: datetime, *days_ago: float, earlier: int = 10, **more: Any
) -> MemberFacts:
    """A member who came ``days_ago`` before ``at`` (the rolling window's purchases) after
    ``earlier`` older visits."""
    moments = sorted(at - timedelta(days=d) for d in days_ago)
    return MemberFacts(
        joined_at=at - timedelta(days=400),
        purchase_count=earlier + len(moments),
        lifetime_spend=30_000 * (earlier + len(moments)),
        last_purchase_at=moments[-1] if moments else None,
        recent=[(moment, 30_000) for moment in moments],
        **more,
    )


def member_last_seen(at: datetime, days_ago: float, **more: Any) -> MemberFacts:
    """Ten purchases, the last of them ``days_ago`` before ``at``."""
    return MemberFacts(
        joined_at=at - timedelta(days=400),
        purchase_count=10,
        last_purchase_at=at - timedelta(days=days_ago),
        **more,
    )


def coffee(
    at: datetime, member: MemberFacts, lines: Sequence[BasketLine] | None = None
) -> EvaluationContext:
    """A latte and a croissant, 350 ₽."""
    lines = lines or [
        BasketLine("LATTE-M", "coffee", 1, 25_000),
        BasketLine("CROISSANT", "bakery", 1, 10_000),
    ]
    total = sum(line.amount for line in lines)
    return EvaluationContext(total, lines, at, "pos", "tverskaya-1", member=member, timezone=MOSCOW)


def test_coffee_base_earning_is_one_point_per_ten_roubles_floored() -> None:
    result = evaluate(compiled(COFFEE), coffee(WEDNESDAY_NOON, member_last_seen(WEDNESDAY_NOON, 1)))
    assert result.effects == [EarnEffect("base", "points", 35)]
    odd = [BasketLine("ESPRESSO", "coffee", 1, 15_990)]  # 159.90 ₽ → 15 points
    result = evaluate(
        compiled(COFFEE), coffee(WEDNESDAY_NOON, member_last_seen(WEDNESDAY_NOON, 1), odd)
    )
    assert earned(result) == {"base": 15}


def test_win_back_doubles_base_points_after_thirty_days_away() -> None:
    away = member_last_seen(WEDNESDAY_NOON, 31)
    result = evaluate(compiled(COFFEE), coffee(WEDNESDAY_NOON, away), explain=True)
    assert earned(result) == {"base": 35, "win-back": 35}
    assert trace_of(result, "win-back").fired


def test_win_back_starts_at_exactly_thirty_whole_days() -> None:
    assert earned(
        evaluate(compiled(COFFEE), coffee(WEDNESDAY_NOON, member_last_seen(WEDNESDAY_NOON, 30)))
    ) == {
        "base": 35,
        "win-back": 35,
    }
    almost = member_last_seen(WEDNESDAY_NOON, 29.9)
    assert earned(evaluate(compiled(COFFEE), coffee(WEDNESDAY_NOON, almost))) == {"base": 35}


def test_no_win_back_for_a_member_who_came_yesterday_and_the_trace_says_why() -> None:
    result = evaluate(
        compiled(COFFEE), coffee(WEDNESDAY_NOON, member_last_seen(WEDNESDAY_NOON, 1)), explain=True
    )
    assert earned(result) == {"base": 35}
    trace = trace_of(result, "win-back")
    assert not trace.fired
    assert trace.reason == "days_since_last_purchase not met"
    assert (trace.failed.actual, trace.failed.expected) == (1, {"min": 30})


def test_no_win_back_on_a_first_purchase() -> None:
    newcomer = MemberFacts(joined_at=WEDNESDAY_NOON - timedelta(hours=1))
    result = evaluate(compiled(COFFEE), coffee(WEDNESDAY_NOON, newcomer), explain=True)
    assert earned(result) == {"base": 35}
    assert trace_of(result, "win-back").failed.actual is None


def test_happy_hours_double_points_on_weekday_afternoons_only() -> None:
    program = compiled(COFFEE)
    regular = member_last_seen(WEDNESDAY_1530, 1)
    assert earned(evaluate(program, coffee(WEDNESDAY_1530, regular))) == {
        "base": 35,
        "happy-hours": 35,
    }
    assert earned(evaluate(program, coffee(SATURDAY_1530, regular))) == {"base": 35}
    five_pm = WEDNESDAY_1530.replace(hour=17, minute=0)  # the window ends at 17:00, exclusive
    assert earned(evaluate(program, coffee(five_pm, regular))) == {"base": 35}
    # 15:30 in Moscow is 12:30 UTC: local time is the program's time zone, not UTC.
    utc_afternoon = datetime(2026, 3, 4, 15, 30, tzinfo=ZoneInfo("UTC"))
    assert earned(evaluate(program, coffee(utc_afternoon, regular))) == {"base": 35}


def test_happy_hours_and_win_back_do_not_stack() -> None:
    back = member_last_seen(WEDNESDAY_1530, 45)
    result = evaluate(compiled(COFFEE), coffee(WEDNESDAY_1530, back), explain=True)
    assert earned(result) == {"base": 35, "happy-hours": 35}  # double, not triple
    assert trace_of(result, "win-back").reason == (
        "group double-points: happy-hours applies instead"
    )


def test_every_sixth_visit_with_a_coffee_brings_a_free_coffee() -> None:
    program = compiled(COFFEE)
    sixth = MemberFacts(purchase_count=5, last_purchase_at=WEDNESDAY_NOON - timedelta(days=2))
    free = BenefitEffect(
        "sixth-coffee-free", "free_sample", {"sku": "COFFEE-OF-THE-DAY", "quantity": 1}, None
    )
    assert benefits(evaluate(program, coffee(WEDNESDAY_NOON, sixth))) == [free]
    twelfth = MemberFacts(purchase_count=11, last_purchase_at=WEDNESDAY_NOON - timedelta(days=2))
    assert benefits(evaluate(program, coffee(WEDNESDAY_NOON, twelfth))) == [free]
    seventh = MemberFacts(purchase_count=6, last_purchase_at=WEDNESDAY_NOON - timedelta(days=2))
    assert benefits(evaluate(program, coffee(WEDNESDAY_NOON, seventh))) == []
    no_coffee = [BasketLine("CROISSANT", "bakery", 2, 20_000)]
    result = evaluate(program, coffee(WEDNESDAY_NOON, sixth, no_coffee), explain=True)
    assert benefits(result) == []
    assert trace_of(result, "sixth-coffee-free").failed.condition == "line_match"


def test_regulars_with_eight_visits_in_thirty_days_get_the_exclusive_reward() -> None:
    program = compiled(COFFEE)
    regular = member_with_visits(WEDNESDAY_NOON, 1, 3, 6, 9, 13, 17, 22, 28)
    result = evaluate(program, coffee(WEDNESDAY_NOON, regular))
    assert benefits(result) == [
        BenefitEffect("regulars-exclusive", "reward", {"reward": "regulars-tasting"}, 30)
    ]
    assert earned(result) == {"base": 35}  # the reward comes on top of the usual points


def test_seven_visits_in_thirty_days_are_not_enough() -> None:
    program = compiled(COFFEE)
    # Eight visits, but the oldest is 31 days ago: outside the window.
    almost = member_with_visits(WEDNESDAY_NOON, 1, 3, 6, 9, 13, 17, 22, 31)
    result = evaluate(program, coffee(WEDNESDAY_NOON, almost), explain=True)
    assert benefits(result) == []
    failed = trace_of(result, "regulars-exclusive").failed
    assert (failed.condition, failed.actual, failed.expected) == (
        "purchases_in_30_days",
        7,
        {"min": 8},
    )


def test_the_regulars_reward_comes_once_a_calendar_month() -> None:
    program = compiled(COFFEE)
    visits = (1, 3, 6, 9, 13, 17, 22, 28)
    had_it = member_with_visits(
        WEDNESDAY_NOON, *visits, usage={("regulars-exclusive", "m2026-03"): (1, 0)}
    )
    result = evaluate(program, coffee(WEDNESDAY_NOON, had_it), explain=True)
    assert benefits(result) == []
    assert trace_of(result, "regulars-exclusive").reason == "used 1 of 1 times per member month"
    last_month = member_with_visits(
        WEDNESDAY_NOON, *visits, usage={("regulars-exclusive", "m2026-02"): (1, 0)}
    )
    assert [b.rule_id for b in benefits(evaluate(program, coffee(WEDNESDAY_NOON, last_month)))] == [
        "regulars-exclusive"
    ]


def test_birthday_week_treat_once_a_year() -> None:
    program = compiled(COFFEE)
    treat = BenefitEffect("birthday-week", "reward", {"reward": "birthday-dessert"}, 14)
    born = member_last_seen(WEDNESDAY_NOON, 1, birthday=datetime(1990, 3, 7).date())
    assert benefits(evaluate(program, coffee(WEDNESDAY_NOON, born))) == [treat]
    later = member_last_seen(WEDNESDAY_NOON, 1, birthday=datetime(1990, 3, 8).date())
    assert benefits(evaluate(program, coffee(WEDNESDAY_NOON, later))) == []
    again = member_last_seen(
        WEDNESDAY_NOON,
        1,
        birthday=datetime(1990, 3, 7).date(),
        usage={("birthday-week", "y2026"): (1, 0)},
    )
    assert benefits(evaluate(program, coffee(WEDNESDAY_NOON, again))) == []


# --- fashion retailer ------------------------------------------------------------------------

FASHION = "fashion-retailer.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
MAY = datetime(2026, 5, 12, 14, 0, tzinfo=BERLIN)
JUNE = datetime(2026, 6, 10, 14, 0, tzinfo=BERLIN)


def outfit(
    at: datetime = MAY,
    member: MemberFacts | None = None,
    lines: Sequence[tuple[str, str, int]] = (
        ("DRESS-42", "dresses", 12_000),
        ("GIFT-50", "gift-cards", 5_000),
    ),
    **more: Any,
) -> EvaluationContext:
    basket = [BasketLine(sku, category, 1, amount) for sku, category, amount in lines]
    member = member if member is not None else MemberFacts(purchase_count=3)
    return EvaluationContext(
        sum(line.amount for line in basket),
        basket,
        at,
        "web",
        None,
        member=member,
        timezone=BERLIN,
        **more,
    )


def test_fashion_base_points_skip_gift_cards() -> None:
    assert evaluate(compiled(FASHION), outfit()).effects == [EarnEffect("base", "points", 120)]


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (None, {"base": 120}),
        ("silver", {"base": 120}),
        ("gold", {"base": 120, "tier-gold": 60}),
        ("platinum", {"base": 120, "tier-platinum": 120}),
    ],
)
def test_tier_multipliers(tier: str | None, expected: dict[str, int]) -> None:
    member = MemberFacts(purchase_count=3, tier=tier)
    assert earned(evaluate(compiled(FASHION), outfit(member=member))) == expected


def test_the_gold_bonus_rounds_down() -> None:
    member = MemberFacts(purchase_count=3, tier="gold")
    small = outfit(member=member, lines=[("SOCKS", "accessories", 3_350)])  # 33 base points
    assert earned(evaluate(compiled(FASHION), small)) == {"base": 33, "tier-gold": 16}


def test_summer_shoes_earn_extra_inside_their_schedule_only() -> None:
    program = compiled(FASHION)
    lines = [("SANDAL-39", "shoes", 8_000), ("DRESS-42", "dresses", 12_000)]
    assert earned(evaluate(program, outfit(JUNE, lines=lines))) == {
        "base": 200,
        "summer-shoes": 160,
    }
    last_minute = datetime(2026, 6, 30, 23, 59, tzinfo=BERLIN)
    assert earned(evaluate(program, outfit(last_minute, lines=lines)))["summer-shoes"] == 160
    over = datetime(2026, 7, 1, 0, 0, tzinfo=BERLIN)
    result = evaluate(program, outfit(over, lines=lines), explain=True)
    assert earned(result) == {"base": 200}
    assert trace_of(result, "summer-shoes").reason == "ended 2026-07-01T00:00:00+02:00"
    assert earned(evaluate(program, outfit(MAY, lines=lines))) == {"base": 200}
    no_shoes = evaluate(program, outfit(JUNE))
    assert earned(no_shoes) == {"base": 120}


def test_summer_shoes_stop_at_the_campaign_budget() -> None:
    program = compiled(FASHION)
    lines = [("SANDAL-39", "shoes", 8_000)]
    nearly_spent = {("summer-shoes", "ever"): (3_100, 499_900)}
    result = evaluate(program, outfit(JUNE, lines=lines, program_usage=nearly_spent), explain=True)
    assert earned(result) == {"base": 80, "summer-shoes": 100}
    assert trace_of(result, "summer-shoes").reason == "499900 of 500000 per program ever used"
    spent = {("summer-shoes", "ever"): (3_101, 500_000)}
    assert earned(evaluate(program, outfit(JUNE, lines=lines, program_usage=spent))) == {"base": 80}


def test_the_first_purchase_brings_a_welcome_coupon() -> None:
    program = compiled(FASHION)
    coupon = BenefitEffect("welcome-coupon", "coupon", {"campaign": "welcome-15"}, 30)
    assert benefits(evaluate(program, outfit(member=MemberFacts()))) == [coupon]
    assert benefits(evaluate(program, outfit(member=MemberFacts(purchase_count=1)))) == []


def test_signing_up_earns_250_points_once() -> None:
    program = compiled(FASHION)

    def signup(member: MemberFacts) -> EvaluationContext:
        return EvaluationContext(
            0, (), MAY, "web", None, trigger="signup", member=member, timezone=BERLIN
        )

    assert evaluate(program, signup(MemberFacts())).effects == [
        EarnEffect("signup-bonus", "points", 250)
    ]
    again = MemberFacts(usage={("signup-bonus", "ever"): (1, 250)})
    assert evaluate(program, signup(again)).effects == []
    assert "signup-bonus" not in earned(evaluate(program, outfit(member=MemberFacts())))


def test_fashion_points_are_pending_for_the_return_window() -> None:
    document = settings(FASHION)
    assert (document.pending_days, document.expiry.policy, document.expiry.days) == (
        14,
        "days",
        365,
    )


# --- online shop -----------------------------------------------------------------------------

SHOP = "online-shop.yaml"
NEW_YORK = ZoneInfo("America/New_York")
TUESDAY = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)
SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=NEW_YORK)
HOLDOUT = {"double-weekend": "holdout"}
TEST_ARM = {"double-weekend": "test"}


def order(
    at: datetime = TUESDAY,
    member: MemberFacts | None = None,
    lines: Sequence[tuple[str, str, int]] = (
        ("HEADPHONES", "electronics", 8_000),
        ("GIFT-CARD-50", "gift-cards", 5_000),
    ),
    **more: Any,
) -> EvaluationContext:
    basket = [BasketLine(sku, category, 1, amount) for sku, category, amount in lines]
    member = member if member is not None else MemberFacts(purchase_count=2, arms=dict(HOLDOUT))
    total = sum(line.amount for line in basket)
    return EvaluationContext(
        total, basket, at, "web", None, member=member, timezone=NEW_YORK, **more
    )


def test_points_cashback_and_free_delivery_on_a_regular_order() -> None:
    result = evaluate(compiled(SHOP), order())
    assert earned(result) == {"base": 80}  # gift cards earn nothing
    assert earned(result, "cashback") == {"cashback": 240}  # 3 % of 80 $, in cents
    assert benefits(result) == [BenefitEffect("free-delivery", "free_delivery", {}, None)]


def test_no_free_delivery_below_fifty_dollars() -> None:
    small = order(lines=[("CABLE", "electronics", 4_999)])
    result = evaluate(compiled(SHOP), small, explain=True)
    assert benefits(result) == []
    assert earned(result) == {"base": 49}
    assert earned(result, "cashback") == {"cashback": 149}  # 149.97 cents, floored
    failed = trace_of(result, "free-delivery").failed
    assert (failed.actual, failed.expected) == (4_999, {"min": 5_000})


def test_weekend_double_points_only_in_the_test_arm() -> None:
    program = compiled(SHOP)
    lines = [("JACKET", "apparel", 15_000)]
    tested = MemberFacts(purchase_count=2, arms=dict(TEST_ARM))
    assert earned(evaluate(program, order(SATURDAY, tested, lines))) == {
        "base": 150,
        "weekend-double": 150,
    }
    held_out = MemberFacts(purchase_count=2, arms=dict(HOLDOUT))
    result = evaluate(program, order(SATURDAY, held_out, lines), explain=True)
    assert earned(result) == {"base": 150}
    assert trace_of(result, "weekend-double").reason == (
        "member is in arm 'holdout' of experiment 'double-weekend', not 'test'"
    )
    assert earned(evaluate(program, order(TUESDAY, tested, lines))) == {"base": 150}


def test_the_weekend_bonus_is_capped_per_member_and_day() -> None:
    program = compiled(SHOP)
    lines = [("LAPTOP", "electronics", 80_000)]
    tested = MemberFacts(purchase_count=2, arms=dict(TEST_ARM))
    assert earned(evaluate(program, order(SATURDAY, tested, lines))) == {
        "base": 800,
        "weekend-double": 500,
    }
    second_today = MemberFacts(
        purchase_count=3, arms=dict(TEST_ARM), usage={("weekend-double", "d2026-03-07"): (1, 400)}
    )
    assert earned(evaluate(program, order(SATURDAY, second_today, lines))) == {
        "base": 800,
        "weekend-double": 100,
    }


def test_experiment_arms_are_sticky_and_split_ten_to_ninety() -> None:
    experiment = settings(SHOP).experiments[0]
    members = [uuid5(NAMESPACE_URL, f"member-{i}") for i in range(5_000)]
    arms = [assign_arm(experiment, member) for member in members]
    assert arms == [assign_arm(experiment, member) for member in members]
    share = arms.count("test") / len(arms)
    assert 0.08 < share < 0.12
    assert set(arms) == {"test", "holdout"}


def test_a_review_gives_a_boost_that_doubles_the_next_order() -> None:
    program = compiled(SHOP)
    review = EvaluationContext(
        0, (), TUESDAY, "web", None, trigger="review", member=MemberFacts(), timezone=NEW_YORK
    )
    assert evaluate(program, review).effects == [
        BenefitEffect("review-boost", "boost", {"factor_percent": 200}, 14)
    ]
    boost = Boost("b-1", "review-boost", 200, TUESDAY + timedelta(days=14))
    boosted = MemberFacts(purchase_count=2, arms=dict(HOLDOUT), boosts=[boost])
    result = evaluate(program, order(TUESDAY + timedelta(days=3), boosted))
    assert earned(result) == {"base": 80, "review-boost": 80}
    assert earned(result, "cashback") == {"cashback": 240}  # boosts are for points only
    assert BoostUsed("b-1", "review-boost") in result.effects
    too_late = MemberFacts(purchase_count=2, arms=dict(HOLDOUT), boosts=[boost])
    late = evaluate(program, order(TUESDAY + timedelta(days=15), too_late))
    assert earned(late) == {"base": 80}
    assert not any(isinstance(e, BoostUsed) for e in late.effects)


def test_installing_the_app_earns_200_points_once() -> None:
    program = compiled(SHOP)

    def event(name: str, member: MemberFacts) -> EvaluationContext:
        return EvaluationContext(
            0,
            (),
            TUESDAY,
            "app",
            None,
            trigger="event",
            event_name=name,
            member=member,
            timezone=NEW_YORK,
        )

    assert evaluate(program, event("app_installed", MemberFacts())).effects == [
        EarnEffect("app-installed", "points", 200)
    ]
    assert evaluate(program, event("newsletter_opened", MemberFacts())).effects == []
    installed = MemberFacts(usage={("app-installed", "ever"): (1, 200)})
    assert evaluate(program, event("app_installed", installed)).effects == []


def test_a_big_order_emits_the_big_spender_badge_once() -> None:
    program = compiled(SHOP)
    lines = [("SOFA", "furniture", 25_000)]
    badge = EventEffect("big-spender-badge", "badge.earned", {"badge": "big-spender"})
    assert badge in evaluate(program, order(lines=lines)).effects
    has_it = MemberFacts(
        purchase_count=5, arms=dict(HOLDOUT), usage={("big-spender-badge", "ever"): (1, 0)}
    )
    assert badge not in evaluate(program, order(member=has_it, lines=lines)).effects
    assert badge not in evaluate(program, order()).effects  # 130 $ is not big enough


# --- docs/rules.md ---------------------------------------------------------------------------

CONDITION_ADAPTER: TypeAdapter[Any] = TypeAdapter(Condition)
EFFECT_ADAPTER: TypeAdapter[Any] = TypeAdapter(EffectSpec)


def doc_sections(text: str, title: str) -> dict[str, str]:
    """The ``#### `name` `` subsections of the ``## title`` section: name → body."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/rules.md has no section '## {title}'"
    parts = re.split(r"^#### `([a-z_]+)`[^\n]*\n", match.group(1), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def condition_types(condition: Any) -> set[str]:
    """The types of a condition and of the conditions nested in it."""
    nested = [*getattr(condition, "conditions", []), getattr(condition, "condition", None)]
    return {condition.type}.union(*(condition_types(c) for c in nested if c is not None))


def yaml_blocks(text: str) -> list[Any]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_docs_document_every_condition_type_with_a_valid_example() -> None:
    sections = doc_sections(DOCS.read_text("utf-8"), "Conditions")
    assert sorted(sections) == sorted(CONDITIONS)
    for name, body in sections.items():
        blocks = yaml_blocks(body)
        assert blocks, f"condition {name}: no YAML example"
        for block in blocks:
            conditions = [CONDITION_ADAPTER.validate_python(c) for c in block["conditions"]]
            found = set().union(*(condition_types(c) for c in conditions))
            assert name in found, f"condition {name}: example of another"


def test_docs_document_every_effect_type_with_a_valid_example() -> None:
    sections = doc_sections(DOCS.read_text("utf-8"), "Effects")
    assert sorted(sections) == sorted(EFFECTS)
    for name, body in sections.items():
        blocks = yaml_blocks(body)
        assert blocks, f"effect {name}: no YAML example"
        for block in blocks:
            effects = [EFFECT_ADAPTER.validate_python(e) for e in block["effects"]]
            assert name in {e.type for e in effects}, f"effect {name}: example of another"


def test_every_registered_type_name_appears_in_the_docs_as_a_heading() -> None:
    text = DOCS.read_text("utf-8")
    for name in [*CONDITIONS, *EFFECTS]:
        assert re.search(rf"^#### `{name}`$", text, re.M), f"docs/rules.md: no heading for {name}"


def test_every_yaml_example_in_the_docs_is_valid() -> None:
    """Blocks of conditions or effects validate as such, a block with ``id`` and
    ``effects`` as a rule, anything else as a whole program document."""
    blocks = yaml_blocks(DOCS.read_text("utf-8"))
    assert len(blocks) > len(CONDITIONS) + len(EFFECTS)
    for block in blocks:
        assert isinstance(block, dict), block
        if set(block) == {"conditions"}:
            for item in block["conditions"]:
                CONDITION_ADAPTER.validate_python(item)
        elif set(block) == {"effects"}:
            for item in block["effects"]:
                EFFECT_ADAPTER.validate_python(item)
        elif "id" in block and "effects" in block:
            Rule.model_validate(block)
        else:
            compile_program(ProgramSettings.model_validate(block))


def test_the_readme_links_the_rules_reference() -> None:
    assert "(docs/rules.md)" in (ROOT / "README.md").read_text("utf-8")
