"""The pure rules engine, without a database."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.domain import BasketLine, EarnEffect, EvaluationContext, evaluate
from kopilka.rules.registry import compile_program
from kopilka.rules.schemas import EarningRule

NOON = datetime(2026, 5, 1, 12, tzinfo=UTC)
RULES = TypeAdapter(list[EarningRule])


def basket(*lines: tuple[str, int], status: str = "active") -> EvaluationContext:
    items = [
        BasketLine(f"sku-{i}", category, 1, amount) for i, (category, amount) in enumerate(lines)
    ]
    return EvaluationContext(sum(a for _, a in lines), items, NOON, "pos", "s1", status)


def program(*rules: dict[str, object]):  # type: ignore[no-untyped-def]
    return compile_program(
        SimpleNamespace(
            earning=RULES.validate_python(list(rules)), rules=[], groups={}, experiments=[]
        )
    )


def test_per_amount_floors_and_skips_excluded_categories() -> None:
    rules = program(
        {"id": "base", "type": "per_amount", "points": 1, "per": 100},
        {
            "id": "no-tobacco",
            "type": "per_amount",
            "points": 2,
            "per": 1000,
            "exclude_categories": ["tobacco"],
        },
    )
    result = evaluate(rules, basket(("coffee", 1_999), ("tobacco", 5_000)))
    assert result.effects == [
        EarnEffect("base", "points", 69),
        EarnEffect("no-tobacco", "points", 2),
    ]
    assert result.trace is None


def test_percent_cashback_rounds_down() -> None:
    rules = program({"id": "cb", "type": "percent", "currency": "cashback", "basis_points": 350})
    assert evaluate(rules, basket(("x", 999))).effects == [EarnEffect("cb", "cashback", 34)]
    assert evaluate(rules, basket(("x", 28))).effects == []


def test_explain_says_why_each_rule_fired_or_not() -> None:
    rules = program(
        {"id": "base", "type": "per_amount", "points": 1, "per": 1000},
        {"id": "cb", "type": "percent", "basis_points": 100},
    )
    trace = evaluate(rules, basket(("x", 900)), explain=True).trace
    assert trace is not None
    assert [(t.rule_id, t.fired) for t in trace] == [("base", False), ("cb", True)]
    assert trace[0].reason == "eligible amount 900 is below 1000"
    assert trace[1].reason == "100 bp of 900" and trace[1].amount == 9


def test_a_blocked_member_earns_nothing_and_the_trace_says_so() -> None:
    rules = program({"id": "base", "type": "per_amount", "points": 1, "per": 100})
    result = evaluate(rules, basket(("x", 10_000), status="blocked"), explain=True)
    assert result.effects == []
    assert result.trace is not None and result.trace[0].reason == "member is blocked"


def test_settings_reject_unknown_rule_types_and_currencies() -> None:
    with pytest.raises(ValidationError, match="lottery"):
        RULES.validate_python([{"id": "x", "type": "lottery"}])
    with pytest.raises(ValidationError, match="not one of the program's currencies"):
        ProgramSettings.model_validate(
            {"earning": [{"id": "x", "type": "per_amount", "currency": "miles"}]}
        )


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(0, 10**6)),
        min_size=0,
        max_size=12,
    ),
    st.sets(st.sampled_from(["a", "b", "c"])),
)
def test_eligible_amount_matches_a_direct_sum(
    lines: list[tuple[str | None, int]], excluded: set[str]
) -> None:
    context = EvaluationContext(
        sum(a for _, a in lines), [BasketLine("s", c, 1, a) for c, a in lines], NOON, "pos", None
    )
    expected = sum(a for c, a in lines if c not in excluded) if lines else context.total
    assert context.eligible_amount(frozenset(excluded)) == expected
    assert context.eligible_amount(frozenset(excluded)) == expected  # cached answer agrees
