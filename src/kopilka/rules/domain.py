"""The pure evaluation of a program's rules against one event (a purchase, a sign-up, …).

``evaluate`` takes a compiled program and an evaluation context and returns the effects to
apply, plus, when asked, a trace of every rule: fired or not, and for a rule that did not
fire the first failing condition with the value it saw and the value it wanted. No I/O:
tens of microseconds per basket, so the trace, which costs more than the arithmetic, is
only built for ``explain``.

The order is fixed and documented (docs/rules.md): rules run by priority (highest first),
then by id; earning effects first, then multipliers, which see what the rules before them
earned; then each rule's limits; then exclusive groups keep one rule each.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from kopilka.rules.compiled import (
    BenefitEffect,
    BoostUsed,
    CompiledCondition,
    CompiledEffect,
    CompiledProgram,
    CompiledRule,
    Earned,
    EarnEffect,
    Effect,
    Evaluation,
    EventEffect,
    FailedCondition,
    Limit,
    RuleTrace,
    TagEffect,
)
from kopilka.rules.context import UTC_ZONE, BasketLine, Boost, EvaluationContext, MemberFacts

__all__ = [
    "UTC_ZONE",
    "BasketLine",
    "BenefitEffect",
    "Boost",
    "BoostUsed",
    "CompiledCondition",
    "CompiledEffect",
    "CompiledProgram",
    "CompiledRule",
    "EarnEffect",
    "Earned",
    "Effect",
    "Evaluation",
    "EvaluationContext",
    "EventEffect",
    "FailedCondition",
    "Limit",
    "MemberFacts",
    "RuleTrace",
    "TagEffect",
    "evaluate",
    "period_key",
]

# --- evaluation --------------------------------------------------------------------------


def period_key(period: str, moment: datetime) -> str:
    """The bucket a limit counts in: local day, ISO week, month, year, or ever."""
    if period == "day":
        return moment.strftime("d%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"w{year}-{week:02d}"
    if period == "month":
        return moment.strftime("m%Y-%m")
    if period == "year":
        return moment.strftime("y%Y")
    return "ever"


def _skip_reason(rule: CompiledRule, context: EvaluationContext) -> str | None:
    """Why the rule does not apply to this event at all (trigger, schedule, experiment)."""
    if context.trigger not in rule.triggers:
        return f"trigger is {context.trigger}"
    if rule.plain:
        return None
    if rule.event_name is not None and context.event_name != rule.event_name:
        return f"event is {context.event_name}, not {rule.event_name}"
    if rule.valid_from is not None and context.occurred_at < rule.valid_from:
        return f"starts {rule.valid_from.isoformat()}"
    if rule.valid_to is not None and context.occurred_at >= rule.valid_to:
        return f"ended {rule.valid_to.isoformat()}"
    if rule.experiment is not None:
        name, arm = rule.experiment
        actual = context.member.arms.get(name)
        if actual != arm:
            return f"member is in arm {actual!r} of experiment {name!r}, not {arm!r}"
    return None


def _limited(rule: CompiledRule, amount: int, context: EvaluationContext) -> tuple[int, str]:
    """``amount`` cut to what the rule's limits still allow, and why it was cut."""
    reason = ""
    if rule.max_per_event is not None and amount > rule.max_per_event:
        amount, reason = rule.max_per_event, f"capped at {rule.max_per_event} per event"
    cache = context.amount_cache
    for limit in rule.limits:
        usage = context.member.usage if limit.scope == "member" else context.program_usage
        period = cache.get(limit.period)
        if period is None:
            period = cache[limit.period] = period_key(limit.period, context.local_time)
        times, used = usage.get((rule.id, period), (0, 0))
        if limit.times is not None and times >= limit.times:
            return 0, f"used {times} of {limit.times} times per {limit.scope} {limit.period}"
        if limit.amount is not None and used + amount > limit.amount:
            amount = max(limit.amount - used, 0)
            reason = f"{used} of {limit.amount} per {limit.scope} {limit.period} used"
    return amount, reason


def _points(effects: list[Effect], currency: str) -> int:
    total = 0
    for effect in effects:
        if type(effect) is EarnEffect and effect.currency == currency:
            total += effect.amount
    return total


def _cap(effects: list[Effect], currency: str, allowed: int) -> list[Effect]:
    """Scale the rule's earnings in ``currency`` down to ``allowed`` in total."""
    capped: list[Effect] = []
    for effect in effects:
        if isinstance(effect, EarnEffect) and effect.currency == currency:
            take = min(effect.amount, allowed)
            allowed -= take
            if take > 0:
                capped.append(effect._replace(amount=take))
        else:
            capped.append(effect)
    return capped


class _Outcome(NamedTuple):
    rule: CompiledRule
    effects: list[Effect]
    amount: int
    reason: str


