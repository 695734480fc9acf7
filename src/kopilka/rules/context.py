"""What the rules look at: one event (basket, time, place) and the member's facts.

Pure values, no I/O; the service fills them, ``rules.domain.evaluate`` reads them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

UTC_ZONE = ZoneInfo("UTC")


class BasketLine(NamedTuple):
    sku: str
    category: str | None
    quantity: int
    amount: int  # minor units, after the line discount
    brand: str | None = None
    tags: frozenset[str] = frozenset()


class Boost(NamedTuple):
    """A personal boost waiting on the member: ``factor`` × the points of their next
    purchase (before ``expires_at``)."""

    id: str
    rule_id: str
    factor_percent: int  # 200 = double points
    expires_at: datetime | None
    # When it was given: a purchase dated earlier (an offline till's, sent late) does not
    # use it.
    issued_at: datetime | None = None


@dataclass(slots=True)
class MemberFacts:
    """What the rules may ask about the member, as of just before this event.

    The service fills only what the program's conditions read (``CompiledProgram.needs``)
    and updates the counters after each event of a batch, so the fifth purchase of a
    batch sees the four before it.
    """

    joined_at: datetime | None = None
    birthday: date | None = None
    tier: str | None = None
    tier_earn_percent: int = 100  # the tier's earning rate, for ``tier_multiplier``
    tags: frozenset[str] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    # The customer-lifetime fit's predictions (None: no prediction for the member).
    churn_risk: int | None = None  # whole percent, 0–100
    clv: int | None = None  # minor units
    purchase_count: int = 0  # every purchase before this one
    lifetime_spend: int = 0  # minor units, net of returns
    last_purchase_at: datetime | None = None
    # (occurred_at, amount) of the purchases inside the longest window a rule looks at,
    # oldest first.
    recent: list[tuple[datetime, int]] = field(default_factory=list)
    arms: dict[str, str] = field(default_factory=dict)  # experiment → arm
    boosts: list[Boost] = field(default_factory=list)
    # Uses of each rule by this member: (rule id, period key) → (times, amount).
    usage: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    def record_purchase(self, occurred_at: datetime, amount: int) -> None:
        self.purchase_count += 1
        self.lifetime_spend += amount
        if self.last_purchase_at is None or occurred_at > self.last_purchase_at:
            self.last_purchase_at = occurred_at
        self.recent.append((occurred_at, amount))


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    total: int
    lines: Sequence[BasketLine]
    occurred_at: datetime
    channel: str
    store: str | None
    member_status: str = "active"
    trigger: str = "purchase"
    event_name: str | None = None  # for ``event`` triggers: the custom event's name
    region: str | None = None
    payment_method: str | None = None
    coupons: frozenset[str] = frozenset()
    member: MemberFacts = field(default_factory=MemberFacts)
    timezone: tzinfo = UTC_ZONE
    # Program-wide uses of rules with program limits or budgets: key → (times, amount).
    program_usage: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # Amounts already worked out for this basket, by line filter: fifty rules sharing one
    # filter sum the lines once.
    amount_cache: dict[object, Any] = field(default_factory=dict, compare=False)
    local_time: datetime = field(init=False, compare=False)
    # Seconds since the epoch: schedules compare numbers, not aware datetimes.
    epoch: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # The event's local time: read by every calendar condition and limit.
        object.__setattr__(self, "local_time", self.occurred_at.astimezone(self.timezone))
        object.__setattr__(self, "epoch", self.occurred_at.timestamp())

    def eligible_amount(self, excluded: frozenset[str]) -> int:
        """The basket total without lines in ``excluded`` categories."""
        if not excluded or not self.lines:
            return self.total
        cached = self.amount_cache.get(excluded)
        if cached is None:
            by_category = self._by_category()
            cached = self.total - sum(by_category.get(c, 0) for c in excluded)
            self.amount_cache[excluded] = cached
        return cached

    def _by_category(self) -> dict[str | None, int]:
        """Line amounts summed by category, once per basket: an exclusion list then costs
        one look-up per excluded category, not a pass over the lines."""
        by_category: dict[str | None, int] | None = self.amount_cache.get("by-category")
        if by_category is None:
            by_category = {}
            for line in self.lines:
                by_category[line.category] = by_category.get(line.category, 0) + line.amount
            self.amount_cache["by-category"] = by_category
        return by_category
