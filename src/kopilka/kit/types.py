"""Value types the API takes everywhere.

Numbers are strict: ``true``, ``"30"``, ``1000.0`` or ``1e3`` are refused where an integer is
expected (a boolean is not a count of points, and a float is not money). Every integer is
bounded so that it fits the column it is stored in (``INT32_MAX`` for 32-bit columns).
Instants are ISO-8601 strings with an offset (or aware ``datetime`` objects from Python and
YAML callers), between the years ``MIN_YEAR`` and ``MAX_YEAR`` as written, and are
normalised to UTC. Model validators that check several fields name the field at fault with
``field_error`` (the HTTP layer appends it to the error's location).
"""

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

INT32_MAX = 2_147_483_647
MONEY_MAX = 10**13
POINTS_MAX = 10**12
# From the Unix epoch: history brought over from older systems (the CDNOW log is 1997–98)
# must load; year 1 with an offset has no UTC a database takes.
MIN_YEAR = 1970
MAX_YEAR = 2999
# Birthdays and other calendar dates reach further back than any purchase.
MIN_DAY_YEAR = 1900

# --- numbers ---------------------------------------------------------------------------------

Int = Annotated[int, Strict()]
"""A strict integer; bound it where it is used (``Field(ge=…, le=…)``)."""
# Integers every JSON reader holds exactly (JavaScript's safe integers), for free-form values
# such as custom attributes: a larger one is a 422, never a number no column can store.
JSON_INT_LIMIT = 2**53 - 1
JsonInt = Annotated[int, Strict(), Field(ge=-JSON_INT_LIMIT, le=JSON_INT_LIMIT)]
Flag = Annotated[bool, Strict()]
"""A strict boolean: ``true``/``false`` only, never ``1`` or ``"yes"``."""
Money = Annotated[
    int, Strict(), Field(ge=0, le=MONEY_MAX, description="Minor units (kopecks, cents).")
]
Points = Annotated[int, Strict(), Field(ge=1, le=POINTS_MAX)]
"""A positive amount of a points currency (or minor units of a money one)."""
Quantity = Annotated[int, Strict(), Field(ge=1, le=1_000_000)]
Int32 = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX)]
"""A positive count stored in a 32-bit column (limits, uses, version numbers)."""

# --- text --------------------------------------------------------------------------------------

ExternalId = Annotated[str, Field(min_length=1, max_length=200)]

# --- time --------------------------------------------------------------------------------------

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# What the OpenAPI document says of an instant: the format and the years it accepts.
INSTANT_PATTERN = r"^(19[7-9][0-9]|2[0-9]{3})-"
DAY_PATTERN = r"^(19[0-9]{2}|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"


def _iso_datetime(value: Any) -> Any:
    # Lax Pydantic takes Unix times (numbers, and digit strings) and booleans as instants.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        return value
    raise PydanticCustomError(
        "datetime_iso", "Input should be an ISO-8601 date and time with an offset"
    )


def _in_range(value: datetime) -> datetime:
    # The year as written: +14:00 on 1 January 0001 has no UTC equivalent a database takes.
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise PydanticCustomError(
            "datetime_range",
            "Input should be between the years {min} and {max}",
            {"min": MIN_YEAR, "max": MAX_YEAR},
        )
    return value


def _utc_in_range(value: datetime) -> datetime:
    return _in_range(value).astimezone(UTC)


Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_datetime),
    AfterValidator(_utc_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN}),
]
"""An aware instant from an ISO-8601 string, years 1970–2999, answered in UTC."""

LocalInstant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_datetime),
    AfterValidator(_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": INSTANT_PATTERN}),
]
"""As ``Instant``, but keeping the offset it was written with: for documents people write
(a rule's schedule ends at midnight in Berlin, and its trace says so)."""


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        return value
    raise PydanticCustomError("date_iso", "Input should be an ISO-8601 date (YYYY-MM-DD)")


def _day_in_range(value: date) -> date:
    if not MIN_DAY_YEAR <= value.year <= MAX_YEAR:
        raise PydanticCustomError(
            "date_range",
            "Input should be between the years {min} and {max}",
            {"min": MIN_DAY_YEAR, "max": MAX_YEAR},
        )
    return value


Day = Annotated[
    date,
    BeforeValidator(_iso_date),
    AfterValidator(_day_in_range),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]
"""A calendar date from an ISO-8601 string (``YYYY-MM-DD``), years 1900–2999."""


TIME_ZONES = sorted(available_timezones() | {"UTC"})
_ZONES = frozenset(TIME_ZONES)


def known_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows; a ``ValueError`` otherwise."""
    try:
        if name in _ZONES:
            ZoneInfo(name)
            return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise ValueError(f"unknown time zone {name!r}: give an IANA name such as Europe/Moscow")


def _zone(value: str) -> str:
    try:
        return known_zone(value)
    except ValueError as exc:
        raise PydanticCustomError("timezone", "{reason}", {"reason": str(exc)}) from None


TimeZone = Annotated[
    str,
    AfterValidator(_zone),
    WithJsonSchema({"type": "string", "enum": TIME_ZONES, "description": "An IANA time zone."}),
]


def field_error(field: str, message: str) -> PydanticCustomError:
    """An error a model validator raises about one of its fields: the HTTP layer reports it
    at ``<model location>.<field>``, the way a field's own error is reported."""
    return PydanticCustomError("invalid_field", "{message}", {"field": field, "message": message})


def error_location(error: Any) -> tuple[Any, ...]:
    """The location of a Pydantic error, with the field a ``field_error`` names appended."""
    location = tuple(error["loc"])
    field = (error.get("ctx") or {}).get("field")
    if error.get("type") == "invalid_field" and isinstance(field, str):
        location += tuple(field.split("."))
    return location


def json_numbers(value: Any, path: str = "") -> Any:
    """``value`` unchanged if every number in it is a JSON-safe integer or a finite float."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > JSON_INT_LIMIT:
            raise ValueError(f"{path or 'a number'}: integers lie within ±{JSON_INT_LIMIT}")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{path or 'a number'}: numbers are finite")
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            json_numbers(item, f"{path}.{key}" if path else str(key))
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            json_numbers(item, f"{path}.{index}" if path else str(index))
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(json_numbers)]
"""A free-form JSON object whose numbers every reader and column can hold."""
