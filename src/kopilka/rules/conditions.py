"""Condition types: each is a Pydantic model (its fields are the document's) that compiles
to a ``CompiledCondition``. Adding a type means adding a class here (types on the member's
state live in ``member_conditions``), registered with ``@condition``, and naming it in the
document's discriminated union ``Condition`` below; a test keeps the two in step.

``needs`` names the member facts a condition reads, so the purchase path loads only what
the program uses: ``history`` (purchase counters), ``profile`` (join date, birthday, tags,
attributes), ``tier``, ``segments``, ``predictions`` (churn risk, CLV), ``experiments``.
"""

from collections.abc import Callable
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import Field

from kopilka.kit.types import INT32_MAX, MONEY_MAX, Day, Flag, Int
from kopilka.rules.condition_kit import (
    CONDITIONS,
    WEEKDAYS,
    ConditionModel,
    LineCounter,
    LineFilter,
    Range,
    Weekday,
    condition,
    matched_lines,
    one_of_values,
)
from kopilka.rules.domain import CompiledCondition, EvaluationContext
from kopilka.rules.member_conditions import (
    Attribute,
    Birthday,
    ChurnRisk,
    Clv,
    DaysSinceLastPurchase,
    ExperimentArm,
    LifetimeSpend,
    MemberTag,
    PurchasesInWindow,
    Segment,
    SpendInWindow,
    TenureDays,
    Tier,
    Window,
)

__all__ = [
    "CONDITIONS",
    "Condition",
    "ConditionModel",
    "LineCounter",
    "LineFilter",
    "condition",
    "matched_lines",
    "window_days",
]


# --- basket ------------------------------------------------------------------------------


@condition
class BasketTotal(Range):
    """The basket total (minor units) is between ``min`` and ``max``."""

    type: Literal["basket_total"] = "basket_total"

    def compile(self) -> CompiledCondition:
        return self._between("basket_total", lambda c: c.total)


@condition
class LineMatch(ConditionModel):
    """Matching lines reach ``min_quantity`` items and ``min_amount`` minor units."""

    type: Literal["line_match"] = "line_match"
    lines: LineFilter
    min_quantity: Int = Field(default=1, ge=0, le=1_000_000)
    min_amount: Int = Field(default=0, ge=0, le=MONEY_MAX)

    def compile(self) -> CompiledCondition:
        lines, quantity, amount = LineCounter(self.lines), self.min_quantity, self.min_amount

        def test(context: EvaluationContext) -> bool:
            got_quantity, got_amount = lines(context)
            return got_quantity >= quantity and got_amount >= amount and got_quantity > 0

        def actual(context: EvaluationContext) -> dict[str, int]:
            got_quantity, got_amount = lines(context)
            return {"quantity": got_quantity, "amount": got_amount}

        expected = {"min_quantity": max(quantity, 1), "min_amount": amount}
        return CompiledCondition("line_match", test, actual, expected)


@condition
class DistinctItems(Range):
    """The number of distinct SKUs in the basket."""

    type: Literal["distinct_items"] = "distinct_items"

    def compile(self) -> CompiledCondition:
        return self._between("distinct_items", lambda c: len({line.sku for line in c.lines}))


@condition
class FirstPurchase(ConditionModel):
    """The member has no earlier purchase."""

    type: Literal["first_purchase"] = "first_purchase"

    def compile(self) -> CompiledCondition:
        return CompiledCondition(
            "first_purchase",
            lambda c: c.member.purchase_count == 0,
            lambda c: {"earlier_purchases": c.member.purchase_count},
            {"earlier_purchases": 0},
            frozenset({"history"}),
        )


@condition
class NthPurchase(ConditionModel):
    """This is the member's ``n``-th purchase (with ``every``: the n-th, 2n-th, …)."""

    type: Literal["nth_purchase"] = "nth_purchase"
    n: Int = Field(ge=1, le=INT32_MAX)
    every: Flag = False

    def compile(self) -> CompiledCondition:
        n, every = self.n, self.every

        def test(context: EvaluationContext) -> bool:
            number = context.member.purchase_count + 1
            return number % n == 0 if every else number == n

        expected = f"every {n}th" if every else n
        return CompiledCondition(
            "nth_purchase",
            test,
            lambda c: c.member.purchase_count + 1,
            expected,
            frozenset({"history"}),
        )


@condition
class PaymentMethod(ConditionModel):
    type: Literal["payment_method"] = "payment_method"
    methods: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return one_of_values("payment_method", self.methods, lambda c: c.payment_method)


@condition
class CouponCode(ConditionModel):
    """The purchase carries ``code`` (any coupon when ``code`` is omitted)."""

    type: Literal["coupon_code"] = "coupon_code"
    code: str | None = None

    def compile(self) -> CompiledCondition:
        code = self.code
        test: Callable[[EvaluationContext], bool] = (
            (lambda c: bool(c.coupons)) if code is None else (lambda c: code in c.coupons)
        )
        return CompiledCondition(
            "coupon_code", test, lambda c: sorted(c.coupons), code or "any coupon"
        )


