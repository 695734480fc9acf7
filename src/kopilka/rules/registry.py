"""Rule type → compiler. Adding a rule type means adding one entry, never an if-chain."""

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kopilka.rules.domain import CompiledProgram, CompiledRule, EvaluationContext
from kopilka.rules.schemas import EarningRule, PerAmountRule, PercentRule


def _compile_per_amount(rule: PerAmountRule) -> CompiledRule:
    excluded = frozenset(rule.exclude_categories)
    per, points = rule.per, rule.points

    def compute(context: EvaluationContext) -> int:
        # Floor: a partial money unit earns nothing (documented rounding of this rule).
        return context.eligible_amount(excluded) // per * points

    def explain(context: EvaluationContext, amount: int) -> str:
        eligible = context.eligible_amount(excluded)
        if amount == 0:
            return f"eligible amount {eligible} is below {per}"
        return f"{points} per {per} of {eligible}"

    return CompiledRule(rule.id, rule.currency, compute, explain)


def _compile_percent(rule: PercentRule) -> CompiledRule:
    excluded = frozenset(rule.exclude_categories)
    basis_points = rule.basis_points

    def compute(context: EvaluationContext) -> int:
        return context.eligible_amount(excluded) * basis_points // 10_000

    def explain(context: EvaluationContext, amount: int) -> str:
        eligible = context.eligible_amount(excluded)
        if amount == 0:
            return f"{basis_points} bp of {eligible} rounds down to 0"
        return f"{basis_points} bp of {eligible}"

    return CompiledRule(rule.id, rule.currency, compute, explain)


COMPILERS: dict[str, Callable[[Any], CompiledRule]] = {
    "per_amount": _compile_per_amount,
    "percent": _compile_percent,
}


class _Document(Protocol):
    @property
    def earning(self) -> Sequence[EarningRule]: ...


def compile_program(document: _Document) -> CompiledProgram:
    """Compile a program document (``ProgramSettings``) once; evaluation reuses it."""
    return CompiledProgram(tuple(COMPILERS[rule.type](rule) for rule in document.earning))
