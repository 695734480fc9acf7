"""The program settings document and its validation.

The settings are data: currencies, how points are earned, when they expire, how long they
stay pending, how long a hold lasts and what a return does to points already spent. The
rules engine reads the ``earning`` rules from here.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.kit.types import Flag, Int, TimeZone
from kopilka.programs.ladder import TierLadder
from kopilka.rules.schemas import EarningRule, Experiment, Rule

CurrencyCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


# What a return does to points the member has already spent: the balance may go negative,
# or only what is still available is taken back.
ClawbackPolicy = Literal["allow_negative", "cap_at_available"]


class Currency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: CurrencyCode
    kind: Literal["points", "money"] = "points"
    name: str | None = None


class ExpiryPolicy(BaseModel):
    """When earned points expire.

    * ``never``;
    * ``days``: ``days`` days after they were earned;
    * ``end_of_month``: at the end of the month ``months`` months after the month of earning
      (0 = the end of that same month);
    * ``end_of_year``: at the end of the year ``years`` years after the year of earning.

    Month and year ends are midnight in the program's time zone.
    """

    model_config = ConfigDict(extra="forbid")

    policy: Literal["never", "days", "end_of_month", "end_of_year"] = "never"
    days: Int = Field(default=365, ge=1, le=36500)
    months: Int = Field(default=12, ge=0, le=1200)
    years: Int = Field(default=1, ge=0, le=100)


class PointsPayment(BaseModel):
    """Paying part of a basket with points at the till.

    ``points`` points pay ``money`` minor units (1 and 100: a point is worth a rouble);
    a purchase spends a multiple of the smallest number of points worth whole minor units.
    Points may pay at most ``max_share_percent`` of what is left of the basket after its
    coupons, never for lines of ``excluded_categories``, and not at all below ``min_points``.
    """

    model_config = ConfigDict(extra="forbid")

    currency: CurrencyCode = "points"
    points: Int = Field(default=1, ge=1, le=10**6)
    money: Int = Field(default=100, ge=1, le=10**9)
    min_points: Int = Field(default=0, ge=0, le=10**12)
    max_share_percent: Int = Field(default=100, ge=1, le=100)
    excluded_categories: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=200
    )


AttributeType = Literal["string", "integer", "number", "boolean", "date", "choice"]
AttributeKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class AttributeSpec(BaseModel):
    """One custom member attribute the program declares: its type, whether it is personal
    data (erased with the person, logged when staff read it), and for ``choice`` the values
    it may take."""

    model_config = ConfigDict(extra="forbid")

    type: AttributeType
    personal: Flag = False
    values: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=200
    )
    description: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _choices(self) -> "AttributeSpec":
        if (self.type == "choice") != bool(self.values):
            raise ValueError("values: a choice attribute lists its values, no other type does")
        return self


class Retention(BaseModel):
    """How long members' messages and interactions are kept (None: for good); older ones
    are deleted by the daily ``privacy-retention`` job."""

    model_config = ConfigDict(extra="forbid")

    messages_days: Int | None = Field(default=None, ge=1, le=36500)
    interactions_days: Int | None = Field(default=None, ge=1, le=36500)


class PointValue(BaseModel):
    """What points cost the program's books: ``points`` points are worth ``money`` minor
    units of the program's money currency."""

    model_config = ConfigDict(extra="forbid")

    points: Int = Field(default=1, ge=1, le=10**6)
    money: Int = Field(default=100, ge=0, le=10**9)


class JourneySettings(BaseModel):
    """What every journey of the program shares (``docs/journeys.md``)."""

    model_config = ConfigDict(extra="forbid")

    # Members held out of every journey (sent nothing by any), to measure journeys as a
    # whole against; 0–50 % of members, the same ones for every journey.
    holdout_percent: Int = Field(default=0, ge=0, le=50)


class AnalyticsSettings(BaseModel):
    """The figures analytics needs from the business (``docs/analytics.md``)."""

    model_config = ConfigDict(extra="forbid")

    # None: the rate at which points pay at the till (``points_payment``), else 1 point =
    # 100 minor units.
    point_value: PointValue | None = None
    # The share of revenue that is margin: incremental revenue × this is incremental margin.
    gross_margin_percent: Int = Field(default=30, ge=0, le=100)
    # Customer lifetime value: future spend discounted at this yearly rate, over this horizon.
    discount_rate_percent: Int = Field(default=10, ge=0, le=100)
    clv_horizon_weeks: Int = Field(default=52, ge=1, le=520)


class ProgramSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    money_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"
    timezone: TimeZone = "UTC"
    currencies: list[Currency] = Field(default_factory=lambda: [Currency(code="points")])
    earning: list[EarningRule] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    # Exclusive groups: which rule of a group applies when several fire.
    groups: dict[str, Literal["best", "priority"]] = Field(default_factory=dict)
    experiments: list[Experiment] = Field(default_factory=list)
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    pending_days: Int = Field(default=0, ge=0, le=365)
    hold_minutes: Int = Field(default=30, ge=1, le=60 * 24 * 30)
    clawback: ClawbackPolicy = "allow_negative"
    auto_enrol: Flag = False
    tiers: TierLadder | None = None
    points_payment: PointsPayment | None = None
    # What rules earn on when coupons or points paid part of a basket: the money paid
    # (``paid``, the default) or the whole basket (``total``).
    earn_on: Literal["paid", "total"] = "paid"
    # Once the program keeps a list of stores, a purchase must name one of them (422
    # otherwise) unless free-form store names are allowed.
    free_form_stores: Flag = False
    # The custom attributes members may carry. Empty: any attribute, untyped. Otherwise
    # only these (and ``timezone``), each checked against its type.
    member_attributes: dict[AttributeKey, AttributeSpec] = Field(
        default_factory=dict, max_length=100
    )
    retention: Retention = Field(default_factory=Retention)
    # A purchase recorded without a member may be claimed by one (by its receipt id) for
    # this many days after it was made; 0: never.
    claim_window_days: Int = Field(default=30, ge=0, le=365)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    journeys: JourneySettings = Field(default_factory=JourneySettings)

    @model_validator(mode="after")
    def _rules_fit_the_program(self) -> "ProgramSettings":
        codes = {c.code for c in self.currencies}
        if len(codes) != len(self.currencies):
            raise ValueError("currencies: codes must be unique")
        for index, base in enumerate(self.earning):
            if base.currency not in codes:
                raise ValueError(
                    f"earning[{index}] ({base.id}): currency {base.currency!r} is not one of "
                    f"the program's currencies {sorted(codes)}"
                )
        ids = [rule.id for rule in self.earning] + [rule.id for rule in self.rules]
        if repeated := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"earning, rules: rule ids must be unique; repeated: {repeated}")
        experiments = {e.name: {arm.name for arm in e.arms} for e in self.experiments}
        for index, rule in enumerate(self.rules):
            _check_rule(rule, f"rules[{index}] ({rule.id})", codes, set(ids), experiments)
        _check_groups(self.rules)
        _check_tier_names(self)
        if self.points_payment is not None and self.points_payment.currency not in codes:
            raise ValueError(
                f"points_payment.currency {self.points_payment.currency!r} is not one of "
                f"the program's currencies {sorted(codes)}"
            )
        return self

    def currency_codes(self) -> list[str]:
        return [c.code for c in self.currencies]

    def points_currency(self) -> str:
        """The program's main points currency: the first of kind ``points`` (what a
        purchase's ``points_earned`` sums)."""
        return next(
            (c.code for c in self.currencies if c.kind == "points"), self.currencies[0].code
        )


class ProgramOut(BaseModel):
    id: UUID
    slug: str
    name: str
    settings: ProgramSettings
    created_at: datetime
    updated_at: datetime


def _check_rule(
    rule: Rule, where: str, currencies: set[str], ids: set[str], experiments: dict[str, set[str]]
) -> None:
    """Cross-references a single rule cannot check on its own."""
    for effect in rule.effects:
        currency = effect.earns_in()
        if currency is not None and currency not in currencies:
            raise ValueError(f"{where}: currency {currency!r} is not one of {sorted(currencies)}")
        unknown = [r for r in getattr(effect, "of", None) or [] if r not in ids]
        if unknown:
            raise ValueError(f"{where}: multiplier of unknown rules {unknown}")
    if rule.experiment is not None:
        arms = experiments.get(rule.experiment.experiment)
        if arms is None:
            raise ValueError(f"{where}: no experiment {rule.experiment.experiment!r}")
        if rule.experiment.arm not in arms:
            raise ValueError(f"{where}: experiment has no arm {rule.experiment.arm!r}")


def _check_groups(rules: list[Rule]) -> None:
    """An exclusive group holds earning rules or multipliers, not both: multipliers run after
    every earning rule has been decided, so the two kinds cannot compete."""
    kinds: dict[str, set[bool]] = {}
    for rule in rules:
        if rule.group is not None:
            multiplier = any(
                effect.type in ("multiplier", "tier_multiplier") for effect in rule.effects
            )
            kinds.setdefault(rule.group, set()).add(multiplier)
    mixed = sorted(group for group, seen in kinds.items() if len(seen) > 1)
    if mixed:
        raise ValueError(f"groups {mixed}: a group holds earning rules or multipliers, not both")


def _tier_names(node: object) -> Iterator[str]:
    """Every tier a condition names, however deeply nested in all/any/not."""
    if isinstance(node, dict):
        if node.get("type") == "tier":
            yield from node.get("tiers", [])
        for value in node.values():
            yield from _tier_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _tier_names(item)


def _check_tier_names(settings: ProgramSettings) -> None:
    """A ``tier`` condition names tiers of the ladder (any name when there is no ladder:
    tiers may be set up after the rules)."""
    if settings.tiers is None:
        return
    known = {level.id for level in settings.tiers.levels}
    for index, rule in enumerate(settings.rules):
        unknown = sorted(set(_tier_names(rule.model_dump(include={"conditions"}))) - known)
        if unknown:
            raise ValueError(
                f"rules[{index}] ({rule.id}): tier condition names tiers not on the ladder "
                f"{unknown}; the ladder has {sorted(known)}"
            )
