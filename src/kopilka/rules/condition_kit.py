"""The parts every condition type is made of: the registry and its decorator, the base
model, ranges, set membership, and line filters shared with effects."""

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.kit.types import Int
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


class Range(ConditionModel):
    """A value between ``min`` and ``max`` (both inclusive, either optional)."""

    min: Int | None = None
    max: Int | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "Range":
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


def one_of_values(
    label: str, allowed: list[str], value: Callable[[EvaluationContext], Any], *needs: str
) -> CompiledCondition:
    wanted = frozenset(allowed)
    return CompiledCondition(
        label, lambda c: value(c) in wanted, value, sorted(wanted), frozenset(needs)
    )


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
    a filter count the basket once. A filter by categories alone (the common case) reads
    the basket's per-category sums instead of its lines."""

    __slots__ = ("categories", "key", "match")

    def __init__(self, line_filter: LineFilter) -> None:
        self.key = ("lines", line_filter.key())
        self.match = line_filter.matcher()
        only_categories = line_filter.categories and not (
            line_filter.skus or line_filter.brands or line_filter.tags
        )
        self.categories = tuple(set(line_filter.categories)) if only_categories else None

    def __call__(self, context: EvaluationContext) -> tuple[int, int]:
        if self.categories is not None:
            return by_categories(context, self.categories)
        return matched_lines(context, self.key, self.match)


def by_categories(context: EvaluationContext, categories: tuple[str, ...]) -> tuple[int, int]:
    """Quantity and amount of the basket's lines in ``categories``."""
    totals: dict[str | None, tuple[int, int]] | None = context.amount_cache.get("qa-by-category")
    if totals is None:
        totals = {}
        for line in context.lines:
            quantity, amount = totals.get(line.category, (0, 0))
            totals[line.category] = (quantity + line.quantity, amount + line.amount)
        context.amount_cache["qa-by-category"] = totals
    quantity = amount = 0
    for category in categories:
        found = totals.get(category)
        if found is not None:
            quantity += found[0]
            amount += found[1]
    return quantity, amount


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