# --- context -----------------------------------------------------------------------------


@condition
class Store(ConditionModel):
    type: Literal["store"] = "store"
    stores: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return one_of_values("store", self.stores, lambda c: c.store)


@condition
class Channel(ConditionModel):
    type: Literal["channel"] = "channel"
    channels: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return one_of_values("channel", self.channels, lambda c: c.channel)


@condition
class Region(ConditionModel):
    type: Literal["region"] = "region"
    regions: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return one_of_values("region", self.regions, lambda c: c.region)


@condition
class WeekdayIs(ConditionModel):
    """The event's local weekday (the program's, or the member's own time zone)."""

    type: Literal["weekday"] = "weekday"
    days: list[Weekday] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return one_of_values("weekday", list(self.days), lambda c: WEEKDAYS[c.local_time.weekday()])


@condition
class TimeOfDay(ConditionModel):
    """Local time from ``start`` (inclusive) to ``end`` (exclusive); a window may cross
    midnight (22:00–02:00). Happy hours."""

    type: Literal["time_of_day"] = "time_of_day"
    start: time
    end: time

    def compile(self) -> CompiledCondition:
        start, end = self.start, self.end

        def test(context: EvaluationContext) -> bool:
            now = context.amount_cache.get("clock")
            if now is None:  # once per event, for every happy-hours rule
                now = context.amount_cache["clock"] = context.local_time.time()
            return start <= now < end if start <= end else now >= start or now < end

        return CompiledCondition(
            "time_of_day",
            test,
            lambda c: c.local_time.strftime("%H:%M"),
            f"{start:%H:%M}–{end:%H:%M}",
        )


@condition
class DateRange(ConditionModel):
    """Local date from ``start`` to ``end``, both inclusive."""

    type: Literal["date_range"] = "date_range"
    start: Day | None = None
    end: Day | None = None

    def compile(self) -> CompiledCondition:
        start, end = self.start, self.end

        def test(context: EvaluationContext) -> bool:
            day = context.local_time.date()
            return (start is None or day >= start) and (end is None or day <= end)

        return CompiledCondition(
            "date_range",
            test,
            lambda c: c.local_time.date().isoformat(),
            {"start": start and start.isoformat(), "end": end and end.isoformat()},
        )


# --- combinators -------------------------------------------------------------------------


def _combined(label: str, parts: list[CompiledCondition], any_: bool) -> CompiledCondition:
    tests = tuple(p.test for p in parts)
    needs = frozenset().union(*(p.needs for p in parts))
    if any_:
        return CompiledCondition(
            label,
            lambda c: any(t(c) for t in tests),
            lambda c: [p.first_failure(c) for p in parts],
            "at least one",
            needs,
        )

    def first_failing(context: EvaluationContext) -> Any:
        failure = next((p.first_failure(context) for p in parts if not p.test(context)), None)
        return failure and failure._asdict()

    return CompiledCondition(label, lambda c: all(t(c) for t in tests), first_failing, "all", needs)


@condition
class AllOf(ConditionModel):
    type: Literal["all"] = "all"
    conditions: list["Condition"] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return _combined("all", [c.compile() for c in self.conditions], any_=False)


@condition
class AnyOf(ConditionModel):
    type: Literal["any"] = "any"
    conditions: list["Condition"] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return _combined("any", [c.compile() for c in self.conditions], any_=True)


@condition
class Not(ConditionModel):
    type: Literal["not"] = "not"
    condition: "Condition"

    def compile(self) -> CompiledCondition:
        inner = self.condition.compile()
        return CompiledCondition(
            f"not {inner.label}",
            lambda c: not inner.test(c),
            inner.actual,
            {"not": inner.expected},
            inner.needs,
        )


Condition = Annotated[
    BasketTotal
    | LineMatch
    | DistinctItems
    | FirstPurchase
    | NthPurchase
    | PaymentMethod
    | CouponCode
    | Store
    | Channel
    | Region
    | WeekdayIs
    | TimeOfDay
    | DateRange
    | Tier
    | TenureDays
    | Birthday
    | DaysSinceLastPurchase
    | PurchasesInWindow
    | SpendInWindow
    | LifetimeSpend
    | Segment
    | ChurnRisk
    | Clv
    | MemberTag
    | Attribute
    | ExperimentArm
    | AllOf
    | AnyOf
    | Not,
    Field(discriminator="type"),
]
for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def window_days(condition_model: ConditionModel) -> int:
    """The longest look-back of a condition tree, in days."""
    if isinstance(condition_model, Window):
        return condition_model.days
    if isinstance(condition_model, AllOf | AnyOf):
        return max((window_days(c) for c in condition_model.conditions), default=0)
    if isinstance(condition_model, Not):
        return window_days(condition_model.condition)
    return 0
