"""A program compiled once more, into one generated Python function, for evaluation without
a trace (the purchase path).

``rules.domain.evaluate`` walks the rules with generic loops: per rule it checks the
trigger, the schedule and the experiment, calls each condition, builds lists, looks up the
kind of effect. In CPython each of those steps costs a few hundred nanoseconds, which on a
realistic 50-rule program adds up to more than the arithmetic. Here each rule becomes a few
straight lines of source — its trigger compared with a constant, its conditions called in
one ``and`` chain, a plain earning effect computed in place — in the same order and with
the same phases, groups, limits and ties as ``evaluate``, whose helpers it calls for
anything less common (limits, groups, several effects). ``evaluate`` with ``explain`` stays
the reference: tests check that both give the same effects, in the same order.
"""

from collections.abc import Callable
from typing import Any

from kopilka.rules.compiled import (
    CompiledProgram,
    CompiledRule,
    Earned,
    EarnEffect,
    Effect,
)
from kopilka.rules.context import EvaluationContext

FastEvaluation = Callable[[EvaluationContext], list[Effect]]


class _Source:
    """Lines of the generated function and the constants it refers to by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}

    def constant(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def add(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _guard(source: _Source, rule: CompiledRule) -> str:
    """The ``if`` condition that lets a rule run: trigger, schedule and experiment, then
    its conditions in order (the first that fails stops the chain, as in ``evaluate``)."""
    if len(rule.triggers) == 1:
        parts = [f"trigger == {next(iter(rule.triggers))!r}"]
    else:
        parts = [f"trigger in {source.constant('T', rule.triggers)}"]
    # The same checks as ``domain._skip_reason``, in its order, with constants inlined.
    if rule.event_name is not None:
        parts.append(f"ctx.event_name == {rule.event_name!r}")
    if rule.valid_from is not None:
        parts.append(f"ctx.epoch >= {rule.valid_from.timestamp()!r}")
    if rule.valid_to is not None:
        parts.append(f"ctx.epoch < {rule.valid_to.timestamp()!r}")
    if rule.experiment is not None:
        name, arm = rule.experiment
        parts.append(f"ctx.member.arms.get({name!r}) == {arm!r}")
    parts += [f"{source.constant('C', c.test)}(ctx)" for c in rule.conditions]
    return " and ".join(parts)


class _Reads:
    """What the program's multipliers read of ``Earned``: only that is kept up to date."""

    def __init__(self, program: CompiledProgram) -> None:
        effects = [e for rule in program.rules for e in rule.effects if e.multiplier]
        self.opaque = any(e.compute_on is None for e in effects)  # reads it some other way
        self.rules = {r for e in effects for r in (e.reads_rules or ())}
        self.currencies = {e.reads_currency for e in effects if e.reads_currency is not None}

    def rule(self, rule: CompiledRule) -> bool:
        return self.opaque or rule.id in self.rules or rule.currency in self.currencies


def _simple(source: _Source, rule: CompiledRule, reads: _Reads) -> None:
    """An unconditional single earning effect: computed and credited at once."""
    compute = source.constant("E", rule.compute)
    rule_id, currency = repr(rule.id), repr(rule.currency)
    source.add(1, f"if {_guard(source, rule)}:")
    source.add(2, f"a = {compute}(ctx)")
    source.add(2, "if a > 0:")
    source.add(3, f"effects.append(EarnEffect({rule_id}, {currency}, a))")
    if reads.rule(rule):
        source.add(3, f"by_rule[{rule_id}] = a")
        source.add(3, f"by_currency[{currency}] = by_currency.get({currency}, 0) + a")


def _runs_generic(rule: CompiledRule) -> bool:
    """Whether a rule needs ``_run_rule`` (a group to decide, or limits on effects other
    than one plain earning)."""
    single = rule.effects[0] if len(rule.effects) == 1 else None
    if rule.fast:
        return False
    return rule.group is not None or single is None or single.compute is None


