"""Rule type → compiler. Adding a rule type means adding one entry, never an if-chain."""

from collections.abc import Callable, Sequence

from kopilka.rules.domain import CompiledProgram, CompiledRule, EvaluationContext
from kopilka.rules.schemas import EarningRule, PerAmountRule, PercentRule


def _eligible_amount(context: EvaluationContext, excluded: frozenset[str]) -> int:
    if not excluded or not context.lines:
        return context.total
    return sum(line.amount for line in context.lines if line.category not in excluded)


def _compile_per_amount(rule: PerAmountRule) -> CompiledRule:
    excluded = frozenset(rule.exclude_categories)

    def compute(context: EvaluationContext) -> tuple[int, str]:
        eligible = _eligible_amount(context, excluded)
        # Floor: a partial money unit earns nothing (documented rounding of this rule).
        amount = eligible // rule.per * rule.points
        if amount == 0:
            return 0, f"eligible amount {eligible} is below {rule.per}"
        return amount, f"{rule.points} per {rule.per} of {eligible}"

    return CompiledRule(rule.id, rule.currency, compute)


def _compile_percent(rule: PercentRule) -> CompiledRule:
    excluded = frozenset(rule.exclude_categories)

    def compute(context: EvaluationContext) -> tuple[int, str]:
        eligible = _eligible_amount(context, excluded)
        amount = eligible * rule.basis_points // 10_000
        if amount == 0:
            return 0, f"{rule.basis_points} bp of {eligible} rounds down to 0"
        return amount, f"{rule.basis_points} bp of {eligible}"

    return CompiledRule(rule.id, rule.currency, compute)


COMPILERS: dict[str, Callable[..., CompiledRule]] = {
    "per_amount": _compile_per_amount,
    "percent": _compile_percent,
}


def compile_program(rules: Sequence[EarningRule]) -> CompiledProgram:
    return CompiledProgram(tuple(COMPILERS[rule.type](rule) for rule in rules))
