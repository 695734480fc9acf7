"""Condition types: each is a Pydantic model (its fields are the document's) that compiles
to a ``CompiledCondition``. Adding a type means adding a class here, registered with
``@condition``; the document's discriminated union is built from the registry.

``needs`` names the member facts a condition reads, so the purchase path loads only what
the program uses: ``history`` (purchase counters), ``profile`` (join date, birthday, tags,
attributes), ``tier``, ``segments``, ``experiments``.
"""

import calendar
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.rules.domain import CompiledCondition, EvaluationContext

C = TypeVar("C", bound="ConditionModel")
CONDITIONS: dict[str, type["ConditionModel"]] = {}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def condition(cls: type[C]) -> type[C]:
    """Register a condition class under its ``type``."""
    CONDITIONS[cls.model_fields["type"].default] = cls
    return cls


class ConditionModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def compile(self) -> CompiledCondition:
        raise NotImplementedError


class _Range(ConditionModel):
    """A value between ``min`` and ``max`` (both inclusive, either optional)."""

    min: int | None = None
    max: int | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "_Range":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is larger than max")
        return self

    def _between(
        self, label: str, value: Callable[[EvaluationContext], int | None], *needs: str
    ) -> CompiledCondition:
        low, high = self.min, self.max

        def test(context: EvaluationContext) -> bool:
            actual = value(context)
            if actual is None:
                return False
            return (low is None or actual >= low) and (high is None or actual <= high)

        expected = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        return CompiledCondition(label, test, value, expected, frozenset(needs))


def _one_of(
    label: str, allowed: list[str], value: Callable[[EvaluationContext], Any], *needs: str
) -> CompiledCondition:
    wanted = frozenset(allowed)
    return CompiledCondition(
        label, lambda c: value(c) in wanted, value, sorted(wanted), frozenset(needs)
    )


# --- basket ------------------------------------------------------------------------------


@condition
class BasketTotal(_Range):
    """The basket total (minor units) is between ``min`` and ``max``."""

    type: Literal["basket_total"] = "basket_total"

    def compile(self) -> CompiledCondition:
        return self._between("basket_total", lambda c: c.total)


class LineFilter(BaseModel):
    """Lines that match any of the listed SKUs, categories, brands or tags (an empty filter
    matches every line)."""

    model_config = ConfigDict(extra="forbid")

    skus: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    def key(self) -> tuple[frozenset[str], ...]:
        return (
            frozenset(self.skus),
            frozenset(self.categories),
            frozenset(self.brands),
            frozenset(self.tags),
        )

    def matcher(self) -> Callable[[Any], bool]:
        skus, categories, brands, tags = self.key()
        if not (skus or categories or brands or tags):
            return lambda line: True
        return lambda line: (
            line.sku in skus
            or line.category in categories
            or line.brand in brands
            or bool(tags and line.tags & tags)
        )


class LineCounter:
    """Quantity and amount of the lines a filter matches, cached per basket: rules sharing
    a filter count the basket once."""

    __slots__ = ("key", "match")

    def __init__(self, line_filter: LineFilter) -> None:
        self.key = ("lines", line_filter.key())
        self.match = line_filter.matcher()

    def __call__(self, context: EvaluationContext) -> tuple[int, int]:
        return matched_lines(context, self.key, self.match)


def matched_lines(
    context: EvaluationContext, key: object, match: Callable[[Any], bool]
) -> tuple[int, int]:
    cached = context.amount_cache.get(key)
    if cached is None:
        quantity = amount = 0
        for line in context.lines:
            if match(line):
                quantity += line.quantity
                amount += line.amount
        cached = quantity * 10**15 + amount  # both in one int: the cache holds ints
        context.amount_cache[key] = cached
    return divmod(cached, 10**15)


@condition
class LineMatch(ConditionModel):
    """Matching lines reach ``min_quantity`` items and ``min_amount`` minor units."""

    type: Literal["line_match"] = "line_match"
    lines: LineFilter
    min_quantity: int = Field(default=1, ge=0)
    min_amount: int = Field(default=0, ge=0)

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
class DistinctItems(_Range):
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
    n: int = Field(ge=1)
    every: bool = False

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
        return _one_of("payment_method", self.methods, lambda c: c.payment_method)


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
        return _one_of("store", self.stores, lambda c: c.store)


@condition
class Channel(ConditionModel):
    type: Literal["channel"] = "channel"
    channels: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return _one_of("channel", self.channels, lambda c: c.channel)


@condition
class Region(ConditionModel):
    type: Literal["region"] = "region"
    regions: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return _one_of("region", self.regions, lambda c: c.region)


@condition
class WeekdayIs(ConditionModel):
    """The event's local weekday (the program's, or the member's own time zone)."""

    type: Literal["weekday"] = "weekday"
    days: list[Weekday] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return _one_of("weekday", list(self.days), lambda c: WEEKDAYS[c.local_time.weekday()])


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
            now = context.local_time.time().replace(tzinfo=None)
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
    start: date | None = None
    end: date | None = None

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


# --- member state ------------------------------------------------------------------------


def _days_between(earlier: datetime | None, later: datetime) -> int | None:
    return None if earlier is None else (later - earlier).days


@condition
class Tier(ConditionModel):
    type: Literal["tier"] = "tier"
    tiers: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return _one_of("tier", self.tiers, lambda c: c.member.tier, "tier")


@condition
class TenureDays(_Range):
    """Whole days since the member joined."""

    type: Literal["tenure_days"] = "tenure_days"

    def compile(self) -> CompiledCondition:
        return self._between(
            "tenure_days", lambda c: _days_between(c.member.joined_at, c.occurred_at), "profile"
        )


