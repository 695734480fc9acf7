"""The statistics of an experiment, pure: per-arm figures, the uplift of each arm over the
control in revenue per member with a 95 % confidence interval (Welch), the same adjusted by
CUPED on the pre-period's revenue, a sample-ratio-mismatch check, minimum-data warnings and
the return on investment. ``docs/analytics.md`` defines every figure.

Money and points arrive as integers per member; means, intervals and p-values are floats;
money in the answer is rounded to whole minor units. SciPy is imported inside the functions
that need it, so loading this module costs the API process nothing.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from kopilka.analytics.liability import PointRate

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

CONFIDENCE = 0.95
POWER = 0.80
SRM_ALPHA = 0.001  # a sample-ratio mismatch is flagged below this p-value
# Minimum data: below these an arm's figures are reported but not to be trusted.
MIN_MEMBERS = 100
MIN_BUYERS = 30
MIN_DAYS = 14  # two whole weeks, so every weekday is seen at least twice
CONTROL_NAMES = ("control", "holdout")


@dataclass(frozen=True)
class ArmData:
    """Per-member figures of one arm, aligned arrays: revenue and the pre-period's revenue
    (minor units), purchases, visits (days with a purchase), points earned, coupon
    discounts (minor units). ``percent`` is the share the arm was meant to get."""

    name: str
    percent: float | None
    revenue: IntArray
    pre_revenue: IntArray
    purchases: IntArray
    visits: IntArray
    points: IntArray
    discounts: IntArray

    @property
    def members(self) -> int:
        return int(self.revenue.size)


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    control: bool
    expected_percent: float | None
    members: int
    buyers: int
    purchases: int
    visits: int
    revenue: int
    revenue_per_member: int
    average_check: int | None
    points_earned: int
    points_cost: int | None
    discount_cost: int


@dataclass(frozen=True)
class Interval:
    """An estimate with its 95 % confidence interval and two-sided p-value (None when the
    data cannot give one: no spread at all)."""

    estimate: float
    low: float
    high: float
    p_value: float | None


@dataclass(frozen=True)
class Uplift:
    """One arm against the control: the difference in revenue per member (minor units),
    plain and CUPED-adjusted, and what it is worth."""

    arm: str
    versus: str
    absolute: Interval
    relative: Interval | None  # the difference over the control's mean
    cuped: Interval | None
    variance_reduction: float | None  # of CUPED: 1 − Var(adjusted) ÷ Var(revenue)
    preferred: str  # "cuped" or "plain": the narrower interval
    minimum_detectable: float  # the difference detectable with 80 % power at this size
    incremental_revenue: int
    incremental_margin: int
    incremental_points_cost: int | None
    incremental_discount_cost: int
    roi: int | None  # incremental margin − incremental cost
    roi_low: int | None
    roi_high: int | None


@dataclass(frozen=True)
class SampleRatio:
    observed: dict[str, int]
    expected: dict[str, float]
    chi_square: float
    p_value: float
    mismatch: bool


@dataclass(frozen=True)
class DataWarning:
    code: str
    detail: str


@dataclass(frozen=True)
class Analysis:
    control: str | None
    arms: list[ArmSummary]
    uplifts: list[Uplift]
    sample_ratio: SampleRatio | None
    warnings: list[DataWarning] = field(default_factory=list)


def choose_control(arms: Sequence[tuple[str, float | None]]) -> str | None:
    """The arm named ``control`` or ``holdout``, else the largest (the first of equals);
    None without at least two arms."""
    if len(arms) < 2:
        return None
    for name, _ in arms:
        if name in CONTROL_NAMES:
            return name
    return max(arms, key=lambda a: a[1] or 0)[0]


# --- the two-sample statistics --------------------------------------------------------------


def welch(treated: FloatArray, control: FloatArray) -> Interval | None:
    """Difference of means with Welch's t interval (unequal variances); None with fewer
    than two members on a side."""
    from scipy import stats

    nt, nc = treated.size, control.size
    if nt < 2 or nc < 2:
        return None
    diff = float(treated.mean() - control.mean())
    vt, vc = float(treated.var(ddof=1)) / nt, float(control.var(ddof=1)) / nc
    se2 = vt + vc
    if se2 == 0:
        return Interval(diff, diff, diff, None)
    df = se2**2 / (vt**2 / (nt - 1) + vc**2 / (nc - 1))
    se = math.sqrt(se2)
    q = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Interval(diff, diff - q * se, diff + q * se, p)


def relative(treated: FloatArray, control: FloatArray) -> Interval | None:
    """The difference over the control's mean, its interval by the delta method (the
    uncertainty of both means counted); None when the control's mean is zero."""
    from scipy import stats

    nt, nc = treated.size, control.size
    if nt < 2 or nc < 2:
        return None
    mt, mc = float(treated.mean()), float(control.mean())
    if mc == 0:
        return None
    vt, vc = float(treated.var(ddof=1)) / nt, float(control.var(ddof=1)) / nc
    ratio = mt / mc - 1
    se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    if se == 0:
        return Interval(ratio, ratio, ratio, None)
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    p = float(2 * stats.norm.sf(abs(ratio) / se))
    return Interval(ratio, ratio - z * se, ratio + z * se, p)