def _run_rule(
    rule: CompiledRule, context: EvaluationContext, earned: Earned, explain: bool
) -> _Outcome:
    single = rule.effects[0] if len(rule.effects) == 1 else None
    if single is not None and single.compute is not None:
        amount = single.compute(context)
        effects: list[Effect] = [EarnEffect(rule.id, rule.currency, amount)] if amount > 0 else []
    else:
        if single is not None:
            effects = single.apply(context, earned)
        else:
            effects = [e for effect in rule.effects for e in effect.apply(context, earned)]
        amount = _points(effects, rule.currency)
    if rule.max_per_event is not None or rule.limits:
        allowed, why = _limited(rule, amount, context)
        if allowed == 0 and (amount > 0 or why):
            return _Outcome(rule, [], 0, why)  # exhausted: the rule gives nothing this time
        if allowed < amount:
            return _Outcome(rule, _cap(effects, rule.currency, allowed), allowed, why)
    # Explanations are strings: built only when a trace is asked for.
    reason = "; ".join(e.explain(context, amount) for e in rule.effects) if explain else ""
    return _Outcome(rule, effects, amount, reason)


def _losers(outcomes: list[_Outcome], groups: Mapping[str, str]) -> dict[str, str]:
    """Rules that lost to another of their exclusive group: rule id → the winner's id.

    A group keeps the rule that earns most (``best``, the default) or the one with the
    highest priority (``priority``); ties go to the rule that ran first (higher priority,
    then lower id), never to the one edited last.
    """
    winners: dict[str, _Outcome] = {}
    for outcome in outcomes:
        group = outcome.rule.group
        if group is None or not outcome.effects:
            continue
        current = winners.get(group)
        if current is None or _beats(outcome, current, groups.get(group, "best")):
            winners[group] = outcome
    return {
        o.rule.id: winners[o.rule.group].rule.id
        for o in outcomes
        if o.rule.group in winners and winners[o.rule.group] is not o and o.effects
    }


def _beats(challenger: _Outcome, holder: _Outcome, pick: str) -> bool:
    if pick == "priority":
        return challenger.rule.priority > holder.rule.priority
    return challenger.amount > holder.amount


def _fast_effects(rule: CompiledRule, context: EvaluationContext, earned: Earned) -> list[Effect]:
    single = rule.effects[0] if len(rule.effects) == 1 else None
    if single is None:
        return [e for effect in rule.effects for e in effect.apply(context, earned)]
    if single.compute is None:
        return single.apply(context, earned)
    amount = single.compute(context)
    return [EarnEffect(rule.id, rule.currency, amount)] if amount > 0 else []


def _phase(
    rules: list[CompiledRule],
    context: EvaluationContext,
    earned: Earned,
    groups: Mapping[str, str],
    explain: bool,
    effects: list[Effect],
) -> tuple[list[_Outcome], dict[str, str]]:
    """Run one phase's rules, append the effects that apply to ``effects``, and only then
    add what they earned to ``earned``: rules of one phase never see each other."""
    outcomes: list[_Outcome] = []
    gained: list[tuple[str, str, int]] = []
    # Effects go out in rule order, with or without a trace: a fast rule's effects wait in
    # its slot until the groups of the other rules are decided.
    slots: list[list[Effect] | _Outcome] = []
    for rule in rules:
        if rule.fast and not explain:  # no limits, no group: nothing to decide afterwards
            got = _fast_effects(rule, context, earned)
            if got:
                slots.append(got)
                amount = _points(got, rule.currency)
                if amount:
                    gained.append((rule.id, rule.currency, amount))
            continue
        outcome = _run_rule(rule, context, earned, explain)
        outcomes.append(outcome)
        slots.append(outcome)
    lost = settle(slots, outcomes, gained, groups, effects, earned)
    return outcomes, lost


def settle(
    slots: list[list[Effect] | _Outcome],
    outcomes: list[_Outcome],
    gained: list[tuple[str, str, int]],
    groups: Mapping[str, str],
    effects: list[Effect],
    earned: Earned,
) -> dict[str, str]:
    """End a phase: decide the exclusive groups, append the effects that stand in rule order,
    and only then add what the phase earned to ``earned``. Returns the losers of groups."""
    lost = _losers(outcomes, groups) if any(o.rule.group for o in outcomes) else {}
    for slot in slots:
        if isinstance(slot, list):
            effects.extend(slot)
            continue
        if slot.rule.id in lost:
            continue
        effects.extend(slot.effects)
        if slot.amount:
            gained.append((slot.rule.id, slot.rule.currency, slot.amount))
    by_rule, by_currency = earned
    for rule_id, currency, amount in gained:
        by_rule[rule_id] = by_rule.get(rule_id, 0) + amount
        by_currency[currency] = by_currency.get(currency, 0) + amount
    return lost


def _boost(effects: list[Effect], context: EvaluationContext, currency: str) -> list[Effect]:
    """The member's soonest-expiring live boost multiplies this purchase's points."""
    if context.trigger != "purchase":
        return []
    live = [
        b
        for b in context.member.boosts
        if (b.expires_at is None or b.expires_at > context.occurred_at)
        and (b.issued_at is None or b.issued_at <= context.occurred_at)
    ]
    if not live:
        return []
    boost = min(live, key=lambda b: (b.expires_at is None, b.expires_at or context.occurred_at))
    base = _points(effects, currency)
    extra = base * (boost.factor_percent - 100) // 100
    used = BoostUsed(boost.id, boost.rule_id)
    return [EarnEffect(boost.rule_id, currency, extra), used] if extra > 0 else [used]


