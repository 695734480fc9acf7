"""A purchase log summarised per customer, as the lifetime models read it."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from kopilka.analytics.lifetime.errors import LifetimeDataError
from kopilka.analytics.lifetime.transactions import Days as Days
from kopilka.analytics.lifetime.transactions import Transaction as Transaction
from kopilka.analytics.lifetime.transactions import merge_same_day

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class Compressed:
    """Distinct (frequency, recency, age) rows and how many customers share each: the
    likelihoods of the purchase models depend on nothing else, and a cohort has far fewer
    distinct rows than customers."""

    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    weights: FloatArray
    inverse: IntArray  # customer i has row inverse[i]


@dataclass(frozen=True)
class Summary:
    """Per customer (aligned arrays, one entry per customer of ``customers``), in ``unit_days``
    units of time, for customers whose first purchase is on or before ``calibration_end``:

    * ``frequency`` x: repeat transactions (distinct purchase days after the first) up to and
      including ``calibration_end``;
    * ``recency`` t_x: time from the first purchase to the last one of the calibration
      period (0 when x = 0);
    * ``age`` T: time from the first purchase to ``calibration_end``;
    * ``monetary`` m_x: mean amount of the calibration period's repeat transactions (0 when
      x = 0; the first purchase is left out as in the literature, since it is often unlike
      later ones);
    * ``holdout_frequency``: repeat transactions after ``calibration_end`` up to and including
      ``holdout_end`` (None without a holdout), over ``holdout_length`` units.
    """

    customers: list[str]
    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    monetary: FloatArray
    first_purchase: list[date]
    calibration_end: date
    unit_days: int = 7
    holdout_end: date | None = None
    holdout_frequency: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.customers)

    @property
    def holdout_length(self) -> float | None:
        """Length of the holdout period in units, or None without one."""
        if self.holdout_end is None:
            return None
        return (self.holdout_end - self.calibration_end).days / self.unit_days

    def compressed(self) -> Compressed:
        rows = np.column_stack([self.frequency, self.recency, self.age])
        unique, inverse, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
        return Compressed(
            frequency=unique[:, 0].copy(),
            recency=unique[:, 1].copy(),
            age=unique[:, 2].copy(),
            weights=counts.astype(np.float64),
            inverse=inverse.reshape(-1),
        )

    def subset(self, mask: NDArray[np.bool_]) -> "Summary":
        """The customers where ``mask`` is true, in the same order."""
        chosen = np.flatnonzero(mask)
        holdout = self.holdout_frequency
        return Summary(
            customers=[self.customers[i] for i in chosen],
            frequency=self.frequency[chosen],
            recency=self.recency[chosen],
            age=self.age[chosen],
            monetary=self.monetary[chosen],
            first_purchase=[self.first_purchase[i] for i in chosen],
            calibration_end=self.calibration_end,
            unit_days=self.unit_days,
            holdout_end=self.holdout_end,
            holdout_frequency=None if holdout is None else holdout[chosen],
        )


def summarise(
    transactions: Iterable[Transaction],
    calibration_end: date,
    *,
    unit_days: int = 7,
    holdout_end: date | None = None,
) -> Summary:
    """Summarise a purchase log per customer (see :class:`Summary`); transactions after
    ``holdout_end`` (or after ``calibration_end`` without a holdout) are ignored, and so are
    customers whose first purchase comes after ``calibration_end``."""
    if unit_days < 1:
        raise LifetimeDataError("unit_days must be at least 1", field="unit_days")
    if holdout_end is not None and holdout_end <= calibration_end:
        raise LifetimeDataError(
            f"holdout_end ({holdout_end}) must come after calibration_end ({calibration_end})",
            field="holdout_end",
        )
    return summarise_days(
        merge_same_day(transactions), calibration_end, unit_days=unit_days, holdout_end=holdout_end
    )


def summarise_days(
    customers: dict[str, Days],
    calibration_end: date,
    *,
    unit_days: int = 7,
    holdout_end: date | None = None,
) -> Summary:
    """:func:`summarise` on purchase days already merged by :func:`merge_same_day`."""
    names: list[str] = []
    firsts: list[date] = []
    rows: list[tuple[float, float, float, float, float]] = []
    for customer, days in customers.items():
        first = min(days)
        if first > calibration_end:
            continue
        calibration = sorted(day for day in days if day <= calibration_end)
        repeats = calibration[1:]
        holdout = 0
        if holdout_end is not None:
            holdout = sum(1 for day in days if calibration_end < day <= holdout_end)
        names.append(customer)
        firsts.append(first)
        rows.append(
            (
                len(repeats),
                (calibration[-1] - first).days,
                (calibration_end - first).days,
                sum(days[day] for day in repeats) / len(repeats) if repeats else 0.0,
                holdout,
            )
        )
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return Summary(
        customers=names,
        frequency=table[:, 0].copy(),
        recency=table[:, 1] / unit_days,
        age=table[:, 2] / unit_days,
        monetary=table[:, 3].copy(),
        first_purchase=firsts,
        calibration_end=calibration_end,
        unit_days=unit_days,
        holdout_end=holdout_end,
        holdout_frequency=None if holdout_end is None else table[:, 4].copy(),
    )


def require_customers(summary: Summary) -> None:
    """Raise :class:`LifetimeDataError` unless the summary has a customer who repeats: no
    model of repeat buying can be fitted to a cohort where nobody bought twice."""
    if len(summary) == 0:
        raise LifetimeDataError(
            f"no customer made a first purchase on or before {summary.calibration_end}",
            field="calibration_end",
        )
    if not np.any(summary.frequency > 0):
        raise LifetimeDataError(
            f"none of the {len(summary)} customers made a repeat purchase by "
            f"{summary.calibration_end}: the models need repeat buyers",
            field="calibration_end",
        )
