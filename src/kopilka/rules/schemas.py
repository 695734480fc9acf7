"""Rules as data: the part of the program document that says who earns what, when, and why.

A rule is a trigger, conditions (all must hold; ``any``/``not`` combine them), effects,
optional limits, a schedule, a priority and an exclusive group. ``earning`` entries
(``per_amount``, ``percent``) are the short form of the base earning rule: each is a rule
on every purchase with a single earning effect.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.kit.types import INT32_MAX, MONEY_MAX, POINTS_MAX, Flag, Int, LocalInstant
from kopilka.rules.conditions import Condition
from kopilka.rules.effects import EffectSpec

RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
Trigger = Literal[
    "purchase", "return", "signup", "profile_completed", "review", "birthday", "event"
]


class _BaseEarning(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RuleId
    currency: str = "points"
    # Lines in these categories earn nothing from this rule (e.g. tobacco, gift cards).
    exclude_categories: list[str] = Field(default_factory=list)


class PerAmountRule(_BaseEarning):
    """``points`` for every full ``per`` minor money units of the eligible amount (floor)."""

    type: Literal["per_amount"]
    points: Int = Field(default=1, ge=1, le=POINTS_MAX)
    per: Int = Field(default=100, ge=1, le=MONEY_MAX)


class PercentRule(_BaseEarning):
    """``basis_points``/10,000 of the eligible amount, floored (e.g. 300 = 3 % cashback)."""

    type: Literal["percent"]
    basis_points: Int = Field(ge=1, le=10_000)


EarningRule = Annotated[PerAmountRule | PercentRule, Field(discriminator="type")]


class PeriodLimit(BaseModel):
    """At most ``times`` uses and/or ``amount`` units of the rule's currency per ``period``,
    counted per member or across the whole program. Periods are calendar periods in the
    program's time zone (ISO weeks)."""

    model_config = ConfigDict(extra="forbid")

    per: Literal["member", "program"] = "member"
    period: Literal["day", "week", "month", "year", "ever"]
    times: Int | None = Field(default=None, ge=1, le=INT32_MAX)
    amount: Int | None = Field(default=None, ge=1, le=POINTS_MAX)

    @model_validator(mode="after")
    def _something_limited(self) -> "PeriodLimit":
        if self.times is None and self.amount is None:
            raise ValueError("give times, amount or both")
        return self


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_per_event: Int | None = Field(default=None, ge=1, le=POINTS_MAX)
    periods: list[PeriodLimit] = Field(default_factory=list)
    # A campaign budget in the rule's currency, across the program, for ever; the rule stops
    # when it is spent (checked under a lock, so concurrent purchases cannot overspend it).
    budget: Int | None = Field(default=None, ge=1, le=POINTS_MAX)


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    valid_from: LocalInstant | None = None
    valid_to: LocalInstant | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "Schedule":
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_from must be before valid_to")
        return self


class ExperimentRef(BaseModel):
    """Run the rule only for members in ``arm`` of ``experiment``."""

    model_config = ConfigDict(extra="forbid")

    experiment: str
    arm: str


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RuleId
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    enabled: Flag = True
    trigger: Trigger = "purchase"
    event: str | None = Field(default=None, description="the custom event's name")
    conditions: list[Condition] = Field(default_factory=list)
    effects: list[EffectSpec] = Field(min_length=1)
    limits: Limits = Field(default_factory=Limits)
    schedule: Schedule = Field(default_factory=Schedule)
    priority: Int = Field(default=0, ge=-1000, le=1000)
    group: str | None = Field(default=None, max_length=100)
    experiment: ExperimentRef | None = None

    @model_validator(mode="after")
    def _event_named(self) -> "Rule":
        if self.trigger == "event" and not self.event:
            raise ValueError("a rule on trigger 'event' names the event: event: <name>")
        if self.trigger != "event" and self.event is not None:
            raise ValueError("event: only for trigger 'event'")
        return self

    def currency(self) -> str:
        """The currency its limits and budget count in: that of its first earning effect."""
        return next((c for e in self.effects if (c := e.earns_in()) is not None), "points")


class Arm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    percent: Int = Field(ge=0, le=100)


class Experiment(BaseModel):
    """Members split at random, stickily, between arms by share (e.g. 10 % ``test``,
    90 % ``holdout``); the assignment is a hash of the member and the experiment's name,
    so it never changes, and it is recorded on first use."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    arms: list[Arm] = Field(min_length=2)

    @model_validator(mode="after")
    def _shares_add_up(self) -> "Experiment":
        if sum(arm.percent for arm in self.arms) != 100:
            raise ValueError("arms: percents must add up to 100")
        if len({arm.name for arm in self.arms}) != len(self.arms):
            raise ValueError("arms: names must be unique")
        return self