def cuped_theta(revenue: FloatArray, pre: FloatArray) -> float | None:
    """θ = Cov(revenue, pre) ÷ Var(pre) over every member of the compared arms; None when
    the pre-period has no spread (nobody bought, or everybody the same)."""
    if revenue.size < 2:
        return None
    var = float(pre.var(ddof=1))
    if var == 0:
        return None
    return float(np.cov(revenue, pre, ddof=1)[0, 1]) / var


def cuped_adjust(revenue: FloatArray, pre: FloatArray, theta: float, pre_mean: float) -> FloatArray:
    """Revenue minus the part the pre-period predicts: Y − θ (X − mean X)."""
    adjusted: FloatArray = revenue - theta * (pre - pre_mean)
    return adjusted


def sample_ratio(arms: Sequence[ArmData]) -> SampleRatio | None:
    """Chi-square goodness of fit of the members per arm to the configured shares; None
    when a share is unknown or no arm has members."""
    from scipy import stats

    if any(a.percent is None for a in arms):
        return None
    counted = [a for a in arms if (a.percent or 0) > 0]
    total = sum(a.members for a in counted)
    share = sum(a.percent or 0 for a in counted)
    if total == 0 or len(counted) < 2:
        return None
    observed = [a.members for a in counted]
    expected = [total * (a.percent or 0) / share for a in counted]
    chi2, p = stats.chisquare(observed, expected)
    return SampleRatio(
        observed={a.name: a.members for a in counted},
        expected={a.name: e for a, e in zip(counted, expected, strict=True)},
        chi_square=float(chi2),
        p_value=float(p),
        mismatch=bool(p < SRM_ALPHA),
    )


def minimum_detectable(interval: Interval) -> float:
    """The smallest true difference this test would find significant four times in five:
    (z₀.₉₇₅ + z₀.₈₀) × the standard error the interval implies."""
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    se = (interval.high - interval.low) / (2 * z)
    return (z + float(stats.norm.ppf(POWER))) * se


# --- the report -----------------------------------------------------------------------------


def summarise(arm: ArmData, control: bool, rate: PointRate | None) -> ArmSummary:
    revenue = int(arm.revenue.sum())
    purchases = int(arm.purchases.sum())
    points = int(arm.points.sum())
    return ArmSummary(
        arm=arm.name,
        control=control,
        expected_percent=arm.percent,
        members=arm.members,
        buyers=int((arm.purchases > 0).sum()),
        purchases=purchases,
        visits=int(arm.visits.sum()),
        revenue=revenue,
        revenue_per_member=round(revenue / arm.members) if arm.members else 0,
        average_check=round(revenue / purchases) if purchases else None,
        points_earned=points,
        points_cost=rate.value(points) if rate is not None else None,
        discount_cost=int(arm.discounts.sum()),
    )


def analyse(
    arms: Sequence[ArmData],
    *,
    control: str | None,
    margin_percent: int,
    rate: PointRate | None,
    window_days: float,
) -> Analysis:
    """Every figure of the experiment: the arms, each arm's uplift over ``control``, the
    sample-ratio check and the warnings."""
    summaries = [summarise(a, a.name == control, rate) for a in arms]
    base = next((a for a in arms if a.name == control), None)
    uplifts = []
    if base is not None:
        uplifts = [
            u
            for a in arms
            if a.name != control
            and (u := uplift(a, base, margin_percent=margin_percent, rate=rate)) is not None
        ]
    ratio = sample_ratio(arms)
    return Analysis(
        control, summaries, uplifts, ratio, warnings(summaries, ratio, arms, base, window_days)
    )


