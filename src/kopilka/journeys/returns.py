"""A journey's cost and return on investment, pure (``docs/journeys.md``, "Cost and ROI").

- **cost** = the points its steps credited, each currency valued in money as the liability
  values it, + the discounts of its coupons used (uses a return gave back not counted) +
  the value of its personal offers used where it is known;
- **incremental revenue** = (revenue per treated run − revenue per held-out run) × treated
  runs, a run's revenue being its member's purchases (net of returns) from the moment it
  entered through the goal's window (30 days without a goal), up to now;
- **ROI** = (incremental revenue − cost) ÷ cost — null, with the reason, while there is no
  held-out run, no treated run or no cost (nothing given yet, or points whose value is
  unknown).

The 95 % interval of the incremental revenue is Welch's, as the experiments compute it
(``analytics/experiments.py``). Money is in minor units, rounded to the nearest.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kopilka.analytics.liability import PointRate
from kopilka.journeys.statistics import Interval

# The window over which a run's revenue counts when the journey has no goal.
DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class PointsGiven:
    currency: str
    points: int
    value: int | None  # minor units of money; None: the currency has no known value


@dataclass(frozen=True)
class Cost:
    money_currency: str
    points: list[PointsGiven] = field(default_factory=list)
    points_value: int = 0  # of the currencies with a known value
    coupons_used: int = 0
    coupon_discounts: int = 0
    offers_used: dict[str, int] = field(default_factory=dict)  # kind → offers used
    offers_value: int = 0
    offers_unvalued: int = 0  # used offers whose value is not known (counted as 0)
    total: int | None = 0  # None while some points have no known value


@dataclass(frozen=True)
class Return:
    window_days: int
    treated: int  # treated runs counted
    held_out: int
    treated_revenue: int
    held_out_revenue: int
    treated_revenue_per_member: int | None
    held_out_revenue_per_member: int | None
    incremental_revenue: int | None
    incremental_revenue_interval: Interval | None  # 95 % (Welch); None with < 2 on a side
    roi: float | None
    reason: str | None  # why ``roi`` is null


def journey_cost(
    money_currency: str,
    credited: Mapping[str, int],
    rates: Mapping[str, PointRate | None],
    coupons: tuple[int, int],
    offers: tuple[Mapping[str, int], int, int],
) -> Cost:
    """What the journey's gifts cost: ``credited`` currency → points its steps gave,
    ``rates`` what a point of each is worth, ``coupons`` (uses, discounts) of its codes,
    ``offers`` (kind → used, value, used without a known value) of its offers."""
    coupons_used, coupon_discounts = coupons
    offers_used, offers_value, offers_unvalued = offers
    given = []
    for currency in sorted(credited):
        rate = rates.get(currency)
        points = credited[currency]
        given.append(PointsGiven(currency, points, rate.value(points) if rate else None))
    points_value = sum(g.value for g in given if g.value is not None)
    unknown = any(g.value is None and g.points for g in given)
    return Cost(
        money_currency=money_currency,
        points=given,
        points_value=points_value,
        coupons_used=coupons_used,
        coupon_discounts=coupon_discounts,
        offers_used=dict(offers_used),
        offers_value=offers_value,
        offers_unvalued=offers_unvalued,
        total=None if unknown else points_value + coupon_discounts + offers_value,
    )


def journey_return(
    treated: Sequence[int], held_out: Sequence[int], window_days: int, cost: Cost
) -> Return:
    """``treated`` and ``held_out``: each run's revenue over its window."""
    nt, nc = len(treated), len(held_out)
    rt, rc = sum(treated), sum(held_out)
    per_treated = round(rt / nt) if nt else None
    per_held = round(rc / nc) if nc else None
    incremental = round((rt / nt - rc / nc) * nt) if nt and nc else None
    reason = _no_roi(nt, nc, cost)
    roi = None
    if reason is None and incremental is not None and cost.total:
        roi = (incremental - cost.total) / cost.total
    return Return(
        window_days=window_days,
        treated=nt,
        held_out=nc,
        treated_revenue=rt,
        held_out_revenue=rc,
        treated_revenue_per_member=per_treated,
        held_out_revenue_per_member=per_held,
        incremental_revenue=incremental,
        incremental_revenue_interval=_interval(treated, held_out),
        roi=roi,
        reason=reason,
    )


def _no_roi(treated: int, held_out: int, cost: Cost) -> str | None:
    if not held_out:
        return "no holdout: no run was held out, so there is nothing to compare with"
    if not treated:
        return "no treated run: nobody took the steps yet"
    if cost.total is None:
        unknown = ", ".join(g.currency for g in cost.points if g.value is None)
        return f"no cost known: a point of {unknown} has no value (analytics.point_value)"
    if cost.total == 0:
        return "no cost: the journey's steps have given nothing that costs money yet"
    return None


def _interval(treated: Sequence[int], held_out: Sequence[int]) -> Interval | None:
    """Welch's 95 % interval of the difference per run, times the treated runs; None with
    fewer than two runs on a side."""
    if len(treated) < 2 or len(held_out) < 2:
        return None
    # numpy and scipy are loaded only when there is an interval to work out: the API
    # process does not carry them from its start (docs/performance.md).
    import numpy as np

    from kopilka.analytics.experiments import welch

    found = welch(np.asarray(treated, dtype=np.float64), np.asarray(held_out, dtype=np.float64))
    if found is None:
        return None
    n = len(treated)
    return Interval(found.low * n, found.high * n)
