"""The experiments' statistics on simulated data with a known uplift (no database).

Members have a spending level of their own (gamma-distributed, mean 3,000 kopecks per
period); in each period a member buys with probability 0.9 and then spends their level times
a log-normal noise of mean 1. Treatment multiplies spending by 1.10, so the true uplift in
revenue per member is 0.10 × 0.9 × 3,000 = 270 kopecks (10 %). The pre-period is the same
member before the experiment: it shares their level, which is what CUPED uses.
"""

import numpy as np
import pytest

from kopilka.analytics import experiments
from kopilka.analytics.experiments import ArmData, analyse, choose_control, sample_ratio
from kopilka.analytics.liability import PointRate

LEVEL_MEAN = 3_000.0
BUY_CHANCE = 0.9
LIFT = 0.10
TRUE_UPLIFT = LIFT * BUY_CHANCE * LEVEL_MEAN  # 270 kopecks per member
RATE = PointRate(1, 100)


def period(rng: np.random.Generator, level: np.ndarray, factor: float) -> np.ndarray:
    buys = rng.random(level.size) < BUY_CHANCE
    noise = rng.lognormal(-0.5 * 0.3**2, 0.3, level.size)
    return np.round(buys * level * noise * factor).astype(np.int64)


def arm(rng: np.random.Generator, name: str, members: int, factor: float) -> ArmData:
    level = rng.gamma(2.0, LEVEL_MEAN / 2.0, members)
    revenue = period(rng, level, factor)
    purchases = (revenue > 0).astype(np.int64)
    points = revenue // 100  # 1 point per rouble
    return ArmData(
        name=name,
        percent=50.0,
        revenue=revenue,
        pre_revenue=period(rng, level, 1.0),
        purchases=purchases,
        visits=purchases,
        points=points,
        discounts=np.zeros(members, dtype=np.int64),
    )


def simulate(seed: int, members: int = 1_000) -> list[ArmData]:
    rng = np.random.default_rng(seed)
    return [arm(rng, "test", members, 1 + LIFT), arm(rng, "control", members, 1.0)]


def test_the_interval_covers_the_known_uplift_and_cuped_narrows_it() -> None:
    report = analyse(
        simulate(20_260_410), control="control", margin_percent=30, rate=RATE, window_days=28
    )
    (lift,) = report.uplifts
    plain, cuped, relative = lift.absolute, lift.cuped, lift.relative
    assert cuped is not None and relative is not None
    assert plain.low < TRUE_UPLIFT < plain.high
    assert cuped.low < TRUE_UPLIFT < cuped.high
    assert relative.low < LIFT < relative.high
    assert cuped.high - cuped.low < 0.9 * (plain.high - plain.low)
    assert lift.variance_reduction is not None and lift.variance_reduction > 0.2
    assert lift.preferred == "cuped"
    assert report.sample_ratio is not None and not report.sample_ratio.mismatch
    assert report.warnings == []
    assert report.control == "control" and [a.arm for a in report.arms] == ["test", "control"]


def test_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    """Over 200 simulated experiments each interval misses the true uplift about 10 times;
    fewer than 4 or more than 20 misses would mean the intervals are wrong (each bound has
    a chance below 0.3 % under a binomial(200, 0.05))."""
    misses = {"plain": 0, "cuped": 0}
    for seed in range(200):
        (lift,) = analyse(
            simulate(seed, members=400),
            control="control",
            margin_percent=30,
            rate=RATE,
            window_days=28,
        ).uplifts
        assert lift.cuped is not None
        for name, interval in (("plain", lift.absolute), ("cuped", lift.cuped)):
            misses[name] += not interval.low <= TRUE_UPLIFT <= interval.high
    assert 4 <= misses["plain"] <= 20, misses
    assert 4 <= misses["cuped"] <= 20, misses


def test_welch_matches_a_hand_computed_interval() -> None:
    """Treated 1, 2, 3, 4 against 1, 1, 1, 3: means 2.5 and 1.5, variances 5/3 and 1; the
    standard error √(5/12 + 1/4) = √(2/3); Welch's degrees of freedom
    (2/3)² ÷ ((5/12)²/3 + (1/4)²/3) = 5.647…, whose t₀.₉₇₅ is 2.4845 and the two-sided
    p-value of t = 1 ÷ √(2/3) = 1.2247 is 0.2693."""
    interval = experiments.welch(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 3]))
    assert interval is not None
    se = (2 / 3) ** 0.5
    assert interval.estimate == pytest.approx(1.0)
    assert interval.high - interval.estimate == pytest.approx(2.4845 * se, rel=1e-4)
    assert interval.p_value == pytest.approx(0.2693, abs=1e-4)