def uplift(
    treated: ArmData, control: ArmData, *, margin_percent: int, rate: PointRate | None
) -> Uplift | None:
    """``treated`` against ``control`` in revenue per member; None with fewer than two
    members on a side."""
    yt, yc = treated.revenue.astype(np.float64), control.revenue.astype(np.float64)
    plain = welch(yt, yc)
    if plain is None:
        return None
    xt, xc = treated.pre_revenue.astype(np.float64), control.pre_revenue.astype(np.float64)
    pooled_y, pooled_x = np.concatenate([yt, yc]), np.concatenate([xt, xc])
    theta = cuped_theta(pooled_y, pooled_x)
    cuped: Interval | None = None
    reduction: float | None = None
    if theta is not None:
        mean_x = float(pooled_x.mean())
        at, ac = cuped_adjust(yt, xt, theta, mean_x), cuped_adjust(yc, xc, theta, mean_x)
        cuped = welch(at, ac)
        var_y = float(pooled_y.var(ddof=1))
        if var_y > 0:
            reduction = 1 - float(np.concatenate([at, ac]).var(ddof=1)) / var_y
    use_cuped = cuped is not None and (cuped.high - cuped.low) < (plain.high - plain.low)
    chosen = cuped if use_cuped and cuped is not None else plain
    n = treated.members
    margin = margin_percent / 100
    points_cost = None
    if rate is not None:
        extra_points = float(treated.points.mean() - control.points.mean()) * n
        points_cost = round(extra_points * rate.money / rate.points)
    discount_cost = round(float(treated.discounts.mean() - control.discounts.mean()) * n)

    def net(difference: float) -> int | None:
        if points_cost is None:
            return None
        return round(difference * n * margin) - points_cost - discount_cost

    return Uplift(
        arm=treated.name,
        versus=control.name,
        absolute=plain,
        relative=relative(yt, yc),
        cuped=cuped,
        variance_reduction=reduction,
        preferred="cuped" if use_cuped else "plain",
        minimum_detectable=minimum_detectable(chosen),
        incremental_revenue=round(chosen.estimate * n),
        incremental_margin=round(chosen.estimate * n * margin),
        incremental_points_cost=points_cost,
        incremental_discount_cost=discount_cost,
        roi=net(chosen.estimate),
        roi_low=net(chosen.low),
        roi_high=net(chosen.high),
    )


def warnings(
    summaries: Sequence[ArmSummary],
    ratio: SampleRatio | None,
    arms: Sequence[ArmData],
    control: ArmData | None,
    window_days: float,
) -> list[DataWarning]:
    """What makes the figures untrustworthy, each with a code and a sentence."""
    found: list[DataWarning] = []
    if control is None:
        found.append(DataWarning("no_control", "there is no control arm to compare with"))
    for s in summaries:
        if s.members < MIN_MEMBERS:
            found.append(
                DataWarning(
                    "too_few_members",
                    f"arm {s.arm} has {s.members} members (fewer than {MIN_MEMBERS})",
                )
            )
        if s.buyers < MIN_BUYERS:
            found.append(
                DataWarning(
                    "too_few_buyers",
                    f"arm {s.arm} has {s.buyers} buyers in the window (fewer than {MIN_BUYERS})",
                )
            )
    if window_days < MIN_DAYS:
        found.append(
            DataWarning(
                "window_too_short",
                f"the window is {window_days:.1f} days long (shorter than {MIN_DAYS})",
            )
        )
    if ratio is not None and ratio.mismatch:
        found.append(
            DataWarning(
                "sample_ratio_mismatch",
                f"members per arm differ from the configured shares (p = {ratio.p_value:.2g} "
                f"< {SRM_ALPHA}): the split or the data is broken, do not trust the uplift",
            )
        )
    if arms and all(not a.pre_revenue.any() for a in arms):
        found.append(
            DataWarning("no_pre_period", "nobody bought in the pre-period: CUPED cannot help")
        )
    return found
