"""The generated fast path gives exactly what the generic evaluation gives (with a trace),
on the example programs and a mixed program of every kind of rule, in many situations."""

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.domain import (
    BasketLine,
    Boost,
    CompiledProgram,
    EvaluationContext,
    MemberFacts,
    evaluate,
    period_key,
)
from kopilka.rules.registry import compile_program

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from rules_eval import mixed_settings  # noqa: E402


def programs() -> list[tuple[str, CompiledProgram]]:
    found = [("mixed", compile_program(mixed_settings()))]
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        document = ProgramSettings.model_validate(yaml.safe_load(path.read_text()))
        found.append((path.stem, compile_program(document)))
    return found


def situations() -> list[EvaluationContext]:
    start = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)
    lines = [
        BasketLine("LATTE", "coffee", 2, 900, "house", frozenset({"hot"})),
        BasketLine("SHOE-1", "shoes", 1, 12_000, "brand", frozenset()),
        BasketLine("GIFT", "gift_cards", 1, 5_000),
        BasketLine("CAKE", "bakery", 3, 1_500),
    ]
    contexts = []
    for n in range(24):
        moment = start + timedelta(hours=7 * n)
        basket = lines[: 1 + n % 4]
        facts = MemberFacts(
            purchase_count=n % 9,
            lifetime_spend=10_000 * n,
            last_purchase_at=None if n % 5 == 0 else moment - timedelta(days=3 * n),
            recent=[(moment - timedelta(days=d), 2_000) for d in range(1, 1 + n % 10)],
            tier=["gold", "platinum", None][n % 3],
            arms={"double-weekend": "test" if n % 2 else "holdout"},
            boosts=[Boost("b1", "welcome", 200, None)] if n % 4 == 1 else [],
        )
        week = period_key("week", moment)
        facts.usage = {(f"limited-{i}", week): (n % 3, 4) for i in range(10)}
        trigger = ["purchase", "purchase", "purchase", "signup", "review", "event"][n % 6]
        contexts.append(
            EvaluationContext(
                total=sum(line.amount for line in basket),
                lines=basket,
                occurred_at=moment,
                channel=["pos", "app", "online"][n % 3],
                store="s1" if n % 2 else "s2",
                trigger=trigger,
                event_name="app_installed" if trigger == "event" else None,
                member=facts,
                program_usage={},
            )
        )
    return contexts


@pytest.mark.parametrize(
    ("name", "program"), programs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_fast_path_equals_the_generic_evaluation(name: str, program: CompiledProgram) -> None:
    assert program.fast is not None
    fired: list[Any] = []
    for context in situations():
        generic = evaluate(program, context, explain=True).effects
        context.amount_cache.clear()
        assert evaluate(program, context).effects == generic, (name, context.occurred_at)
        fired.extend(generic)
    assert fired  # the situations make the program do something
