"""Effect types: each is a Pydantic model that compiles to a ``CompiledEffect`` returning
value objects (``EarnEffect``, ``BenefitEffect``, …); the service applies them. Adding a
type means adding a class here, registered with ``@effect``.

Rounding is explicit per effect: ``floor`` (the default: a partial unit earns nothing),
``round`` (half up) or ``ceil``. All arithmetic is on integers.
"""

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from kopilka.kit.types import MONEY_MAX, POINTS_MAX, Flag, Int
from kopilka.rules.conditions import LineCounter, LineFilter
from kopilka.rules.domain import (
    BenefitEffect,
    CompiledEffect,
    Earned,
    EarnEffect,
    Effect,
    EvaluationContext,
    EventEffect,
    TagEffect,
)

E = TypeVar("E", bound="EffectModel")
EFFECTS: dict[str, type["EffectModel"]] = {}
Rounding = Literal["floor", "round", "ceil"]
CurrencyCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


def effect(cls: type[E]) -> type[E]:
    """Register an effect class under its ``type``."""
    EFFECTS[cls.model_fields["type"].default] = cls
    return cls


def divide(numerator: int, denominator: int, rounding: str) -> int:
    """``numerator / denominator`` as an integer, rounded as the rule says."""
    if rounding == "ceil":
        return -(-numerator // denominator)
    if rounding == "round":
        return (2 * numerator + denominator) // (2 * denominator)
    return numerator // denominator


class EffectModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def compile(self, rule_id: str) -> CompiledEffect:
        raise NotImplementedError

    def earns_in(self) -> str | None:
        """The currency this effect earns in, if it earns."""
        return None


def _earn(rule_id: str, currency: str, amount: int) -> list[Effect]:
    return [EarnEffect(rule_id, currency, amount)] if amount > 0 else []


class _Earning(EffectModel):
    currency: CurrencyCode = "points"
    lines: LineFilter | None = None  # only these lines count; all lines when omitted
    exclude_categories: list[str] = Field(default_factory=list)

    def earns_in(self) -> str | None:
        return self.currency

    def _amount_of(self) -> Any:
        """A function giving the amount this effect is computed on."""
        excluded = frozenset(self.exclude_categories)
        line_filter = self.lines
        if line_filter is None:
            return lambda context: context.eligible_amount(excluded)
        if excluded:
            match = line_filter.matcher()
            return lambda context: sum(
                line.amount
                for line in context.lines
                if match(line) and line.category not in excluded
            )
        counter = LineCounter(line_filter)
        return lambda context: counter(context)[1]


@effect
class Points(EffectModel):
    """A fixed number of points (or units of another currency)."""

    type: Literal["points"] = "points"
    amount: Int = Field(ge=1, le=10**9)
    currency: CurrencyCode = "points"

    def earns_in(self) -> str | None:
        return self.currency

    def compile(self, rule_id: str) -> CompiledEffect:
        amount, currency = self.amount, self.currency
        return CompiledEffect(
            lambda context, earned: _earn(rule_id, currency, amount),
            lambda context, got: f"{amount} {currency}",
            compute=lambda context: amount,
        )


@effect
class PointsPerAmount(_Earning):
    """``points`` for every ``per`` minor units of the (matching) amount."""

    type: Literal["points_per_amount"] = "points_per_amount"
    points: Int = Field(default=1, ge=1, le=POINTS_MAX)
    per: Int = Field(default=100, ge=1, le=MONEY_MAX)
    rounding: Rounding = "floor"

    def compile(self, rule_id: str) -> CompiledEffect:
        amount_of, points, per, rounding = self._amount_of(), self.points, self.per, self.rounding
        currency = self.currency

        def compute(context: EvaluationContext) -> int:
            return divide(amount_of(context) * points, per, rounding)

        def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
            return _earn(rule_id, currency, compute(context))

        def explain(context: EvaluationContext, got: int) -> str:
            return f"{points} per {per} of {amount_of(context)} ({rounding})"

        return CompiledEffect(apply, explain, compute=compute)


@effect
class Percent(_Earning):
    """``basis_points`` / 10,000 of the (matching) amount, e.g. 500 = 5 % cashback into a
    money-like currency."""

    type: Literal["percent"] = "percent"
    basis_points: Int = Field(ge=1, le=10_000)
    rounding: Rounding = "floor"

    def compile(self, rule_id: str) -> CompiledEffect:
        amount_of, bp, rounding, currency = (
            self._amount_of(),
            self.basis_points,
            self.rounding,
            self.currency,
        )

        def compute(context: EvaluationContext) -> int:
            return divide(amount_of(context) * bp, 10_000, rounding)

        def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
            return _earn(rule_id, currency, compute(context))

        def explain(context: EvaluationContext, got: int) -> str:
            return f"{bp} bp of {amount_of(context)} ({rounding})"

        return CompiledEffect(apply, explain, compute=compute)


@effect
class PointsPerLine(EffectModel):
    """``points`` for each matching line, or for each unit on it with ``per_unit``."""

    type: Literal["points_per_line"] = "points_per_line"
    points: Int = Field(ge=1, le=POINTS_MAX)
    lines: LineFilter = Field(default_factory=LineFilter)
    per_unit: Flag = False
    currency: CurrencyCode = "points"

    def earns_in(self) -> str | None:
        return self.currency

    def compile(self, rule_id: str) -> CompiledEffect:
        points, per_unit, currency = self.points, self.per_unit, self.currency
        match = self.lines.matcher()
        counter = LineCounter(self.lines)

        def count(context: EvaluationContext) -> int:
            if per_unit:  # the matched quantity, shared with every rule of the same filter
                return counter(context)[0]
            return sum(1 for line in context.lines if match(line))

        return CompiledEffect(
            lambda context, earned: _earn(rule_id, currency, points * count(context)),
            lambda context, got: (
                f"{points} × {count(context)} matching " + ("units" if per_unit else "lines")
            ),
        )


def _multiplied(of: list[str] | None, currency: str) -> Callable[[Earned], int]:
    """What a multiplier multiplies: the named rules' amounts, or everything earned in
    ``currency`` so far."""

    def base(earned: Earned) -> int:
        if of is None:
            return earned.by_currency.get(currency, 0)
        return sum(earned.by_rule.get(rule, 0) for rule in of)

    return base


@effect
class Multiplier(EffectModel):
    """Multiply what other rules earned: ``factor`` 2 doubles it (the extra is this rule's).
    ``of`` names the rules; omitted, everything earned in ``currency`` so far. Runs after
    every earning rule, whatever its priority."""

    type: Literal["multiplier"] = "multiplier"
    factor: Decimal = Field(gt=1, le=100)
    of: list[str] | None = None
    currency: CurrencyCode = "points"
    rounding: Rounding = "floor"

    def earns_in(self) -> str | None:
        return self.currency

    def compile(self, rule_id: str) -> CompiledEffect:
        extra = Fraction(self.factor) - 1
        of, currency, rounding = self.of, self.currency, self.rounding
        base = _multiplied(of, currency)

        def compute_on(earned: Earned) -> int:
            return divide(base(earned) * extra.numerator, extra.denominator, rounding)

        def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
            return _earn(rule_id, currency, compute_on(earned))

        factor = self.factor
        return CompiledEffect(
            apply,
            lambda context, got: f"×{factor} of {', '.join(of) if of else 'all earned'}",
            multiplier=True,
            compute_on=compute_on,
            reads_rules=tuple(of) if of is not None else None,
            reads_currency=currency if of is None else None,
        )


@effect
class TierMultiplier(EffectModel):
    """Multiply what other rules earned by the member's tier rate: the tier's
    ``earn_rate_percent`` (150 = ×1.5; the extra is this rule's). ``of`` names the rules;
    omitted, everything earned in ``currency`` so far. Runs with the multipliers."""

    type: Literal["tier_multiplier"] = "tier_multiplier"
    of: list[str] | None = None
    currency: CurrencyCode = "points"
    rounding: Rounding = "floor"

    def earns_in(self) -> str | None:
        return self.currency

    def compile(self, rule_id: str) -> CompiledEffect:
        of, currency, rounding = self.of, self.currency, self.rounding
        base = _multiplied(of, currency)

        def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
            extra = context.member.tier_earn_percent - 100
            if extra <= 0:
                return []
            return _earn(rule_id, currency, divide(base(earned) * extra, 100, rounding))

        def describe(context: EvaluationContext, got: int) -> str:
            rate = context.member.tier_earn_percent
            what = ", ".join(of) if of else "all earned"
            return f"tier {context.member.tier} rate {rate}% of {what}"

        # No ``compute_on``: the amount depends on the member, not only on what was earned.
        return CompiledEffect(
            apply,
            describe,
            multiplier=True,
            reads_rules=tuple(of) if of is not None else None,
            reads_currency=currency if of is None else None,
        )


def _benefit(
    rule_id: str, kind: str, payload: dict[str, Any], valid_days: int | None
) -> CompiledEffect:
    def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
        return [BenefitEffect(rule_id, kind, payload, valid_days)]

    return CompiledEffect(apply, lambda context, got: f"{kind} {payload}".strip())


@effect
class IssueCoupon(EffectModel):
    """A personal code of the coupon campaign ``campaign`` for a later purchase: the
    campaign's terms say what it takes off; it expires after ``valid_days`` (default the
    campaign's own)."""

    type: Literal["coupon"] = "coupon"
    campaign: str = Field(min_length=1, max_length=100)
    valid_days: Int | None = Field(default=None, ge=1, le=3660)
    # Before coupon campaigns existed the effect carried its own value; documents written
    # then still load, and the campaign's terms apply.
    discount_percent: Int | None = Field(default=None, ge=1, le=100, deprecated=True)
    discount_amount: Int | None = Field(default=None, ge=1, le=MONEY_MAX, deprecated=True)

    def compile(self, rule_id: str) -> CompiledEffect:
        return _benefit(rule_id, "coupon", {"campaign": self.campaign}, self.valid_days)


@effect
class IssueReward(EffectModel):
    """Access to a reward of the rewards shop (e.g. an exclusive one for regulars)."""

    type: Literal["reward"] = "reward"
    reward: str = Field(min_length=1, max_length=100)
    valid_days: Int | None = Field(default=None, ge=1, le=3660)

    def compile(self, rule_id: str) -> CompiledEffect:
        return _benefit(rule_id, "reward", {"reward": self.reward}, self.valid_days)


@effect
class FreeDelivery(EffectModel):
    """Free delivery on this order (the shop applies it)."""

    type: Literal["free_delivery"] = "free_delivery"

    def compile(self, rule_id: str) -> CompiledEffect:
        return _benefit(rule_id, "free_delivery", {}, None)


@effect
class FreeSample(EffectModel):
    """A free product with this purchase (the till adds it)."""

    type: Literal["free_sample"] = "free_sample"
    sku: str = Field(min_length=1, max_length=100)
    quantity: Int = Field(default=1, ge=1, le=100)

    def compile(self, rule_id: str) -> CompiledEffect:
        return _benefit(rule_id, "free_sample", {"sku": self.sku, "quantity": self.quantity}, None)


@effect
class Boost(EffectModel):
    """A personal boost stored on the member: their next purchase within ``valid_days``
    earns ``factor`` × its points."""

    type: Literal["boost"] = "boost"
    factor: Decimal = Field(gt=1, le=10)
    valid_days: Int = Field(default=14, ge=1, le=3660)

    def compile(self, rule_id: str) -> CompiledEffect:
        percent = int(self.factor * 100)
        return _benefit(rule_id, "boost", {"factor_percent": percent}, self.valid_days)


@effect
class EmitEvent(EffectModel):
    """A custom event on the outbox, for badges, challenges and messages."""

    type: Literal["emit_event"] = "emit_event"
    name: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,99}$")
    payload: dict[str, Any] = Field(default_factory=dict)

    def compile(self, rule_id: str) -> CompiledEffect:
        name, payload = self.name, self.payload

        def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
            return [EventEffect(rule_id, name, payload)]

        return CompiledEffect(apply, lambda context, got: f"event {name}")


@effect
class Tag(EffectModel):
    """Tag the member (tags are member state other rules and segments read)."""

    type: Literal["tag"] = "tag"
    tag: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    def compile(self, rule_id: str) -> CompiledEffect:
        tag = self.tag

        def apply(context: EvaluationContext, earned: Earned) -> list[Effect]:
            return [TagEffect(rule_id, tag)]

        return CompiledEffect(apply, lambda context, got: f"tag {tag}")


EffectSpec = Annotated[
    Points
    | PointsPerAmount
    | Percent
    | PointsPerLine
    | Multiplier
    | TierMultiplier
    | IssueCoupon
    | IssueReward
    | FreeDelivery
    | FreeSample
    | Boost
    | EmitEvent
    | Tag,
    Field(discriminator="type"),
]