def _birthday_in(birthday: date | None, today: date, within: str) -> bool:
    if birthday is None:
        return False
    if within == "month":
        return birthday.month == today.month
    days = 0 if within == "today" else 3
    for offset in range(-days, days + 1):
        day = today + timedelta(days=offset)
        # A 29 February birthday falls on 28 February only in years without a 29th.
        if (birthday.month, birthday.day) == (day.month, day.day) or (
            (birthday.month, birthday.day) == (2, 29)
            and (day.month, day.day) == (2, 28)
            and not calendar.isleap(day.year)
        ):
            return True
    return False


@condition
class Birthday(ConditionModel):
    """The member's birthday is today, within three days either side (``week``) or in this
    month, by local date. A 29 February birthday counts on 28 February."""

    type: Literal["birthday"] = "birthday"
    within: Literal["today", "week", "month"] = "today"

    def compile(self) -> CompiledCondition:
        within = self.within
        return CompiledCondition(
            "birthday",
            lambda c: _birthday_in(c.member.birthday, c.local_time.date(), within),
            lambda c: c.member.birthday and c.member.birthday.isoformat(),
            within,
            frozenset({"profile"}),
        )


@condition
class DaysSinceLastPurchase(_Range):
    """Whole days since the member's previous purchase (fails for a first purchase)."""

    type: Literal["days_since_last_purchase"] = "days_since_last_purchase"

    def compile(self) -> CompiledCondition:
        return self._between(
            "days_since_last_purchase",
            lambda c: _days_between(c.member.last_purchase_at, c.occurred_at),
            "history",
        )


class _Window(_Range):
    days: int = Field(ge=1, le=3660)

    def _in_window(self, context: EvaluationContext) -> list[int]:
        since = context.occurred_at - timedelta(days=self.days)
        return [amount for moment, amount in context.member.recent if moment > since]


@condition
class PurchasesInWindow(_Window):
    """Purchases in the ``days`` before this one (this one not counted)."""

    type: Literal["purchases_in_window"] = "purchases_in_window"

    def compile(self) -> CompiledCondition:
        return self._between(
            f"purchases_in_{self.days}_days", lambda c: len(self._in_window(c)), "history"
        )


@condition
class SpendInWindow(_Window):
    """Spend (minor units) in the ``days`` before this purchase."""

    type: Literal["spend_in_window"] = "spend_in_window"

    def compile(self) -> CompiledCondition:
        return self._between(
            f"spend_in_{self.days}_days", lambda c: sum(self._in_window(c)), "history"
        )


@condition
class LifetimeSpend(_Range):
    type: Literal["lifetime_spend"] = "lifetime_spend"

    def compile(self) -> CompiledCondition:
        return self._between("lifetime_spend", lambda c: c.member.lifetime_spend, "history")


@condition
class Segment(ConditionModel):
    type: Literal["segment"] = "segment"
    segments: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        wanted = frozenset(self.segments)
        return CompiledCondition(
            "segment",
            lambda c: bool(c.member.segments & wanted),
            lambda c: sorted(c.member.segments),
            sorted(wanted),
            frozenset({"segments"}),
        )


@condition
class MemberTag(ConditionModel):
    """The member has any of ``tags`` (all of them with ``all: true``)."""

    type: Literal["member_tag"] = "member_tag"
    tags: list[str] = Field(min_length=1)
    all: bool = False

    def compile(self) -> CompiledCondition:
        wanted, every = frozenset(self.tags), self.all

        def test(context: EvaluationContext) -> bool:
            have = context.member.tags
            return wanted <= have if every else bool(have & wanted)

        return CompiledCondition(
            "member_tag",
            test,
            lambda c: sorted(c.member.tags),
            {"all" if every else "any": sorted(wanted)},
            frozenset({"profile"}),
        )


@condition
class Attribute(ConditionModel):
    """A custom attribute of the member equals ``equals``, is one of ``one_of``, or is a
    number between ``min`` and ``max``."""

    type: Literal["attribute"] = "attribute"
    name: str = Field(min_length=1, max_length=100)
    equals: str | int | bool | None = None
    one_of: list[str | int] | None = None
    min: int | None = None
    max: int | None = None

    def compile(self) -> CompiledCondition:
        name, equals, one_of, low, high = self.name, self.equals, self.one_of, self.min, self.max

        def test(context: EvaluationContext) -> bool:
            value = context.member.attributes.get(name)
            if value is None:
                return False
            if equals is not None and value != equals:
                return False
            if one_of is not None and value not in one_of:
                return False
            if low is not None or high is not None:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    return False
                return (low is None or value >= low) and (high is None or value <= high)
            return True

        expected = {
            k: v
            for k, v in (("equals", equals), ("one_of", one_of), ("min", low), ("max", high))
            if v is not None
        }
        return CompiledCondition(
            f"attribute.{name}",
            test,
            lambda c: c.member.attributes.get(name),
            expected or "present",
            frozenset({"profile"}),
        )


@condition
class ExperimentArm(ConditionModel):
    type: Literal["experiment_arm"] = "experiment_arm"
    experiment: str
    arms: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        name = self.experiment
        return _one_of(
            f"experiment.{name}", self.arms, lambda c: c.member.arms.get(name), "experiments"
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
    if isinstance(condition_model, _Window):
        return condition_model.days
    if isinstance(condition_model, AllOf | AnyOf):
        return max((window_days(c) for c in condition_model.conditions), default=0)
    if isinstance(condition_model, Not):
        return window_days(condition_model.condition)
    return 0
