"""API shapes of liability and breakage, and of experiments' reports
(``docs/analytics.md`` defines every figure). Money is in minor units of the
program's money currency, points in whole points; rates, intervals and p-values are floats.
Each shape reads the service's dataclasses as they are (``from_attributes``)."""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PointValueOut(_Read):
    points: int
    money: int = Field(description="What `points` points are worth, minor units.")


# --- liability ------------------------------------------------------------------------------


class ExpiryMonthOut(_Read):
    month: str | None = Field(
        description="YYYY-MM of the points' last spendable day (program's time zone); null: "
        "they never expire."
    )
    points: int
    value: int | None


class CohortOut(_Read):
    month: str = Field(description="YYYY-MM the points were earned in (program's time zone).")
    earned: int
    redeemed: int = Field(description="Spent, debited or taken back by returns.")
    expired: int
    open: int = Field(description="Still in the members' lots (available or pending).")
    mature: bool = Field(description="The month is over and none of its points is left.")
    breakage_rate: float | None = Field(description="expired ÷ earned, for a mature cohort.")


class BreakageOut(_Read):
    rate: float | None = Field(
        description="Expected breakage: expired ÷ earned over `months`; null: no mature "
        "cohort yet, none assumed."
    )
    months: list[str]
    earned: int
    expired: int


class CurrencyLiabilityOut(_Read):
    currency: str
    kind: str
    point_value: PointValueOut | None
    outstanding_points: int = Field(description="Available and pending points.")
    pending_points: int
    overdue_points: int = Field(description="Past their expiry, not yet moved by the job.")
    outstanding_value: int | None
    by_expiry: list[ExpiryMonthOut]
    cohorts: list[CohortOut]
    breakage: BreakageOut
    liability_after_breakage: int | None = Field(
        description="outstanding_value × (1 − breakage rate), rounded up."
    )


class LiabilityOut(_Read):
    as_of: datetime
    money_currency: str
    timezone: str
    currencies: list[CurrencyLiabilityOut]


class LiabilitySnapshotOut(_Read):
    day: date = Field(description="The program's local date the figures were taken on.")
    currency: str
    taken_at: datetime = Field(description="When the figures were worked out.")
    outstanding_points: int
    pending_points: int
    overdue_points: int
    outstanding_value: int | None
    breakage_rate: float | None = Field(
        description="Expected breakage then (the 12 latest mature cohorts); null: none mature."
    )
    liability_after_breakage: int | None


class LiabilityHistoryOut(_Read):
    start: date = Field(description="The first day asked for (`from`).")
    end: date = Field(description="The last day asked for (`to`), included.")
    money_currency: str
    timezone: str
    snapshots: list[LiabilitySnapshotOut] = Field(
        description="One per stored day and currency, by day then currency; a day the "
        "snapshot was not taken has none."
    )


# --- experiments ----------------------------------------------------------------------------


class ArmShareOut(_Read):
    name: str
    percent: int


class ExperimentInfoOut(_Read):
    key: str = Field(description="The rules experiment's name, or `broadcast:<id>`.")
    kind: str = Field(description="`rules` or `broadcast`.")
    name: str
    arms: list[ArmShareOut]
    started_at: datetime | None
    assigned: int


class ExperimentList(BaseModel):
    items: list[ExperimentInfoOut]


class ArmOut(_Read):
    arm: str
    control: bool
    expected_percent: float | None
    members: int
    buyers: int
    purchases: int
    visits: int = Field(description="Days (UTC) with a purchase, summed over members.")
    revenue: int
    revenue_per_member: int
    average_check: int | None
    points_earned: int
    points_cost: int | None
    discount_cost: int


class IntervalOut(_Read):
    estimate: float
    low: float
    high: float
    p_value: float | None


class UpliftOut(_Read):
    arm: str
    versus: str
    absolute: IntervalOut = Field(description="Difference in revenue per member, minor units.")
    relative: IntervalOut | None = Field(description="The difference over the control's mean.")
    cuped: IntervalOut | None = Field(description="The difference adjusted by CUPED.")
    variance_reduction: float | None
    preferred: str
    minimum_detectable: float
    incremental_revenue: int
    incremental_margin: int
    incremental_points_cost: int | None
    incremental_discount_cost: int
    roi: int | None
    roi_low: int | None
    roi_high: int | None


class SampleRatioOut(_Read):
    observed: dict[str, int]
    expected: dict[str, float]
    chi_square: float
    p_value: float
    mismatch: bool


class DataWarningOut(_Read):
    code: str
    detail: str


class AnalysisOut(_Read):
    control: str | None
    arms: list[ArmOut]
    uplifts: list[UpliftOut]
    sample_ratio: SampleRatioOut | None
    warnings: list[DataWarningOut]


class ExperimentOut(_Read):
    key: str
    kind: str
    name: str
    window_from: datetime
    window_to: datetime
    pre_period_from: datetime
    population: str
    money_currency: str
    points_currency: str
    point_value: PointValueOut | None
    gross_margin_percent: int
    recorded: dict[str, int] = Field(
        description="Rules experiments: members recorded per arm on first use (not the "
        "population compared)."
    )
    analysis: AnalysisOut
