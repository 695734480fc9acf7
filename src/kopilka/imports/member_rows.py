"""The member CSV file: its header and rows, turned into member import records.

Pure: the file is read from any iterable of text lines, row by row, never held whole. A
row becomes the dict of a :class:`~kopilka.imports.schemas.MemberImportRecord` or a
:class:`MemberRowError` naming its line and column; a header that cannot be read is a
:class:`HeaderError` for the whole file. The columns are documented in
docs/import-members.md.
"""

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from functools import lru_cache
from typing import Any

from kopilka.programs.schemas import AttributeSpec

PROFILE_COLUMNS = (
    "name",
    "birthday",
    "language",
    "gender",
    "city",
    "address",
    "preferred_store",
    "preferred_channel",
)
IDENTIFIER_COLUMNS = ("external_id", "card", "phone", "email")
OTHER_COLUMNS = ("registered_at", "tags", "points", "points_expire_on", "tier", "tier_since")
CHANNELS = ("email", "sms", "push")
PURPOSES = ("marketing", "service")
CONSENT_STATES = {"granted": True, "denied": False, "withdrawn": False}
_CONSENT = re.compile(r"^consent\.(email|sms|push)\.(marketing|service)(\.at|\.version)?$")
_ATTRIBUTE = re.compile(r"^attr\.([A-Za-z0-9_.:-]{1,64})$")
_BALANCE = re.compile(r"^balance\.([A-Za-z0-9_-]{1,32})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_AMOUNT = re.compile(r"^[0-9]{1,13}$")
_INTEGER = re.compile(r"^-?[0-9]{1,18}$")
_NUMBER = re.compile(r"^-?[0-9]{1,18}(\.[0-9]+)?$")
TAG_SEPARATOR = ";"
LOT_SEPARATOR = ";"


class HeaderError(ValueError):
    """The file's header cannot be read: nothing in the file can be imported."""


@dataclass(frozen=True)
class MemberRow:
    line_no: int  # the line the row starts on (the header is line 1)
    data: dict[str, Any]  # a MemberImportRecord dict


@dataclass(frozen=True)
class MemberRowError:
    line_no: int
    field: str  # the column at fault
    reason: str

    @property
    def message(self) -> str:
        return f"line {self.line_no}: {self.field}: {self.reason}"


class _Bad(ValueError):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class MemberCsv:
    """How to read the cells of one program's file: its time zone (a bare date is midnight
    there) and its declared attributes (their types)."""

    zone: tzinfo
    attributes: Mapping[str, AttributeSpec]

    def rows(self, lines: Iterable[str]) -> Iterator[MemberRow | MemberRowError]:
        """The header is read at once (a :class:`HeaderError` is raised here, before
        anything is yielded); the rows as they are iterated."""
        reader = csv.reader(iter(lines))
        try:
            header = next(reader)
        except StopIteration:
            raise HeaderError("the file is empty: it needs a header line") from None
        columns = self.header(header)
        return self._rows(reader, columns)

    def header(self, cells: list[str]) -> list[str]:
        names = [c.strip() for c in cells]
        if names and names[0].startswith("\ufeff"):
            names[0] = names[0][1:]
        seen: set[str] = set()
        for name in names:
            if not name:
                raise HeaderError("the header has an empty column name")
            if name in seen:
                raise HeaderError(f"column {name!r} appears twice in the header")
            seen.add(name)
            self._known(name)
        if not seen & set(IDENTIFIER_COLUMNS):
            raise HeaderError(
                "the header needs at least one identifier column: external_id, card, phone or email"
            )
        if "points_expire_on" in seen and "points" not in seen:
            raise HeaderError("points_expire_on needs a points column")
        for channel in CHANNELS:
            for purpose in PURPOSES:
                base = f"consent.{channel}.{purpose}"
                extra = {f"{base}.at", f"{base}.version"} & seen
                if extra and base not in seen:
                    raise HeaderError(f"{sorted(extra)[0]} needs a {base} column")
        return names

    def _known(self, name: str) -> None:
        if name in PROFILE_COLUMNS or name in IDENTIFIER_COLUMNS or name in OTHER_COLUMNS:
            return
        if _CONSENT.match(name) or _BALANCE.match(name):
            return
        attribute = _ATTRIBUTE.match(name)
        if attribute:
            key = attribute.group(1)
            if self.attributes and key not in self.attributes and key != "timezone":
                raise HeaderError(
                    f"column {name!r}: the program declares no attribute {key!r} "
                    f"(declared: {', '.join(sorted(self.attributes))})"
                )
            return
        raise HeaderError(f"unknown column {name!r} (see docs/import-members.md)")

    def _rows(
        self, reader: Iterator[list[str]], columns: list[str]
    ) -> Iterator[MemberRow | MemberRowError]:
        line_no = 1
        for cells in reader:
            start = line_no + 1
            line_no = reader.line_num  # type: ignore[attr-defined]
            if not any(c.strip() for c in cells):
                continue  # a blank line
            if len(cells) != len(columns):
                yield MemberRowError(
                    start,
                    "row",
                    f"has {len(cells)} cells, the header {len(columns)}",
                )
                continue
            try:
                yield MemberRow(start, self.record(dict(zip(columns, cells, strict=True))))
            except _Bad as bad:
                yield MemberRowError(start, bad.column, bad.reason)

    def record(self, row: Mapping[str, str]) -> dict[str, Any]:
        """The record dict of one row (cells by column); blank cells are left out."""
        cells = {k: v.strip() for k, v in row.items() if v.strip()}
        data: dict[str, Any] = {}
        for name in (*IDENTIFIER_COLUMNS, *PROFILE_COLUMNS):
            if name in cells:
                data[name] = cells[name]
        if "registered_at" in cells:
            data["registered_at"] = self._instant("registered_at", cells["registered_at"])
        if "tags" in cells:
            data["tags"] = [t.strip() for t in cells["tags"].split(TAG_SEPARATOR) if t.strip()]
        attributes = {}
        consents: dict[str, dict[str, Any]] = {}
        lots: list[dict[str, Any]] = []
        for column, value in cells.items():
            kind, first, second = _column_kind(column)
            if kind == "attr":
                attributes[first] = self._attribute(column, first, value)
            elif kind == "consent":
                base = f"consent.{first}.{second}"
                consents.setdefault(base, {"channel": first, "purpose": second})
            elif kind == "balance":
                lots += self._lots(column, value, first, None)
        if attributes:
            data["attributes"] = attributes
        if "points" in cells:
            expiry = cells.get("points_expire_on")
            lots = self._lots("points", cells["points"], None, expiry) + lots
        elif "points_expire_on" in cells:
            raise _Bad("points_expire_on", "an expiry without points")
        if lots:
            data["points"] = lots
        if consents:
            data["consents"] = [self._consent(base, c, cells) for base, c in consents.items()]
        for base in (f"consent.{c}.{p}" for c in CHANNELS for p in PURPOSES):
            if base not in cells and (f"{base}.at" in cells or f"{base}.version" in cells):
                raise _Bad(base, "granted or denied is missing (a date or version is given)")
        if "tier" in cells:
            tier: dict[str, Any] = {"id": cells["tier"]}
            if "tier_since" in cells:
                tier["since"] = self._instant("tier_since", cells["tier_since"])
            data["tier"] = tier
        elif "tier_since" in cells:
            raise _Bad("tier_since", "a date without a tier")
        return data

    def _instant(self, column: str, text: str) -> str:
        """A bare date is the start of that day in the program's time zone."""
        if _DATE.match(text):
            try:
                day = date.fromisoformat(text)  # the regex above admits YYYY-MM-DD only
            except ValueError:
                raise _Bad(column, f"{text!r} is not a date") from None
            return datetime.combine(day, time(), tzinfo=self.zone).isoformat()
        return text

    def _consent(
        self, base: str, consent: dict[str, Any], cells: Mapping[str, str]
    ) -> dict[str, Any]:
        state = cells[base].lower()
        if state not in CONSENT_STATES:
            raise _Bad(base, f"must be granted or denied, got {cells[base]!r}")
        at = cells.get(f"{base}.at")
        if at is None:
            raise _Bad(f"{base}.at", "the date the member gave or refused it is required")
        found = consent | {"granted": CONSENT_STATES[state], "at": self._instant(f"{base}.at", at)}
        if f"{base}.version" in cells:
            found["text_version"] = cells[f"{base}.version"]
        return found

    def _lots(
        self, column: str, text: str, currency: str | None, expire_on: str | None
    ) -> list[dict[str, Any]]:
        """``AMOUNT[@EXPIRY]`` lots separated by ``;``; ``expire_on`` (the
        ``points_expire_on`` column) is the expiry of a single plain amount."""
        parts = [p.strip() for p in text.split(LOT_SEPARATOR) if p.strip()]
        if expire_on is not None and (len(parts) != 1 or "@" in parts[0]):
            raise _Bad("points_expire_on", "goes with a single amount in points (no @ dates)")
        lots = []
        for part in parts:
            amount, _, written = part.partition("@")
            amount, expiry = amount.strip(), written.strip() or expire_on
            if not _AMOUNT.match(amount) or int(amount) == 0:
                raise _Bad(column, f"{part!r}: an amount is a positive whole number")
            lot: dict[str, Any] = {"amount": int(amount)}
            if currency is not None:
                lot["currency"] = currency
            if expiry:
                where = "points_expire_on" if expire_on is not None else column
                if _DATE.match(expiry):
                    lot["expires_on"] = expiry
                elif "T" in expiry or " " in expiry:
                    lot["expires_at"] = expiry
                else:
                    raise _Bad(where, f"{expiry!r}: an expiry is YYYY-MM-DD or an instant")
            lots.append(lot)
        return lots

    def _attribute(self, column: str, key: str, text: str) -> Any:
        spec = self.attributes.get(key)
        kind = spec.type if spec is not None else "string"
        if kind == "integer":
            if not _INTEGER.match(text):
                raise _Bad(column, f"must be a whole number, got {text!r}")
            return int(text)
        if kind == "number":
            if not _NUMBER.match(text):
                raise _Bad(column, f"must be a number, got {text!r}")
            return int(text) if _INTEGER.match(text) else float(text)
        if kind == "boolean":
            if text.lower() not in ("true", "false"):
                raise _Bad(column, f"must be true or false, got {text!r}")
            return text.lower() == "true"
        return text


@lru_cache(maxsize=1024)
def _column_kind(column: str) -> tuple[str, str, str]:
    """What a column holds: ``attr`` (its attribute), ``consent`` (its channel and
    purpose, or their date or version) or ``balance`` (its currency); ``""`` for the
    others. Worked out once per column name, not once per cell."""
    attribute = _ATTRIBUTE.match(column)
    if attribute:
        return "attr", attribute.group(1), ""
    consent = _CONSENT.match(column)
    if consent:
        return "consent", consent.group(1), consent.group(2)
    balance = _BALANCE.match(column)
    if balance:
        return "balance", balance.group(1), ""
    return "", "", ""


def column_of(location: tuple[Any, ...], data: Mapping[str, Any]) -> str:
    """The CSV column a record's field at ``location`` came from (a validation error's
    location), so that an error found after parsing still names a column of the file."""
    if not location:
        return "row"
    head = location[0]
    if head == "attributes" and len(location) > 1:
        return f"attr.{location[1]}"
    if head == "consents" and len(location) > 1 and isinstance(location[1], int):
        consents = data.get("consents") or []
        if location[1] < len(consents):
            found = consents[location[1]]
            base = f"consent.{found.get('channel')}.{found.get('purpose')}"
            rest = location[2] if len(location) > 2 else None
            if rest == "at":
                return f"{base}.at"
            if rest == "text_version":
                return f"{base}.version"
            return base
        return "consents"
    if head == "points" and len(location) > 1 and isinstance(location[1], int):
        lots = data.get("points") or []
        if location[1] < len(lots):
            currency = lots[location[1]].get("currency")
            return f"balance.{currency}" if currency else "points"
        return "points"
    if head == "tier":
        return "tier_since" if len(location) > 1 and location[1] == "since" else "tier"
    return str(head)
