"""Conditions on the member's state, read at evaluation time: tier, tenure, birthday,
history counters and windows, segments, predictions (churn risk, CLV), tags, custom
attributes, experiment arms."""

import calendar
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import Field

from kopilka.kit.types import Flag, Int
from kopilka.rules.condition_kit import ConditionModel, Range, condition, one_of_values
from kopilka.rules.domain import CompiledCondition, EvaluationContext


def _days_between(earlier: datetime | None, later: datetime) -> int | None:
    return None if earlier is None else (later - earlier).days


@condition
class Tier(ConditionModel):
    type: Literal["tier"] = "tier"
    tiers: list[str] = Field(min_length=1)

    def compile(self) -> CompiledCondition:
        return one_of_values("tier", self.tiers, lambda c: c.member.tier, "tier")


@condition
class TenureDays(Range):
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
class DaysSinceLastPurchase(Range):
    """Whole days since the member's previous purchase (fails for a first purchase)."""

    type: Literal["days_since_last_purchase"] = "days_since_last_purchase"

    def compile(self) -> CompiledCondition:
        return self._between(
            "days_since_last_purchase",
            lambda c: _days_between(c.member.last_purchase_at, c.occurred_at),
            "history",
        )


class Window(Range):
    days: Int = Field(ge=1, le=3660)

    def _in_window(self, context: EvaluationContext) -> tuple[int, int]:
        """Purchases and spend in the window, once per basket and window length."""
        key = ("window", self.days)
        found: tuple[int, int] | None = context.amount_cache.get(key)
        if found is None:
            since = context.occurred_at - timedelta(days=self.days)
            amounts = [amount for moment, amount in context.member.recent if moment > since]
            found = context.amount_cache[key] = (len(amounts), sum(amounts))
        return found


@condition
class PurchasesInWindow(Window):
    """Purchases in the ``days`` before this one (this one not counted)."""

    type: Literal["purchases_in_window"] = "purchases_in_window"

    def compile(self) -> CompiledCondition:
        return self._between(
            f"purchases_in_{self.days}_days", lambda c: self._in_window(c)[0], "history"
        )


@condition
class SpendInWindow(Window):
    """Spend (minor units) in the ``days`` before this purchase."""

    type: Literal["spend_in_window"] = "spend_in_window"

    def compile(self) -> CompiledCondition:
        return self._between(
            f"spend_in_{self.days}_days", lambda c: self._in_window(c)[1], "history"
        )


@condition
class LifetimeSpend(Range):
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
class ChurnRisk(Range):
    """The member's churn risk (1 − P(alive) of the program's last customer-lifetime fit,
    in whole percent, 0–100) is between ``min`` and ``max``. False for a member the fit
    made no prediction for (no purchase yet, or no fit)."""

    type: Literal["churn_risk"] = "churn_risk"
    min: Int | None = Field(default=None, ge=0, le=100)
    max: Int | None = Field(default=None, ge=0, le=100)

    def compile(self) -> CompiledCondition:
        return self._between("churn_risk", lambda c: c.member.churn_risk, "predictions")


@condition
class Clv(Range):
    """The member's predicted customer lifetime value (minor units, over the program's
    CLV horizon, discounted) is between ``min`` and ``max``. False for a member the fit
    made no prediction for."""

    type: Literal["clv"] = "clv"
    min: Int | None = Field(default=None, ge=0, le=10**13)
    max: Int | None = Field(default=None, ge=0, le=10**13)

    def compile(self) -> CompiledCondition:
        return self._between("clv", lambda c: c.member.clv, "predictions")


@condition
class MemberTag(ConditionModel):
    """The member has any of ``tags`` (all of them with ``all: true``)."""

    type: Literal["member_tag"] = "member_tag"
    tags: list[str] = Field(min_length=1)
    all: Flag = False

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
    equals: str | Int | Flag | None = None
    one_of: list[str | Int] | None = None
    min: Int | None = None
    max: Int | None = None

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
        return one_of_values(
            f"experiment.{name}", self.arms, lambda c: c.member.arms.get(name), "experiments"
        )