def _passing(
    rules: list[CompiledRule], context: EvaluationContext, traces: dict[str, RuleTrace] | None
) -> list[CompiledRule]:
    """The rules whose trigger, schedule, experiment and conditions all hold."""
    passed: list[CompiledRule] = []
    trigger = context.trigger
    for rule in rules:
        skip = None if rule.plain and trigger in rule.triggers else _skip_reason(rule, context)
        if skip is None:
            failed = None
            for condition in rule.conditions:
                if not condition.test(context):
                    failed = condition
                    break
            if failed is None:
                passed.append(rule)
            elif traces is not None:
                traces[rule.id] = RuleTrace(
                    rule.id, False, f"{failed.label} not met", 0, failed.first_failure(context)
                )
        elif traces is not None:
            traces[rule.id] = RuleTrace(rule.id, False, skip)
    return passed


def _simple_rules(
    program: CompiledProgram,
    context: EvaluationContext,
    effects: list[Effect],
    earned: Earned,
    traces: dict[str, RuleTrace] | None,
) -> list[CompiledRule]:
    """Run the unconditional single-effect rules at once; return the others."""
    others: list[CompiledRule] = []
    trigger = context.trigger
    by_rule, by_currency = earned
    for rule in program.rules:
        compute = rule.compute
        if compute is None:
            others.append(rule)
            continue
        if trigger not in rule.triggers:
            if traces is not None:
                traces[rule.id] = RuleTrace(rule.id, False, f"trigger is {trigger}")
            continue
        amount = compute(context)
        if amount > 0:
            effects.append(EarnEffect(rule.id, rule.currency, amount))
            by_rule[rule.id] = amount
            by_currency[rule.currency] = by_currency.get(rule.currency, 0) + amount
        if traces is not None:
            reason = rule.effects[0].explain(context, amount)
            traces[rule.id] = RuleTrace(rule.id, amount > 0, reason, amount)
    return others


def evaluate(
    program: CompiledProgram, context: EvaluationContext, *, explain: bool = False
) -> Evaluation:
    """Run the program's rules on one event; a blocked member earns nothing."""
    if context.member_status != "active":
        skipped = [
            RuleTrace(rule.id, False, f"member is {context.member_status}")
            for rule in program.rules
        ]
        return Evaluation([], skipped if explain else None)
    traces: dict[str, RuleTrace] | None = {} if explain else None
    if traces is None and program.fast is not None:
        effects = program.fast(context)
    else:
        effects = []
        earned = Earned({}, {})
        others = _simple_rules(program, context, effects, earned, traces)
        if others:
            _run_others(program, context, others, effects, earned, traces)
    if context.member.boosts:
        boosted = _boost(effects, context, program.boost_currency)
        effects += boosted
        if traces is not None:
            for b in boosted:
                if isinstance(b, BoostUsed):
                    reason = f"personal boost from rule {b.rule_id}"
                    traces[f"boost:{b.boost_id}"] = RuleTrace(f"boost:{b.boost_id}", True, reason)
    if traces is None:
        return Evaluation(effects)
    ordered = [traces[rule.id] for rule in program.rules]
    ordered += [t for key, t in traces.items() if key.startswith("boost:")]
    return Evaluation(effects, ordered)


def _run_others(
    program: CompiledProgram,
    context: EvaluationContext,
    rules: list[CompiledRule],
    effects: list[Effect],
    earned: Earned,
    traces: dict[str, RuleTrace] | None,
) -> None:
    """Conditions, limits and groups for the rules that have them. Earning rules first,
    multipliers after: a multiplier sees what the winners of the first phase earned."""
    passed = _passing(rules, context, traces)
    explain = traces is not None
    earning = [r for r in passed if not r.is_multiplier]
    outcomes, lost = _phase(earning, context, earned, program.groups, explain, effects)
    if len(earning) < len(passed):
        multipliers = [r for r in passed if r.is_multiplier]
        more, lost_too = _phase(multipliers, context, earned, program.groups, explain, effects)
        outcomes, lost = outcomes + more, lost | lost_too
    if traces is None:
        return
    for o in outcomes:
        if o.rule.id in lost:
            reason = f"group {o.rule.group}: {lost[o.rule.id]} applies instead"
            traces[o.rule.id] = RuleTrace(o.rule.id, False, reason, o.amount)
        else:
            traces[o.rule.id] = RuleTrace(o.rule.id, bool(o.effects), o.reason, o.amount)


# What the generated fast path (``rules.fastpath``) calls for the less common cases, so both
# paths share one implementation of skips, limits, groups and settling.
FAST_HELPERS = {
    "RUN": _run_rule,
    "LIMITED": _limited,
    "FAST_EFFECTS": _fast_effects,
    "POINTS": _points,
    "SETTLE": settle,
}
