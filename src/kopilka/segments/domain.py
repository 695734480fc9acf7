"""Segments as data: predicates combined with ``all`` / ``any`` / ``not``, parsed and
validated with the failing field named (``definition.all.2.last_days``).

A predicate is a model registered in :mod:`kopilka.crm.predicates` (the built-in ones are
below; other features add theirs from modules listed in :data:`PREDICATE_MODULES`). Its SQL
lives with the compilers in ``segments/repository.py`` (or the adding feature's
repository). Pure: no database.
"""

import importlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from kopilka.crm.domain import RfmGroup
from kopilka.crm.predicates import PREDICATES, PredicateModel, predicate
from kopilka.errors import InvalidInput
from kopilka.kit.types import Flag, Int, JsonInt

# Modules of other features that register predicates (their models with ``@predicate``,
# their SQL with ``@compiles`` in a repository module): imported before any definition is
# read. A feature adds its module here.
PREDICATE_MODULES: list[str] = [
    "kopilka.support.predicates",
    "kopilka.support.predicate_repository",
    "kopilka.analytics.predicates",
    "kopilka.analytics.predicate_repository",
]
MAX_DEPTH = 8
MAX_NODES = 100
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class SegmentKind(StrEnum):
    DYNAMIC = "dynamic"
    STATIC = "static"


class ListMode(StrEnum):
    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


def load_predicate_modules() -> None:
    for name in PREDICATE_MODULES:
        importlib.import_module(name)


# --- parts -----------------------------------------------------------------------------------


