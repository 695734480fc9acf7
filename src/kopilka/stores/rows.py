"""Stores in a CSV file: the header, and each line's cells as the values of an import row.
Pure (no database): the service validates the values and writes them.

The header names the columns (any order, names as in ``COLUMNS``; ``lat``/``lon`` are
taken for ``latitude``/``longitude``); ``code`` and ``name`` are required, other columns
may be left out. A column left out keeps each store's value (a new store gets the default);
an empty cell clears it, except ``timezone`` and ``status``, where an empty cell keeps the
value (new stores: the program's time zone, ``open``). ``hours`` and ``special_hours`` take
the text form of :mod:`kopilka.stores.hours`; ``tags`` are separated by ``,``, ``;`` or
``|``.
"""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kopilka.stores import hours as schedule

COLUMNS = (
    "code",
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
REQUIRED = ("code", "name")
ALIASES = {"lat": "latitude", "lon": "longitude", "lng": "longitude"}
# Columns whose empty cell keeps the store's value rather than clearing it.
KEEP_WHEN_EMPTY = ("timezone", "status")
_TAG_SEPARATORS = re.compile(r"[,;|]")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # 1: the header
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f": {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    values: dict[str, Any]


@dataclass(slots=True)
class CsvStores:
    rows: list[CsvRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _header(names: list[str]) -> tuple[list[str], list[RowError]]:
    columns = [ALIASES.get(n.strip().lower(), n.strip().lower()) for n in names]
    errors = [
        RowError(1, None, f"unknown column {name!r}: the columns are {', '.join(COLUMNS)}")
        for name in columns
        if name not in COLUMNS
    ]
    errors += [
        RowError(1, None, f"column {name!r} appears twice")
        for name in sorted({c for c in columns if columns.count(c) > 1})
    ]
    errors += [
        RowError(1, None, f"the header needs a {name!r} column")
        for name in REQUIRED
        if name not in columns
    ]
    return columns, errors


def _cell(column: str, text: str) -> Any:
    """A cell as the import row's value; ValueError saying what is wrong."""
    text = text.strip()
    if column in ("code", "name"):
        return text
    if not text:
        return {"special_hours": {}, "tags": []}.get(column)
    if column in ("latitude", "longitude"):
        try:
            return float(text.replace(",", "."))
        except ValueError:
            raise ValueError(f"{text!r} is not a number of degrees") from None
    if column == "hours":
        return schedule.parse_week_text(text)
    if column == "special_hours":
        return schedule.parse_special_text(text)
    if column == "tags":
        return sorted({t.strip() for t in _TAG_SEPARATORS.split(text) if t.strip()})
    return text


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each record with the line it starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    start = 1
    for record in reader:
        yield start, record
        start = reader.line_num + 1


def parse_csv(text: str) -> CsvStores:
    """Every data line's values, and every error found by line number. Blank lines are
    skipped; a line with more cells than the header, or a code an earlier line has, is an
    error."""
    found = CsvStores()
    records = _records(text)
    try:
        first = next(records, None)
        if first is None:
            found.errors.append(RowError(1, None, "the file is empty: it needs a header"))
            return found
        columns, header_errors = _header(first[1])
        if header_errors:
            found.errors.extend(header_errors)
            return found
        first_line: dict[Any, int] = {}
        for line, record in records:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(columns):
                found.errors.append(
                    RowError(line, None, f"{len(record)} cells, the header has {len(columns)}")
                )
                continue
            values: dict[str, Any] = {}
            failed = False
            for column, cell in zip(columns, record, strict=False):
                if not cell.strip() and column in KEEP_WHEN_EMPTY:
                    continue
                try:
                    values[column] = _cell(column, cell)
                except ValueError as exc:
                    found.errors.append(RowError(line, column, str(exc)))
                    failed = True
            code = values.get("code")
            if not failed and code in first_line:
                found.errors.append(
                    RowError(line, "code", f"{code!r} is also on line {first_line[code]}")
                )
            elif not failed:
                first_line[code] = line
                found.rows.append(CsvRow(line, values))
    except csv.Error as exc:
        found.errors.append(RowError(0, None, f"not a CSV file: {exc}"))
    return found
