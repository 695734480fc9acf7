"""A seeded simulator of a grocery/café chain's loyalty-program population.

The output is a stream of API-shaped dicts (MemberCreate, PurchaseCreate, ReturnCreate) in time
order, so a demo database can be filled through the same code paths real clients use.

The behaviour model is the one behind BG/NBD customer-base analysis: while a member is "alive"
they buy as a Poisson process with a personal rate (gamma-distributed across members, so a few
heavy buyers and many occasional ones), and after every purchase they drop out for good with a
personal probability (beta-distributed across members).

Everything is driven by one ``random.Random(seed)`` and a heap of pending events, so the same
config always yields the same stream, and memory grows with the number of active members, never
with the number of events.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, TypeVar

from kopilka.demo.catalog import (
    BY_CATEGORY,
    CATEGORIES,
    EN_FIRST,
    EN_SURNAMES,
    RU_FEMALE,
    RU_MALE,
    RU_SURNAMES,
    Product,
    catalog,
)
from kopilka.purchases.domain import LineItem

_T = TypeVar("_T")

__all__ = ["Product", "SimEvent", "SimulationConfig", "catalog", "simulate"]

# Phones are "+7916" plus 7 digits, drawn from a permutation of 0..10**7-1; beyond that they
# would repeat.
MAX_MEMBERS = 10**7 - 1

STORES = ("store-01", "store-02", "store-03", "store-04", "store-05")
# Flagship stores get more members: a flat split looks synthetic on store reports.
STORE_WEIGHTS = (30, 25, 20, 15, 10)

# Stores are open 08:00-23:00 Moscow time, i.e. 05:00-20:00 UTC. Simulated time runs only while
# stores are open, which keeps every purchase inside opening hours without rejection sampling.
OPEN_FROM_SECONDS = 5 * 3600
OPEN_SECONDS = 15 * 3600

# Share of members who sign up in the launch campaign (the first week), the rest join over the
# whole period; launch-week sign-ups are front-loaded on the opening day.
LAUNCH_SHARE = 0.3
LAUNCH_DAY_WEIGHTS = (8, 4, 2, 1, 1, 1, 1)

# Purchase rate per open day: gamma(shape, scale). Shape < 1 gives the long tail of heavy buyers.
RATE_SHAPE = 0.7
RATE_SCALE = 0.25
RATE_MAX = 2.0
RATE_MIN = 0.003
# Drop-out probability after each purchase: beta(a, b), mean a / (a + b) = 2%.
CHURN_A = 1.0
CHURN_B = 49.0

# Most sign-ups happen at a till together with a first purchase.
SIGNUP_PURCHASE_SHARE = 0.6

BASKET_SIZES = (1, 2, 3, 4, 5, 6, 7, 8)
BASKET_SIZE_WEIGHTS = (30, 24, 17, 11, 8, 5, 3, 2)
QUANTITIES = (1, 2, 3, 4)
QUANTITY_WEIGHTS = (76, 16, 6, 2)
BULKY_PRICE = 1000_00  # items at least this dear are bought one at a time
LINE_DISCOUNT_SHARE = 0.12
DISCOUNT_PERCENTS = (5, 10, 10, 15, 20, 30)

RETURN_SHARE = 0.025
RETURN_DELAY_DAYS = (1.0, 10.0)  # open days after the purchase


@dataclass(frozen=True)
class SimulationConfig:
    members: int = 500
    days: int = 365
    start: date = date(2025, 1, 1)
    seed: int = 7
    currency: str = "RUB"

    def __post_init__(self) -> None:
        if not 0 <= self.members <= MAX_MEMBERS:
            raise ValueError(f"members must be between 0 and {MAX_MEMBERS}, got {self.members}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")


@dataclass(frozen=True)
class SimEvent:
    kind: Literal["member", "purchase", "return"]
    occurred_at: datetime
    data: dict[str, object]


EN_SHARE = 0.08
PHONE_SHARE = 0.95
EMAIL_SHARE = 0.7
BIRTHDAY_SHARE = 0.85
CONSENT_EMAIL = 0.55
CONSENT_SMS = 0.45
CONSENT_PUSH = 0.35
# A quarter of members also order through the app or the web shop.
DIGITAL_SHARE = 0.25


class _Member:
    """What the simulator needs to know about an active member between their purchases."""

    __slots__ = ("category_weights", "churn", "digital", "external_id", "home_store", "rate")

    def __init__(
        self,
        external_id: str,
        rate: float,
        churn: float,
        category_weights: tuple[float, ...],
        home_store: str,
        digital: float,
    ) -> None:
        self.external_id = external_id
        self.rate = rate
        self.churn = churn
        self.category_weights = category_weights  # cumulative, for _pick
        self.home_store = home_store
        self.digital = digital


class _Join:
    """A pending sign-up; the member is drawn when it is due, so ids follow sign-up order."""

    __slots__ = ()


class _Visit:
    __slots__ = ("member",)

    def __init__(self, member: _Member) -> None:
        self.member = member


class _Return:
    __slots__ = ("amount", "lines", "purchase_external_id")

    def __init__(
        self,
        purchase_external_id: str,
        lines: list[dict[str, object]] | None,
        amount: int | None,
    ) -> None:
        self.purchase_external_id = purchase_external_id
        self.lines = lines
        self.amount = amount


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    return tuple(itertools.accumulate(weights))


def _pick(rng: random.Random, items: Sequence[_T], cum_weights: Sequence[float]) -> _T:
    """One weighted draw; Random.choices does the same but its per-call set-up dominates the
    simulation's run time, and this sits on the hot path (several draws per basket line)."""
    return items[bisect(cum_weights, rng.random() * cum_weights[-1], 0, len(items) - 1)]