def test_a_sample_ratio_mismatch_is_flagged() -> None:
    arms = simulate(7)
    lopsided = [
        ArmData(
            a.name,
            50.0,
            *(
                x[:n]
                for x in (a.revenue, a.pre_revenue, a.purchases, a.visits, a.points, a.discounts)
            ),
        )
        for a, n in zip(arms, (1_000, 820), strict=True)
    ]
    ratio = sample_ratio(lopsided)
    # Against 50/50: χ² = 2 × 90² ÷ 910 = 17.8, p = 0.000025 (1,000 against 860 would give
    # χ² = 10.5, p = 0.0012: not flagged).
    assert ratio is not None and ratio.mismatch and ratio.p_value < 0.001
    report = analyse(lopsided, control="control", margin_percent=30, rate=RATE, window_days=28)
    assert [w.code for w in report.warnings] == ["sample_ratio_mismatch"]
    fair = sample_ratio(simulate(7))
    assert fair is not None and not fair.mismatch and fair.p_value == pytest.approx(1.0)


def test_a_tiny_short_experiment_gets_every_warning() -> None:
    rng = np.random.default_rng(3)
    tiny = [arm(rng, "test", 10, 1.1), arm(rng, "holdout", 12, 1.0)]
    zero_pre = [
        ArmData(
            a.name,
            a.percent,
            a.revenue,
            np.zeros_like(a.pre_revenue),
            a.purchases,
            a.visits,
            a.points,
            a.discounts,
        )
        for a in tiny
    ]
    report = analyse(zero_pre, control="holdout", margin_percent=30, rate=RATE, window_days=3)
    codes = sorted({w.code for w in report.warnings})
    assert codes == ["no_pre_period", "too_few_buyers", "too_few_members", "window_too_short"]
    (lift,) = report.uplifts
    assert lift.cuped is None and lift.preferred == "plain"


def test_roi_is_incremental_margin_less_incremental_cost() -> None:
    """Four treated members spend 1,000 kopecks and earn 10 points each; four control members
    spend 800 and earn nothing. Uplift 200 per member (no spread: the interval is the
    point); margin 30 % of 4 × 200 = 240; points 40 × 100 kopecks = 4,000; discounts 4 × 50
    = 200. ROI = 240 − 4,000 − 200 = −3,960."""

    def fixed(name: str, revenue: int, points: int, discount: int) -> ArmData:
        full = np.full(4, revenue, dtype=np.int64)
        return ArmData(
            name,
            50.0,
            full,
            full,
            np.ones(4, dtype=np.int64),
            np.ones(4, dtype=np.int64),
            np.full(4, points, dtype=np.int64),
            np.full(4, discount, dtype=np.int64),
        )

    report = analyse(
        [fixed("test", 1_000, 10, 50), fixed("control", 800, 0, 0)],
        control="control",
        margin_percent=30,
        rate=RATE,
        window_days=28,
    )
    (lift,) = report.uplifts
    assert (lift.absolute.estimate, lift.absolute.low, lift.absolute.high) == (200, 200, 200)
    assert (lift.incremental_revenue, lift.incremental_margin) == (800, 240)
    assert (lift.incremental_points_cost, lift.incremental_discount_cost) == (4_000, 200)
    assert lift.roi == lift.roi_low == lift.roi_high == -3_960
    test_arm = report.arms[0]
    assert (test_arm.revenue, test_arm.revenue_per_member, test_arm.average_check) == (
        4_000,
        1_000,
        1_000,
    )
    assert (test_arm.points_earned, test_arm.points_cost, test_arm.discount_cost) == (
        40,
        4_000,
        200,
    )


def test_the_control_is_named_control_or_holdout_else_the_largest_arm() -> None:
    assert choose_control([("a", 30), ("holdout", 10), ("b", 60)]) == "holdout"
    assert choose_control([("a", 30), ("b", 70)]) == "b"
    assert choose_control([("a", 50), ("b", 50)]) == "a"
    assert choose_control([("only", 100)]) is None