def _phased(source: _Source, rule: CompiledRule, slotted: bool, track: bool = True) -> None:
    """A rule of phase one (earning) or two (multipliers). With ``slotted`` (the phase has
    groups to decide) its effects wait in its slot, exactly as ``domain._phase`` does;
    otherwise they go straight out, in the same order."""
    name = source.constant("R", rule)
    rule_id, currency = repr(rule.id), repr(rule.currency)
    earn = f"EarnEffect({rule_id}, {currency}, a)"
    put_one = f"slots.append([{earn}])" if slotted else f"effects.append({earn})"
    source.add(1, f"if {_guard(source, rule)}:")
    single = rule.effects[0] if len(rule.effects) == 1 else None
    if _runs_generic(rule):
        source.add(2, f"o = RUN({name}, ctx, earned, False)")
        source.add(2, "outcomes.append(o)")
        source.add(2, "slots.append(o)")
        return
    if single is not None and single.compute is not None:
        compute = source.constant("E", single.compute)
        source.add(2, f"a = {compute}(ctx)")
        if not rule.fast:  # limited: ``_run_rule``'s cap and exhaustion, inline
            source.add(2, f"allowed, why = LIMITED({name}, a, ctx)")
            source.add(2, "if allowed < a or (allowed == 0 and why):")
            source.add(3, "a = allowed")
    elif single is not None and single.compute_on is not None:
        compute = source.constant("M", single.compute_on)  # a multiplier
        source.add(2, f"a = {compute}(earned)")
    else:
        source.add(2, f"got = FAST_EFFECTS({name}, ctx, earned)")
        source.add(2, "if got:")
        source.add(3, "slots.append(got)" if slotted else "effects.extend(got)")
        source.add(3, f"a = POINTS(got, {currency})")
        source.add(3, "if a:")
        source.add(4, f"gained.append(({rule_id}, {currency}, a))")
        return
    source.add(2, "if a > 0:")
    source.add(3, put_one)
    if track:
        source.add(3, f"gained.append(({rule_id}, {currency}, a))")


def _one_amount(rule: CompiledRule) -> bool:
    """One plain earning effect or a multiplier: the rule's outcome is a single amount."""
    single = rule.effects[0] if len(rule.effects) == 1 else None
    return single is not None and (single.compute is not None or single.compute_on is not None)


def _amount_only(rule: CompiledRule) -> bool:
    """One amount and no limits: nothing to decide but the amount."""
    return _one_amount(rule) and not rule.limits and rule.max_per_event is None


def _decided(
    source: _Source,
    phase: list[CompiledRule],
    groups: dict[str, str],
    tracked: Callable[[CompiledRule], bool],
) -> None:
    """A phase whose exclusive groups hold amount-only rules: every rule's amount first,
    then each group's winner (``best``: the largest amount, ``priority``: the highest
    priority; a tie keeps the earlier rule, as ``domain._losers`` does), then the effects
    in rule order."""
    for index, rule in enumerate(phase):
        rule_id, currency = repr(rule.id), repr(rule.currency)
        single = rule.effects[0]
        source.add(1, f"v{index} = 0")
        source.add(1, f"if {_guard(source, rule)}:")
        if not _one_amount(rule):  # ungrouped and unlimited, any effects
            source.add(2, f"v{index} = FAST_EFFECTS({source.constant('R', rule)}, ctx, earned)")
            continue
        if single.compute_on is not None:
            source.add(2, f"v{index} = {source.constant('M', single.compute_on)}(earned)")
        else:
            source.add(2, f"v{index} = {source.constant('E', single.compute)}(ctx)")
        if not _amount_only(rule):  # limited, ungrouped
            source.add(2, f"allowed, why = LIMITED({source.constant('R', rule)}, v{index}, ctx)")
            source.add(2, f"if allowed < v{index} or (allowed == 0 and why):")
            source.add(3, f"v{index} = allowed")
    members: dict[str, list[int]] = {}
    for index, rule in enumerate(phase):
        if rule.group is not None:
            members.setdefault(rule.group, []).append(index)
    for number, (group, indexes) in enumerate(members.items()):
        by_priority = groups.get(group, "best") == "priority"
        source.add(1, f"w{number} = -1")
        source.add(1, f"b{number} = 0")
        for index in indexes:
            score = str(phase[index].priority) if by_priority else f"v{index}"
            source.add(1, f"if v{index} > 0 and (w{number} == -1 or {score} > b{number}):")
            source.add(2, f"w{number} = {index}")
            source.add(2, f"b{number} = {score}")
    group_number = {group: number for number, group in enumerate(members)}
    for index, rule in enumerate(phase):
        rule_id, currency = repr(rule.id), repr(rule.currency)
        if not _one_amount(rule):
            source.add(1, f"if v{index}:")
            source.add(2, f"effects.extend(v{index})")
            source.add(2, f"a = POINTS(v{index}, {currency})")
            source.add(2, "if a:")
            source.add(3, f"gained.append(({rule_id}, {currency}, a))")
            continue
        won = "" if rule.group is None else f" and w{group_number[rule.group]} == {index}"
        source.add(1, f"if v{index} > 0{won}:")
        source.add(2, f"effects.append(EarnEffect({rule_id}, {currency}, v{index}))")
        if tracked(rule):
            source.add(2, f"gained.append(({rule_id}, {currency}, v{index}))")


