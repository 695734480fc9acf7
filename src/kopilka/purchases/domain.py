"""Pure shapes of the ingest pipeline, shared by everything that produces purchases."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from math import gcd
from typing import NamedTuple

from kopilka.coupons.domain import allocate


class LineItem(NamedTuple):
    """One purchase line as the API takes it (money in minor units)."""

    sku: str
    name: str
    category: str
    quantity: int
    unit_price: int
    discount: int

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price - self.discount

    def to_api(self) -> dict[str, object]:
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "discount": self.discount,
        }


# --- paying with points at the till ------------------------------------------------------------


class PointsTerms(NamedTuple):
    """The program's terms for paying with points (see ``PointsPayment``)."""

    points: int
    money: int
    min_points: int
    max_share_percent: int
    excluded: frozenset[str]

    @property
    def step(self) -> int:
        """The fewest points worth a whole number of minor units."""
        return self.points // gcd(self.points, self.money)

    def value(self, points: int) -> int:
        """What ``points`` pay, in minor units (a multiple of ``step`` pays exactly)."""
        return points * self.money // self.points

    def payable(self, categories: Sequence[str | None], left: Sequence[int]) -> int:
        """Minor units of the basket points may pay: the share of the lines left to pay,
        excluded categories left out."""
        open_money = sum(a for c, a in zip(categories, left, strict=True) if c not in self.excluded)
        return open_money * self.max_share_percent // 100

    def max_points(
        self, categories: Sequence[str | None], left: Sequence[int], available: int
    ) -> int:
        """The most points this basket takes (0 when fewer than ``min_points`` would do)."""
        by_money = self.payable(categories, left) * self.points // self.money
        most = min(by_money, max(available, 0))
        most -= most % self.step
        return most if most >= max(self.min_points, 1) else 0

    def refusal(
        self, wanted: int, categories: Sequence[str | None], left: Sequence[int], available: int
    ) -> str | None:
        """Why ``wanted`` points cannot pay for this basket, or None."""
        if wanted % self.step:
            return f"points_to_spend must be a multiple of {self.step}"
        if wanted < self.min_points:
            return f"at least {self.min_points} points must be spent"
        if wanted > max(available, 0):
            return f"the member has {max(available, 0)} points available"
        if self.value(wanted) > self.payable(categories, left):
            most = self.max_points(categories, left, wanted)
            return f"points may pay at most {most} points' worth of this basket"
        return None

    def line_shares(
        self, categories: Sequence[str | None], left: Sequence[int], value: int
    ) -> list[int]:
        """``value`` spread over the lines points may pay, in proportion to what is left."""
        weights = [
            a if c not in self.excluded else 0 for c, a in zip(categories, left, strict=True)
        ]
        return allocate(value, weights)


# --- purchases without a member ----------------------------------------------------------------


def claim_deadline(occurred_at: datetime, window_days: int) -> datetime | None:
    """The last moment a purchase without a member made at ``occurred_at`` may be claimed
    (the program's ``claim_window_days`` after it, that moment included); None when the
    program lets no purchase be claimed (a window of 0 days)."""
    if window_days <= 0:
        return None
    return occurred_at + timedelta(days=window_days)
