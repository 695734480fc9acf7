"""API shapes of stores."""

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from kopilka.kit.types import Day, Flag, TimeZone, field_error
from kopilka.stores import hours as schedule

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
StoreCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=CODE_PATTERN,
        description="Unique in the program; what purchases name in `store`. Letters, digits, "
        "`.`, `_`, `-`; case matters; never changes.",
    ),
]
StoreTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,50}$")]
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False)]
IntervalText = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$",
        description="HH:MM-HH:MM of the store's wall clock; an end not after the start runs "
        "past midnight (22:00-02:00); 00:00-24:00 is the whole day.",
    ),
]
DayIntervals = Annotated[list[IntervalText], Field(max_length=schedule.MAX_INTERVALS_PER_DAY)]
Status = Literal["open", "closed"]
Phone = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 ()-]*[0-9]$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Address = Annotated[str, Field(min_length=1, max_length=300)]
Region = Annotated[str, Field(min_length=1, max_length=100)]
Tags = Annotated[list[StoreTag], Field(max_length=20)]
SpecialHours = Annotated[
    dict[Day, DayIntervals],
    Field(
        max_length=schedule.MAX_SPECIAL_DATES,
        description="Dates whose intervals replace the weekday's (an empty list: closed).",
    ),
]


class WeekHours(BaseModel):
    """Each weekday's intervals; a day left out or empty is closed."""

    model_config = ConfigDict(extra="forbid")

    mon: DayIntervals = Field(default_factory=list)
    tue: DayIntervals = Field(default_factory=list)
    wed: DayIntervals = Field(default_factory=list)
    thu: DayIntervals = Field(default_factory=list)
    fri: DayIntervals = Field(default_factory=list)
    sat: DayIntervals = Field(default_factory=list)
    sun: DayIntervals = Field(default_factory=list)

    @model_validator(mode="after")
    def _days_are_valid(self) -> "WeekHours":
        for key in schedule.DAY_KEYS:
            try:
                setattr(self, key, _canonical_day(getattr(self, key)))
            except ValueError as exc:
                raise field_error(key, str(exc)) from None
        return self


def _canonical_day(texts: list[str]) -> list[str]:
    return [schedule.format_interval(i) for i in schedule.day_intervals(texts)]


def _canonical_special(value: dict[date, list[str]]) -> dict[date, list[str]]:
    canonical: dict[date, list[str]] = {}
    for day in sorted(value):
        try:
            canonical[day] = _canonical_day(value[day])
        except ValueError as exc:
            raise field_error(day.isoformat(), str(exc)) from None
    return canonical


def _tags(value: list[str]) -> list[str]:
    return sorted(set(value))


class StoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: StoreCode
    name: Name
    address: Address | None = None
    region: Region | None = Field(
        default=None, description="Where the store is (`moscow`); filters lists and reports."
    )
    latitude: Latitude | None = Field(default=None, description="WGS 84 degrees, -90…90.")
    longitude: Longitude | None = Field(default=None, description="WGS 84 degrees, -180…180.")
    timezone: TimeZone | None = Field(
        default=None, description="IANA time zone of the store's clock (default: the program's)."
    )
    hours: WeekHours | None = Field(default=None, description="None: hours not known.")
    special_hours: SpecialHours = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    phone: Phone | None = None
    status: Status = "open"

    @field_validator("special_hours")
    @classmethod
    def _special(cls, value: dict[date, list[str]]) -> dict[date, list[str]]:
        return _canonical_special(value)

    @field_validator("tags")
    @classmethod
    def _tag_set(cls, value: list[str]) -> list[str]:
        return _tags(value)

    @model_validator(mode="after")
    def _coordinates_together(self) -> "StoreCreate":
        if (self.latitude is None) != (self.longitude is None):
            missing = "longitude" if self.longitude is None else "latitude"
            raise field_error(missing, "give latitude and longitude together")
        return self


# Fields a change may not set to null.
REQUIRED = ("name", "timezone", "special_hours", "tags", "status")


class StoreUpdate(BaseModel):
    """The fields to change; null clears an optional one (address, region, coordinates,
    hours, phone). The code never changes."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    address: Address | None = None
    region: Region | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: TimeZone | None = None
    hours: WeekHours | None = None
    special_hours: SpecialHours | None = None
    tags: Tags | None = None
    phone: Phone | None = None
    status: Status | None = None

    @field_validator("special_hours")
    @classmethod
    def _special(cls, value: dict[date, list[str]] | None) -> dict[date, list[str]] | None:
        return None if value is None else _canonical_special(value)

    @field_validator("tags")
    @classmethod
    def _tag_set(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _tags(value)

    @model_validator(mode="after")
    def _no_null_for_required(self) -> "StoreUpdate":
        for name in REQUIRED:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise field_error(name, f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, as stored values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class StoreImportRow(StoreUpdate):
    """A row of an import: a store by its code, created or changed (fields left out keep
    their value; a new store needs a name)."""

    code: StoreCode


class Store(BaseModel):
    id: UUID
    code: str
    name: str
    address: str | None
    region: str | None
    latitude: float | None
    longitude: float | None
    timezone: str
    hours: WeekHours | None
    special_hours: dict[str, list[str]]
    tags: list[str]
    phone: str | None
    status: Status
    closed_at: datetime | None = Field(description="When the store closed (None while open).")
    open_now: bool | None = Field(
        description="Open at this moment by its hours in its time zone (None: hours not "
        "known; false while closed)."
    )
    created_at: datetime
    updated_at: datetime


class StorePage(BaseModel):
    items: list[Store]
    next_cursor: str | None = None


class NearStore(Store):
    distance_m: int = Field(description="Great-circle distance, whole metres.")


class NearestResult(BaseModel):
    items: list[NearStore] = Field(description="Nearest first.")
    searched_m: int = Field(description="How far the search reached, metres.")


MAX_IMPORT_ROWS = 5000


class StoreImport(BaseModel):
    """Stores to create or change, by code: a JSON list, or the text of a CSV file (the
    header is in docs/stores.md). Exactly one of them. Every bad row of the list is named
    (``stores.N.field``) in one 422."""

    model_config = ConfigDict(extra="forbid")

    stores: list[StoreImportRow] | None = Field(default=None, max_length=MAX_IMPORT_ROWS)
    csv: str | None = Field(default=None, max_length=4 * 1024 * 1024)
    dry_run: Flag = Field(default=False, description="Check and report; write nothing.")

    @model_validator(mode="after")
    def _one_source(self) -> "StoreImport":
        if (self.stores is None) == (self.csv is None):
            raise field_error("stores", "give stores (a list) or csv (text), not both")
        return self


class ImportedRow(BaseModel):
    row: int = Field(description="Index in `stores`, or line number in the CSV file.")
    code: str
    outcome: Literal["created", "updated", "unchanged"]


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    dry_run: bool
    rows: list[ImportedRow]
