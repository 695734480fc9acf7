"""What rules produce (effect value objects, the trace) and the compiled program the
engine runs: rules with their conditions, effects, limits and order."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from kopilka.rules.context import EvaluationContext

# --- what rules produce ------------------------------------------------------------------


class EarnEffect(NamedTuple):
    rule_id: str
    currency: str
    amount: int


class BenefitEffect(NamedTuple):
    """Something the member gets besides points: a coupon or reward for a later purchase,
    free delivery or a free sample on this one, a personal boost for the next purchase."""

    rule_id: str
    kind: str  # coupon | reward | free_delivery | free_sample | boost
    payload: Mapping[str, Any]
    valid_days: int | None = None


class EventEffect(NamedTuple):
    rule_id: str
    name: str
    payload: Mapping[str, Any]


class TagEffect(NamedTuple):
    rule_id: str
    tag: str


class BoostUsed(NamedTuple):
    boost_id: str
    rule_id: str


Effect = EarnEffect | BenefitEffect | EventEffect | TagEffect | BoostUsed


class FailedCondition(NamedTuple):
    condition: str
    actual: Any
    expected: Any


class RuleTrace(NamedTuple):
    rule_id: str
    fired: bool
    reason: str
    amount: int = 0
    failed: FailedCondition | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    effects: list[Effect] = field(default_factory=list)
    trace: list[RuleTrace] | None = None

    @property
    def earned(self) -> list[EarnEffect]:
        return [e for e in self.effects if isinstance(e, EarnEffect)]


# --- compiled program --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    """One condition ready to run: ``test`` decides; ``actual`` and ``expected`` explain."""

    label: str
    test: Callable[[EvaluationContext], bool]
    actual: Callable[[EvaluationContext], Any]
    expected: Any
    needs: frozenset[str] = frozenset()

    def first_failure(self, context: EvaluationContext) -> FailedCondition | None:
        if self.test(context):
            return None
        return FailedCondition(self.label, self.actual(context), self.expected)


class Earned(NamedTuple):
    """What the earning rules earned, for multipliers: by rule and by currency."""

    by_rule: dict[str, int]
    by_currency: dict[str, int]


@dataclass(frozen=True, slots=True)
class CompiledEffect:
    """``apply`` returns the rule's effects; ``multiplier`` effects run after the others."""

    apply: Callable[[EvaluationContext, Earned], list[Effect]]
    explain: Callable[[EvaluationContext, int], str]
    multiplier: bool = False
    # For an effect that only earns in one currency: the amount alone, no effect objects.
    compute: Callable[[EvaluationContext], int] | None = None
    # The same for a multiplier, whose amount depends on what was earned before it.
    compute_on: Callable[[Earned], int] | None = None
    # What a multiplier reads of ``Earned``: these rules' amounts, or (None) the total of
    # ``reads_currency``.
    reads_rules: tuple[str, ...] | None = None
    reads_currency: str | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``times`` uses and ``amount`` units per ``period`` (by member or program)."""

    scope: str  # member | program
    period: str  # day | week | month | year | ever
    times: int | None
    amount: int | None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    currency: str
    conditions: tuple[CompiledCondition, ...]
    effects: tuple[CompiledEffect, ...]
    triggers: frozenset[str] = frozenset({"purchase"})
    event_name: str | None = None
    priority: int = 0
    group: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    max_per_event: int | None = None
    limits: tuple[Limit, ...] = ()
    experiment: tuple[str, str] | None = None  # (experiment, arm the rule runs in)
    is_multiplier: bool = False
    # Only a trigger to check before the conditions: no event name, schedule or experiment.
    plain: bool = True
    # Set for the commonest rule, one unconditional earning effect with no limits or group
    # (the base earning): evaluation then only computes its amount.
    compute: Callable[[EvaluationContext], int] | None = None
    # No limits and no group: its effects stand as computed.
    fast: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_multiplier", any(e.multiplier for e in self.effects))
        unlimited = not self.limits and self.max_per_event is None
        object.__setattr__(self, "fast", unlimited and self.group is None)
        plain = (
            self.event_name is None
            and self.valid_from is None
            and self.valid_to is None
            and self.experiment is None
        )
        object.__setattr__(self, "plain", plain)
        simple = (
            plain
            and not self.conditions
            and len(self.effects) == 1
            and not self.limits
            and self.max_per_event is None
            and self.group is None
        )
        object.__setattr__(self, "compute", self.effects[0].compute if simple else None)


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    rules: tuple[CompiledRule, ...]
    groups: Mapping[str, str] = field(default_factory=dict)  # group → best | priority
    needs: frozenset[str] = frozenset()
    # The longest rolling window, in days, any condition looks back over.
    window_days: int = 0
    boost_currency: str = "points"
    # The same program as one generated function, for evaluation without a trace
    # (``rules.fastpath``); None: the generic loops of ``evaluate`` run instead.
    fast: Callable[[EvaluationContext], list["Effect"]] | None = field(default=None, compare=False)
