"""Compiling a program document into a ``CompiledProgram``: once per published version.

Condition and effect types compile themselves (``conditions.CONDITIONS``,
``effects.EFFECTS``); this module orders the rules, collects what member facts they read
and turns the short ``earning`` entries into ordinary rules.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from kopilka.rules.conditions import window_days
from kopilka.rules.domain import (
    FAST_HELPERS,
    CompiledEffect,
    CompiledProgram,
    CompiledRule,
    Earned,
    EarnEffect,
    Effect,
    EvaluationContext,
    Limit,
)
from kopilka.rules.fastpath import generate
from kopilka.rules.schemas import EarningRule, Experiment, PerAmountRule, PercentRule, Rule


def _base_effect(
    compute: Callable[[EvaluationContext], int],
    currency: str,
    rule_id: str,
    explain: Callable[[EvaluationContext, int], str],
) -> CompiledEffect:
    def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
        amount = compute(context)
        return [EarnEffect(rule_id, currency, amount)] if amount > 0 else []

    return CompiledEffect(apply, explain, compute=compute)


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

    effect = _base_effect(compute, rule.currency, rule.id, explain)
    return CompiledRule(rule.id, rule.currency, (), (effect,))


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

    effect = _base_effect(compute, rule.currency, rule.id, explain)
    return CompiledRule(rule.id, rule.currency, (), (effect,))


EARNING_COMPILERS: dict[str, Callable[[Any], CompiledRule]] = {
    "per_amount": _compile_per_amount,
    "percent": _compile_percent,
}


def _limits(rule: Rule) -> tuple[Limit, ...]:
    limits = [
        Limit(limit.per, limit.period, limit.times, limit.amount) for limit in rule.limits.periods
    ]
    if rule.limits.budget is not None:
        limits.append(Limit("program", "ever", None, rule.limits.budget))
    return tuple(limits)


def compile_rule(rule: Rule) -> CompiledRule:
    conditions = tuple(condition.compile() for condition in rule.conditions)
    return CompiledRule(
        id=rule.id,
        currency=rule.currency(),
        conditions=conditions,
        effects=tuple(effect.compile(rule.id) for effect in rule.effects),
        triggers=frozenset({rule.trigger}),
        event_name=rule.event,
        priority=rule.priority,
        group=rule.group,
        valid_from=rule.schedule.valid_from,
        valid_to=rule.schedule.valid_to,
        max_per_event=rule.limits.max_per_event,
        limits=_limits(rule),
        experiment=(rule.experiment.experiment, rule.experiment.arm) if rule.experiment else None,
    )


def _needs(rules: Sequence[Rule], compiled: Sequence[CompiledRule]) -> frozenset[str]:
    """The member facts the program reads: its compiled conditions' and its rules' own."""
    needs: set[str] = {need for rule in compiled for c in rule.conditions for need in c.needs}
    for rule in rules:
        if rule.experiment is not None:
            needs.add("experiments")
        if rule.limits.periods or rule.limits.budget:
            needs.add("usage")
        if any(effect.type == "boost" for effect in rule.effects):
            needs.add("boosts")
    return frozenset(needs)


class _Document(Protocol):
    @property
    def earning(self) -> Sequence[EarningRule]: ...

    @property
    def rules(self) -> Sequence[Rule]: ...

    @property
    def groups(self) -> Mapping[str, str]: ...

    @property
    def experiments(self) -> Sequence[Experiment]: ...


def compile_program(document: _Document) -> CompiledProgram:
    """Compile a program document (``ProgramSettings``) once; evaluation reuses it.

    Rules run by priority, highest first, then by id: a fixed order that does not depend on
    where a rule sits in the document or when it was edited. Base ``earning`` entries keep
    their priority 0 and their place among the rest by id.
    """
    enabled = [rule for rule in document.rules if rule.enabled]
    compiled = [EARNING_COMPILERS[rule.type](rule) for rule in document.earning]
    compiled += [compile_rule(rule) for rule in enabled]
    compiled.sort(key=lambda rule: (-rule.priority, rule.id))
    window = max((window_days(c) for rule in enabled for c in rule.conditions), default=0)
    needs = _needs(enabled, compiled)
    program = CompiledProgram(
        rules=tuple(compiled),
        groups=dict(document.groups),
        needs=needs | ({"history"} if window else frozenset()),
        window_days=window,
    )
    return replace(program, fast=generate(program, FAST_HELPERS))
