"""The console's store form: its fields read into what ``POST /v1/stores`` and ``PATCH
/v1/stores/{code}`` take, and a store shown back in it.

Opening hours are typed per weekday in words people write (``09:00-13:00, 14:00-21:00``,
``off``); special dates in the text form of files (``2026-12-31 10:00-16:00; 2027-01-01
off``). Every day left empty means the hours are not known.
"""

import re
from typing import Any

from starlette.datastructures import FormData

from kopilka.errors import InvalidInput
from kopilka.stores import hours as schedule
from kopilka.stores.schemas import Store, StoreCreate, StoreUpdate
from kopilka.web.console.catalog_fields import FieldReader, checked, raw, raw_values
from kopilka.web.forms import text

DAY_FIELDS = tuple(f"hours_{day}" for day in schedule.DAY_KEYS)
PLACE_FIELDS = ("name", "address", "region", "latitude", "longitude", "timezone", "phone")
EDIT_FIELDS = (*PLACE_FIELDS, *DAY_FIELDS, "special_hours", "tags")
NEW_FIELDS = ("code", *EDIT_FIELDS, "status")
CLOSED_WORDS = frozenset({"off", "closed", "-", "—"})
_TAG_SEPARATORS = re.compile(r"[\s,;|]+")


def api_field(name: str) -> str:
    """The form's field that shows an error the API reports on ``name``."""
    if name.startswith("hours."):
        return "hours_" + name.split(".", 1)[1].split(".", 1)[0]
    return name.split(".", 1)[0]


def _day(typed: str, name: str) -> list[str]:
    cleaned = typed.strip()
    if not cleaned or cleaned.lower() in CLOSED_WORDS:
        return []
    intervals = [part.strip() for part in cleaned.split(",") if part.strip()]
    try:
        return [schedule.format_interval(i) for i in schedule.day_intervals(intervals)]
    except ValueError as exc:
        raise InvalidInput(str(exc), field=name) from None


def _week(form: FormData, reader: FieldReader) -> dict[str, list[str]] | None:
    """The week typed day by day; ``None`` (not known) when every day is left empty."""
    typed = {day: raw(form, f"hours_{day}") for day in schedule.DAY_KEYS}
    if not any(value.strip() for value in typed.values()):
        return None
    week: dict[str, list[str]] = {}
    for day, value in typed.items():
        week[day] = reader.take(f"hours_{day}", _day, value, f"hours_{day}") or []
    return week


def _special(typed: str) -> dict[str, list[str]]:
    try:
        return schedule.parse_special_text(typed.replace("\n", ";"))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="special_hours") from None


def _degrees(typed: str, name: str) -> float | None:
    cleaned = typed.strip().replace(",", ".")
    if not cleaned:
        return None
    try:
        return float(cleaned)
    except ValueError:
        raise InvalidInput(f"{typed.strip()!r} is not a number of degrees", field=name) from None


def _read(form: FormData) -> tuple[dict[str, Any], FieldReader]:
    reader = FieldReader(form)
    values: dict[str, Any] = {
        name: reader.text(name, limit=1000)
        for name in ("name", "address", "region", "timezone", "phone")
    }
    for name in ("latitude", "longitude"):
        values[name] = reader.take(name, _degrees, raw(form, name), name)
    values["hours"] = _week(form, reader)
    values["special_hours"] = reader.take("special_hours", _special, raw(form, "special_hours"))
    values["tags"] = [t for t in _TAG_SEPARATORS.split(raw(form, "tags")) if t]
    return values, reader


def read_new_store(form: FormData) -> StoreCreate:
    """A new store from its form; every bad field named (``FormInvalid``)."""
    values, reader = _read(form)
    values["code"] = text(form, "code", limit=200)
    values["status"] = text(form, "status", limit=20) or "open"
    reader.done()
    return checked(StoreCreate, {k: v for k, v in values.items() if v is not None or k == "hours"})


def read_store_changes(form: FormData) -> StoreUpdate:
    """The edit form as a change of every field it shows (the service writes nothing for a
    field that stays as it was); an emptied optional field is cleared."""
    values, reader = _read(form)
    if values["timezone"] is None:
        del values["timezone"]  # a store always has a time zone: empty keeps it
    reader.done()
    return checked(StoreUpdate, values)


def store_values(store: Store) -> dict[str, str]:
    """A store as its edit form shows it."""
    values = {
        name: "" if getattr(store, name) is None else str(getattr(store, name))
        for name in PLACE_FIELDS
    }
    week: dict[str, list[str]] = store.hours.model_dump() if store.hours is not None else {}
    for day in schedule.DAY_KEYS:
        intervals = week.get(day) or []
        values[f"hours_{day}"] = (", ".join(intervals) or "off") if store.hours else ""
    values["special_hours"] = schedule.special_text(store.special_hours)
    values["tags"] = ", ".join(store.tags)
    return values


def submitted(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """The form as it was sent, to show it again beside its errors."""
    return raw_values(form, names)


def hours_text(store: Store) -> str | None:
    """A store's week in the short text form (``Mo-Fr 09:00-21:00; Sa-Su off``); ``None``
    when its hours are not known."""
    return schedule.week_text(store.hours.model_dump()) if store.hours is not None else None