def _never(rule: CompiledRule) -> bool:
    return False


def _strategy(phase: list[CompiledRule]) -> str:
    """``direct`` (nothing to decide), ``decided`` (groups of amount-only rules, decided
    inline) or ``slotted`` (the generic ``_run_rule`` and ``settle``)."""
    grouped = [r for r in phase if r.group is not None]
    if not grouped:
        return "slotted" if any(_runs_generic(r) for r in phase) else "direct"
    if all(_amount_only(r) for r in grouped) and not any(
        _runs_generic(r) for r in phase if r.group is None
    ):
        return "decided"
    return "slotted"


def generate(program: CompiledProgram, helpers: dict[str, Any]) -> FastEvaluation:
    """The program as one function ``fast(ctx) -> effects`` (before boosts); ``helpers``
    are ``evaluate``'s own: RUN, LIMITED, FAST_EFFECTS, POINTS and SETTLE."""
    source = _Source()
    source.names.update(helpers, EarnEffect=EarnEffect, Earned=Earned, GROUPS=program.groups)
    source.add(0, "def fast(ctx):")
    source.add(1, "trigger = ctx.trigger")
    source.add(1, "effects = []")
    source.add(1, "by_rule = {}")
    source.add(1, "by_currency = {}")
    simple = [r for r in program.rules if r.compute is not None]
    others = [r for r in program.rules if r.compute is None]
    reads = _Reads(program)
    for rule in simple:
        _simple(source, rule, reads)
    source.add(1, "earned = Earned(by_rule, by_currency)")
    for last, phase in (
        (False, [r for r in others if not r.is_multiplier]),
        (True, [r for r in others if r.is_multiplier]),
    ):
        if not phase:
            continue
        # Nothing reads what multipliers earn; earning rules matter only if a multiplier
        # reads them.
        tracked: Callable[[CompiledRule], bool] = _never if last else reads.rule
        strategy = _strategy(phase)
        source.add(1, "gained = []")
        if strategy == "slotted":
            source.add(1, "slots = []")
            source.add(1, "outcomes = []")
            for rule in phase:
                _phased(source, rule, slotted=True)
            source.add(1, "SETTLE(slots, outcomes, gained, GROUPS, effects, earned)")
            continue
        if strategy == "decided":
            _decided(source, phase, dict(program.groups), tracked)
        else:
            for rule in phase:
                _phased(source, rule, slotted=False, track=tracked(rule))
        if last:
            continue
        # What the phase earned counts only for the next phase.
        source.add(1, "for rule_id, currency, a in gained:")
        source.add(2, "by_rule[rule_id] = by_rule.get(rule_id, 0) + a")
        source.add(2, "by_currency[currency] = by_currency.get(currency, 0) + a")
    source.add(1, "return effects")
    namespace = dict(source.names)
    # The text is built here from rule ids (repr) and names of our own only.
    exec(compile("\n".join(source.lines), "<kopilka program>", "exec"), namespace)
    fast: FastEvaluation = namespace["fast"]
    return fast
