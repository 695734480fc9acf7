"""Stores as values: the fields a store has, how a change is merged into one, whether it is
open at a moment, and the nearest-first search's radii. Pure."""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kopilka.stores import hours as schedule
from kopilka.stores.geo import MAX_DISTANCE_M

# The fields of a store a change may set, in the order answers and events list them.
FIELDS = (
    "name",
    "address",
    "region",
    "latitude",
    "longitude",
    "timezone",
    "hours",
    "special_hours",
    "tags",
    "phone",
    "status",
)
# The nearest search starts with a circle of this radius and widens it until it holds
# ``limit`` stores (or reaches the radius asked for, or the whole globe): by ``GROWTH``
# while it holds none, else by what the stores found so far say of their density. A
# handful of index range scans in a dense city or an empty steppe alike, and a last circle
# not much larger than needed (every row in its boxes is read and measured).
FIRST_RADIUS_M = 2_000.0
GROWTH = 4.0
DENSITY_MARGIN = 1.3  # the circle that should hold ``limit`` stores, widened by this much
MIN_GROWTH = 1.5


def stored(name: str, value: Any) -> Any:
    """A field's value as its column keeps it (and events carry it): plain JSON."""
    if name == "hours" and value is not None and not isinstance(value, Mapping):
        dumped: dict[str, Any] = value.model_dump()  # a WeekHours
        return dumped
    if name == "special_hours" and value is not None:
        return {(k.isoformat() if isinstance(k, date) else str(k)): v for k, v in value.items()}
    return value


def defaults(timezone: str) -> dict[str, Any]:
    """The values of a new store's fields that were not given."""
    return {
        "address": None,
        "region": None,
        "latitude": None,
        "longitude": None,
        "timezone": timezone,
        "hours": None,
        "special_hours": {},
        "tags": [],
        "phone": None,
        "status": "open",
    }


@dataclass(frozen=True, slots=True)
class Merged:
    values: dict[str, Any]  # every field, after the change
    changed: list[str]  # the fields whose value the change altered (FIELDS order)


def merge(current: Mapping[str, Any], given: Mapping[str, Any]) -> Merged:
    """``current`` (every field) with the ``given`` fields replaced."""
    values = dict(current)
    for name, value in given.items():
        values[name] = stored(name, value)
    changed = [n for n in FIELDS if n in given and values[n] != current.get(n)]
    return Merged(values, changed)


def coordinates_problem(values: Mapping[str, Any]) -> str | None:
    """The field at fault when a store would have one coordinate without the other."""
    if values.get("latitude") is None and values.get("longitude") is not None:
        return "latitude"
    if values.get("longitude") is None and values.get("latitude") is not None:
        return "longitude"
    return None


def open_at(
    status: str,
    timezone: str,
    week: Mapping[str, Any] | None,
    special: Mapping[str, Any] | None,
    now: datetime,
) -> bool | None:
    """Whether a store is open at ``now`` by its hours in its own time zone: False once
    closed, None when its hours are not known."""
    if status != "open":
        return False
    if week is None:
        return None
    local = now.astimezone(ZoneInfo(timezone))
    return schedule.is_open(schedule.week_of(week), schedule.special_of(special or {}), local)


def first_radius(limit_m: float | None) -> float:
    return min(FIRST_RADIUS_M, limit_m if limit_m is not None else MAX_DISTANCE_M, MAX_DISTANCE_M)


def next_radius(radius: float, found: int, wanted: int, limit_m: float | None) -> float | None:
    """The next circle to search after one of ``radius`` held ``found`` of the ``wanted``
    stores; None when the search is over (enough found, or nothing wider to search)."""
    last = min(limit_m, MAX_DISTANCE_M) if limit_m is not None else MAX_DISTANCE_M
    if found >= wanted or radius >= last:
        return None
    if found == 0:
        factor = GROWTH
    else:
        # Stores spread evenly would fill ``wanted`` within radius × √(wanted / found).
        factor = max(MIN_GROWTH, min(GROWTH, math.sqrt(wanted / found) * DENSITY_MARGIN))
    return min(radius * factor, last)


# --- finding stores by words (the members' app) -------------------------------------------

_WORD = re.compile(r"\w+")


def _folded(text: str) -> str:
    # Case aside, and ё written as е (as most people type it).
    return text.casefold().replace("ё", "е")


def search_words(text: str) -> list[str]:
    """The words of what a person typed (a city, a street, a store's name), folded."""
    return _WORD.findall(_folded(text))


def matches_words(words: list[str], *texts: str | None) -> bool:
    """Whether every word is found in the texts (a store's name, address, region), case and
    ё/е aside: "москва тверская" finds "ул. Тверская, 1, Москва"."""
    haystack = _folded(" ".join(t for t in texts if t))
    return bool(words) and all(w in haystack for w in words)