class Ranged(PredicateModel):
    """``min`` and ``max`` (both inclusive, either optional)."""

    min: Int | None = Field(default=None, ge=-(10**13), le=10**13)
    max: Int | None = Field(default=None, ge=-(10**13), le=10**13)

    @model_validator(mode="after")
    def _bounded(self) -> "Ranged":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is larger than max")
        return self

    def holds_for(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Windowed(PredicateModel):
    """A window: the last ``last_days`` days (today included), or ``since``/``until``
    (dates, both included); neither: the whole history."""

    last_days: Int | None = Field(default=None, ge=1, le=3660)
    since: date | None = None
    until: date | None = None

    @model_validator(mode="after")
    def _one_window(self) -> "Windowed":
        if self.last_days is not None and (self.since or self.until):
            raise ValueError("give last_days, or since/until, not both")
        if self.since and self.until and self.since > self.until:
            raise ValueError("since is after until")
        return self

    @property
    def windowed(self) -> bool:
        return self.last_days is not None or self.since is not None or self.until is not None

    def first_day(self, today: date) -> date | None:
        if self.last_days is not None:
            return today - timedelta(days=self.last_days - 1)
        return self.since

    def last_day(self) -> date | None:
        return self.until


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def years_before(today: date, years: int) -> date:
    """The same day ``years`` earlier (28 February for a 29th in a year without one)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


# --- the built-in predicates ----------------------------------------------------------------

ProfileField = Literal[
    "name",
    "email",
    "phone",
    "birthday",
    "language",
    "gender",
    "city",
    "address",
    "preferred_store",
    "preferred_channel",
]


@predicate
class ProfilePresent(PredicateModel):
    """A profile field is filled in (``present: false``: it is empty)."""

    type: Literal["profile_present"] = "profile_present"
    field: ProfileField
    present: Flag = True


@predicate
class Profile(PredicateModel):
    """A profile field is one of the values (language, gender, city, preferred store or
    channel, status)."""

    type: Literal["profile"] = "profile"
    field: Literal["language", "gender", "city", "preferred_store", "preferred_channel", "status"]
    one_of: list[str] = Field(min_length=1, max_length=1000)


@predicate
class TenureDays(Ranged):
    """Whole days since the member joined."""

    type: Literal["tenure_days"] = "tenure_days"


@predicate
class Joined(PredicateModel):
    """Joined between ``since`` and ``until`` (dates, UTC, both included)."""

    type: Literal["joined"] = "joined"
    since: date | None = None
    until: date | None = None

    @model_validator(mode="after")
    def _some(self) -> "Joined":
        if self.since is None and self.until is None:
            raise ValueError("give since, until or both")
        if self.since and self.until and self.since > self.until:
            raise ValueError("since is after until")
        return self


@predicate
class Attribute(PredicateModel):
    """A custom attribute: ``exists``, ``equals`` a value, is ``one_of`` values, or is a
    number between ``min`` and ``max``."""

    type: Literal["attribute"] = "attribute"
    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    exists: Flag | None = None
    equals: str | JsonInt | Flag | None = None
    one_of: list[str | JsonInt] | None = Field(default=None, min_length=1, max_length=1000)
    min: JsonInt | None = None
    max: JsonInt | None = None

    @model_validator(mode="after")
    def _one_test(self) -> "Attribute":
        tests = [
            self.exists is not None,
            self.equals is not None,
            self.one_of is not None,
            self.min is not None or self.max is not None,
        ]
        if sum(tests) != 1:
            raise ValueError("give one of exists, equals, one_of, or min/max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is larger than max")
        return self


@predicate
class Age(Ranged):
    """Age in whole years, from the birthday (members without one do not match)."""

    type: Literal["age"] = "age"
    min: Int | None = Field(default=None, ge=0, le=150)
    max: Int | None = Field(default=None, ge=0, le=150)


@predicate
class BirthdayMonth(PredicateModel):
    type: Literal["birthday_month"] = "birthday_month"
    months: list[Int] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _months(self) -> "BirthdayMonth":
        if any(not 1 <= m <= 12 for m in self.months):
            raise ValueError("months are 1–12")
        return self


@predicate
class Consent(PredicateModel):
    """The member granted (``granted: false``: has not granted) the channel for the
    purpose."""

    type: Literal["consent"] = "consent"
    channel: Literal["email", "sms", "push"]
    purpose: Literal["marketing", "service"] = "marketing"
    granted: Flag = True


@predicate
class Tier(PredicateModel):
    """The member's current tier is one of ``tiers`` (no tier row: the ladder's first)."""

    type: Literal["tier"] = "tier"
    tiers: list[str] = Field(min_length=1, max_length=20)


@predicate
class Tags(PredicateModel):
    """The member has any of ``tags`` (all of them with ``all: true``)."""

    type: Literal["tags"] = "tags"
    tags: list[str] = Field(min_length=1, max_length=100)
    all: Flag = False


@predicate
class Purchases(Ranged, Windowed):
    """The number of purchases, net spend or average check (minor units) in a window.
    Returns count against the purchase they return; a purchase returned in full is not
    counted."""

    type: Literal["purchases"] = "purchases"
    measure: Literal["count", "spend", "average_check"] = "count"


@predicate
class Bought(Windowed):
    """Bought (``never: true``: did not buy) any of ``categories``, ``skus`` or at any of
    ``stores`` in a window. A purchase returned in full does not count."""

    type: Literal["bought"] = "bought"
    categories: list[str] = Field(default_factory=list, max_length=1000)
    skus: list[str] = Field(default_factory=list, max_length=1000)
    stores: list[str] = Field(default_factory=list, max_length=1000)
    never: Flag = False

    @model_validator(mode="after")
    def _something(self) -> "Bought":
        if not (self.categories or self.skus or self.stores):
            raise ValueError("give categories, skus or stores")
        return self


@predicate
class DaysSinceLastPurchase(Ranged):
    """Whole days since the last purchase (members who never bought do not match)."""

    type: Literal["days_since_last_purchase"] = "days_since_last_purchase"
    min: Int | None = Field(default=None, ge=0, le=100_000)
    max: Int | None = Field(default=None, ge=0, le=100_000)


@predicate
class PointsBalance(Ranged):
    """The available balance of ``currency`` (the program's points by default)."""

    type: Literal["points_balance"] = "points_balance"
    currency: str | None = Field(default=None, min_length=1, max_length=32)


@predicate
class PointsExpiring(PredicateModel):
    """At least ``min`` available points of ``currency`` expire within ``within_days``."""

    type: Literal["points_expiring"] = "points_expiring"
    within_days: Int = Field(ge=1, le=3660)
    min: Int = Field(default=1, ge=1, le=10**12)
    currency: str | None = Field(default=None, min_length=1, max_length=32)


@predicate
class RfmGroups(PredicateModel):
    """The member's RFM group (scored daily) is one of ``groups``."""

    type: Literal["rfm_group"] = "rfm_group"
    groups: list[RfmGroup] = Field(min_length=1)


@predicate
class RfmScore(Ranged):
    """An RFM score (1–5, 5 = best) between ``min`` and ``max``."""

    type: Literal["rfm_score"] = "rfm_score"
    score: Literal["recency", "frequency", "monetary"]
    min: Int | None = Field(default=None, ge=1, le=5)
    max: Int | None = Field(default=None, ge=1, le=5)


# --- definitions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AllOf:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class NotOf:
    item: "Node"


Node = AllOf | AnyOf | NotOf | PredicateModel


def parse_definition(raw: Any, where: str = "definition") -> Node:
    """A definition's tree, or :class:`InvalidInput` naming the field at fault."""
    load_predicate_modules()
    counter = [0]
    return _parse(raw, where, 0, counter)


def _parse(raw: Any, where: str, depth: int, counter: list[int]) -> Node:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise InvalidInput(f"a definition has at most {MAX_NODES} parts", field=where)
    if depth > MAX_DEPTH:
        raise InvalidInput(f"a definition nests at most {MAX_DEPTH} levels", field=where)
    if not isinstance(raw, dict):
        raise InvalidInput("expected an object: a predicate, all, any or not", field=where)
    combinators = [] if "type" in raw else [k for k in ("all", "any", "not") if k in raw]
    if combinators:
        if len(raw) != 1:
            raise InvalidInput(
                "a combinator is an object with one key: all, any or not", field=where
            )
        name = combinators[0]
        value = raw[name]
        if name == "not":
            return NotOf(_parse(value, f"{where}.not", depth + 1, counter))
        if not isinstance(value, list) or not value:
            raise InvalidInput(f"{name} takes a non-empty list", field=f"{where}.{name}")
        items = tuple(
            _parse(item, f"{where}.{name}.{n}", depth + 1, counter) for n, item in enumerate(value)
        )
        return AllOf(items) if name == "all" else AnyOf(items)
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise InvalidInput("give a predicate type, or all, any or not", field=f"{where}.type")
    model = PREDICATES.get(kind)
    if model is None:
        known = ", ".join(sorted(PREDICATES))
        raise InvalidInput(
            f"unknown predicate {kind!r}; predicates are {known}", field=f"{where}.type"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"] if p != kind)
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(message, field=f"{where}.{location}" if location else where) from None


def predicates_of(node: Node) -> list[PredicateModel]:
    """Every predicate of a tree, in order."""
    if isinstance(node, AllOf | AnyOf):
        return [p for item in node.items for p in predicates_of(item)]
    if isinstance(node, NotOf):
        return predicates_of(node.item)
    return [node]