_STORE_CUM = _cumulative(STORE_WEIGHTS)
_BASKET_SIZE_CUM = _cumulative(BASKET_SIZE_WEIGHTS)
_QUANTITY_CUM = _cumulative(QUANTITY_WEIGHTS)

_Action = _Join | _Visit | _Return
# (simulated open time in days, tie-breaking sequence number, action). The sequence number keeps
# the heap from ever comparing actions and makes equal-time order deterministic.
_Entry = tuple[float, int, _Action]


class _Simulation:
    """Mutable state of one run; `simulate` is the public face."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.origin = datetime.combine(config.start, datetime.min.time(), tzinfo=UTC)
        self.heap: list[_Entry] = []
        self.seq = 0
        self.member_count = 0
        self.purchase_count = 0
        self.return_count = 0
        # An affine map n -> (a*n + b) mod 10**7 with a coprime to 10 is a permutation, so phone
        # numbers look random yet never collide, and nothing has to be remembered.
        self.phone_a = self._coprime_to_ten(self.rng.randrange(1, 10**7))
        self.phone_b = self.rng.randrange(10**7)

    @staticmethod
    def _coprime_to_ten(n: int) -> int:
        while n % 2 == 0 or n % 5 == 0:
            n += 1
        return n

    # -- time ------------------------------------------------------------------------------

    def to_datetime(self, t: float) -> datetime:
        """Map open time (days of opening hours) to wall-clock UTC, monotonically."""
        day = math.floor(t)
        seconds = OPEN_FROM_SECONDS + math.floor((t - day) * OPEN_SECONDS)
        return self.origin + timedelta(days=day, seconds=seconds)

    def push(self, t: float, action: _Action) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, action))

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> Iterator[SimEvent]:
        joins = self.joins_per_day()
        for day in range(self.config.days):
            # Sign-ups are scheduled a day at a time so the heap holds only today's newcomers
            # plus the active members, not the whole population.
            for _ in range(joins[day]):
                self.push(day + self.rng.random(), _Join())
            while self.heap and self.heap[0][0] < day + 1:
                t, _, action = heapq.heappop(self.heap)
                yield self.handle(t, action)

    def joins_per_day(self) -> list[int]:
        days = self.config.days
        counts = [0] * days
        launch = round(self.config.members * LAUNCH_SHARE)
        launch_days = range(min(days, len(LAUNCH_DAY_WEIGHTS)))
        launch_weights = LAUNCH_DAY_WEIGHTS[: len(launch_days)]
        for day in self.rng.choices(launch_days, weights=launch_weights, k=launch):
            counts[day] += 1
        # Weekend sign-ups run higher, like weekend traffic.
        weights = [
            1.3 if (self.config.start + timedelta(days=d)).weekday() >= 5 else 1.0
            for d in range(days)
        ]
        later = self.config.members - launch
        for day in self.rng.choices(range(days), weights=weights, k=later):
            counts[day] += 1
        return counts

    def handle(self, t: float, action: _Action) -> SimEvent:
        if isinstance(action, _Join):
            return self.join(t)
        if isinstance(action, _Visit):
            return self.purchase(t, action.member)
        return self.refund(t, action)

    # -- members -----------------------------------------------------------------------------

    def join(self, t: float) -> SimEvent:
        rng = self.rng
        self.member_count += 1
        n = self.member_count
        member = _Member(
            external_id=f"M{n:06d}",
            rate=min(RATE_MAX, max(RATE_MIN, rng.gammavariate(RATE_SHAPE, RATE_SCALE))),
            churn=rng.betavariate(CHURN_A, CHURN_B),
            category_weights=self.favourite_categories(),
            home_store=_pick(rng, STORES, _STORE_CUM),
            digital=rng.uniform(0.2, 0.8) if rng.random() < DIGITAL_SHARE else 0.0,
        )
        if rng.random() < SIGNUP_PURCHASE_SHARE:
            # Signed up at the till: the first purchase follows within minutes.
            first = t + rng.uniform(60, 600) / OPEN_SECONDS
        else:
            first = t + rng.expovariate(member.rate)
        self.push(first, _Visit(member))
        at = self.to_datetime(t)
        return SimEvent("member", at, self.member_profile(n, member.external_id))

    def favourite_categories(self) -> tuple[float, ...]:
        # Gamma draws normalised over categories are a Dirichlet: every member gets a couple of
        # favourite departments and rarely visits others. The floor keeps every one possible.
        total = 0.0
        cumulative: list[float] = []
        for _ in CATEGORIES:
            total += self.rng.gammavariate(0.6, 1.0) + 0.05
            cumulative.append(total)
        return tuple(cumulative)

    def member_profile(self, n: int, external_id: str) -> dict[str, object]:
        rng = self.rng
        english = rng.random() < EN_SHARE
        first, last, first_latin, last_latin = self.person_name(english)
        phone = f"+7916{(self.phone_a * n + self.phone_b) % 10**7:07d}"
        has_phone = rng.random() < PHONE_SHARE
        has_email = rng.random() < EMAIL_SHARE
        return {
            "external_id": external_id,
            "name": f"{first} {last}",
            "phone": phone if has_phone else None,
            # The member number in the address keeps namesakes apart.
            "email": f"{first_latin}.{last_latin}{n}@example.com" if has_email else None,
            "birthday": self.birthday() if rng.random() < BIRTHDAY_SHARE else None,
            "language": "en" if english else "ru",
            "consents": {
                "email": has_email and rng.random() < CONSENT_EMAIL,
                "sms": has_phone and rng.random() < CONSENT_SMS,
                "push": rng.random() < CONSENT_PUSH,
            },
        }

    def person_name(self, english: bool) -> tuple[str, str, str, str]:
        rng = self.rng
        if english:
            first_en, last_en = rng.choice(EN_FIRST), rng.choice(EN_SURNAMES)
            return first_en, last_en, first_en.lower(), last_en.lower()
        female = rng.random() < 0.55
        first, first_latin = rng.choice(RU_FEMALE if female else RU_MALE)
        last, last_latin = rng.choice(RU_SURNAMES)
        if female:
            last, last_latin = last + "а", last_latin + "a"
        return first, last, first_latin, last_latin

    def birthday(self) -> str:
        # Peaks at the chain's core audience (people born in the late 1980s).
        year = min(2006, int(self.rng.triangular(1950, 2007, 1988)))
        days_in_year = (date(year + 1, 1, 1) - date(year, 1, 1)).days
        return (date(year, 1, 1) + timedelta(days=self.rng.randrange(days_in_year))).isoformat()

    # -- purchases ---------------------------------------------------------------------------

    def purchase(self, t: float, member: _Member) -> SimEvent:
        rng = self.rng
        self.purchase_count += 1
        external_id = f"P{self.purchase_count:08d}"
        channel, store = self.channel_and_store(member)
        lines = self.basket(member)
        total = sum(line.amount for line in lines)
        at = self.to_datetime(t)
        data: dict[str, object] = {
            "member": {"external_id": member.external_id},
            "external_id": external_id,
            "occurred_at": at.isoformat(),
            "store": store,
            "channel": channel,
            "currency": self.config.currency,
            "lines": [line.to_api() for line in lines],
            "total": total,
        }
        if rng.random() < RETURN_SHARE:
            self.schedule_return(t, external_id, lines, total)
        # BG/NBD drop-out: decided right after a purchase, and final.
        if rng.random() >= member.churn:
            self.push(t + rng.expovariate(member.rate), _Visit(member))
        return SimEvent("purchase", at, data)

    def channel_and_store(self, member: _Member) -> tuple[str, str | None]:
        rng = self.rng
        if rng.random() < member.digital:
            # App orders are collected at the member's usual store; web orders are delivered.
            if rng.random() < 0.6:
                return "app", member.home_store
            return "online", None
        if rng.random() < 0.8:
            return "pos", member.home_store
        return "pos", rng.choice(STORES)

    def basket(self, member: _Member) -> list[LineItem]:
        rng = self.rng
        size = _pick(rng, BASKET_SIZES, _BASKET_SIZE_CUM)
        chosen: dict[str, Product] = {}
        # A few extra draws allow for repeats; a basket may end up smaller, which is realistic.
        for _ in range(size + 3):
            if len(chosen) == size:
                break
            category = _pick(rng, BY_CATEGORY, member.category_weights)
            product = rng.choice(category)
            chosen.setdefault(product.sku, product)
        return [self.line(product) for product in chosen.values()]

    def line(self, product: Product) -> LineItem:
        rng = self.rng
        quantity = 1
        if product.price < BULKY_PRICE:
            quantity = _pick(rng, QUANTITIES, _QUANTITY_CUM)
        discount = 0
        if rng.random() < LINE_DISCOUNT_SHARE:
            discount = quantity * product.price * rng.choice(DISCOUNT_PERCENTS) // 100
        return LineItem(
            product.sku, product.name, product.category, quantity, product.price, discount
        )

    # -- returns -----------------------------------------------------------------------------

    def schedule_return(
        self, t: float, purchase_id: str, lines: list[LineItem], total: int
    ) -> None:
        rng = self.rng
        kind = rng.choices(("full", "lines", "amount"), weights=(50, 35, 15))[0]
        returned_lines = _partial_lines(rng, lines) if kind == "lines" else None
        amount = _partial_amount(rng, total) if kind == "amount" else None
        self.push(t + rng.uniform(*RETURN_DELAY_DAYS), _Return(purchase_id, returned_lines, amount))

    def refund(self, t: float, action: _Return) -> SimEvent:
        self.return_count += 1
        at = self.to_datetime(t)
        data: dict[str, object] = {
            "external_id": f"R{self.return_count:07d}",
            "purchase_external_id": action.purchase_external_id,
            "occurred_at": at.isoformat(),
            "lines": action.lines,
            "amount": action.amount,
        }
        return SimEvent("return", at, data)


def _partial_lines(rng: random.Random, lines: list[LineItem]) -> list[dict[str, object]] | None:
    """Some units of one or two lines; None (a full return) when the basket is a single unit."""
    if sum(line.quantity for line in lines) < 2:
        return None
    picked = rng.sample(lines, k=min(len(lines), rng.choice((1, 1, 1, 2))))
    returned = {line.sku: rng.randint(1, line.quantity) for line in picked}
    if len(picked) == len(lines) and all(returned[ln.sku] == ln.quantity for ln in lines):
        # Everything was picked: give one unit less back so the return stays partial.
        sku = picked[0].sku
        returned[sku] -= 1
        if returned[sku] == 0:
            del returned[sku]
    return [{"sku": sku, "quantity": quantity} for sku, quantity in returned.items()]


def _partial_amount(rng: random.Random, total: int) -> int | None:
    """A goodwill refund in whole major units below the total; None (full return) if tiny."""
    if total < 200:
        return None
    return rng.randrange(100, total, 100)


def simulate(config: SimulationConfig) -> Iterator[SimEvent]:
    """Stream the simulated events in non-decreasing time order.

    A member's "member" event precedes their purchases, and a return comes after its purchase
    and refers to it by external id. Events after ``config.days`` are cut off, so some members'
    scheduled returns never happen, just as at the end of a real reporting period.
    """
    return _Simulation(config).run()
