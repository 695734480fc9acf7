"""Streaming parsers that turn purchase files into PurchaseCreate dicts.

Two formats are understood:

* CDNOW: the whitespace-separated purchase log of the CDNOW music store, in either published
  layout (the 4-column master file or the 5-column 1/10 sample).
* CSV: Kopilka's own layout, one row per purchase line; consecutive rows with the same
  ``external_id`` make up one purchase.

Parsers take any iterable of text lines (an open file works) and yield, in file order, either a
``ParsedPurchase`` or a ``RowError``. They never hold the file in memory, so a caller can import
arbitrarily large files and stop at the first error or collect them all, as it prefers. A bad
row costs only its own purchase: the error is reported once, on the row's own line, and parsing
carries on.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal, NamedTuple

from kopilka.purchases.domain import LineItem

__all__ = ["ParsedPurchase", "RowError", "detect_format", "parse_cdnow", "parse_csv"]

# The API's ceiling on one amount; anything larger is a typo, not a sale, and is better reported
# here with its line number than rejected later by the engine.
MAX_MINOR_UNITS = 10**13
CHANNELS = ("app", "online", "pos")

_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+\.[0-9]+")
_SIGNED_NUMBER = re.compile(r"-[0-9]*\.?[0-9]+")
_CDNOW_VALUE = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class ParsedPurchase:
    line_no: int  # 1-based line number of the (first) source line
    data: dict[str, object]  # a PurchaseCreate dict
    member_external_id: str  # lets the importer create members it has not seen yet


@dataclass(frozen=True)
class RowError:
    line_no: int
    message: str  # one sentence starting "line N: " that names the column at fault


ParseResult = ParsedPurchase | RowError


class _BadValue(ValueError):
    """A field failed validation; the message names the column and is shown to the user."""


# -- shared field parsing -----------------------------------------------------------------------


def _check_range(column: str, value: int) -> int:
    if value > MAX_MINOR_UNITS:
        raise _BadValue(f"{column} is too large, got {value}")
    return value


def _nonnegative_int(column: str, text: str, *, positive: bool = False) -> int:
    text = text.strip()
    if _DIGITS.fullmatch(text) and (int(text) > 0 or not positive):
        return _check_range(column, int(text))
    if positive:
        raise _BadValue(f"{column} must be a positive integer, got {text!r}")
    if _SIGNED_NUMBER.fullmatch(text):
        raise _BadValue(f"{column} must not be negative, got {text!r}")
    raise _BadValue(f"{column} must be a whole number, got {text!r}")


def _money(column: str, text: str) -> int:
    """Minor units from either an integer ("1250") or a major-unit decimal ("12.50")."""
    text = text.strip()
    if _DIGITS.fullmatch(text):
        return _check_range(column, int(text))
    if _DECIMAL.fullmatch(text):
        # Decimal keeps "12.50" exact; scaling by 100 only moves the exponent.
        minor = Decimal(text).scaleb(2)
        if minor != minor.to_integral_value():
            raise _BadValue(f"{column} has more than 2 decimal places, got {text!r}")
        return _check_range(column, int(minor))
    if _SIGNED_NUMBER.fullmatch(text):
        raise _BadValue(f"{column} must not be negative, got {text!r}")
    raise _BadValue(
        f"{column} must be an amount in minor units (1250) or with a decimal point (12.50), "
        f"got {text!r}"
    )


def _purchase(
    *,
    member: str,
    external_id: str,
    occurred_at: str,
    store: str | None,
    channel: str,
    currency: str,
    lines: list[dict[str, object]],
    total: int,
) -> dict[str, object]:
    return {
        "member": {"external_id": member},
        "external_id": external_id,
        "occurred_at": occurred_at,
        "store": store,
        "channel": channel,
        "currency": currency,
        "lines": lines,
        "total": total,
    }


def _error(line_no: int, message: str) -> RowError:
    return RowError(line_no, f"line {line_no}: {message}")


# -- format detection ---------------------------------------------------------------------------


def detect_format(first_line: str) -> Literal["cdnow", "csv"]:
    """Guess the format from a file's first line (header or data).

    CDNOW lines never contain a comma, and a Kopilka CSV header always does.
    """
    return "csv" if "," in first_line else "cdnow"


# -- CDNOW --------------------------------------------------------------------------------------


class _CdnowRow(NamedTuple):
    customer_id: str
    date_text: str  # YYYYMMDD as printed; part of the stable external id
    occurred_at: str
    cds: int
    cents: int


def _cdnow_row(fields: Sequence[str]) -> _CdnowRow:
    # Master layout: customer_id date number_of_cds dollar_value; the sample adds a sample_id
    # (the customer's number within the sample) after customer_id.
    if len(fields) not in (4, 5):
        raise _BadValue(f"expected 4 or 5 whitespace-separated columns, got {len(fields)}")
    customer_id, *sample_id, date_text, cds_text, value_text = fields
    if not _DIGITS.fullmatch(customer_id):
        raise _BadValue(f"customer_id must be a number, got {customer_id!r}")
    if sample_id and not _DIGITS.fullmatch(sample_id[0]):
        raise _BadValue(f"sample_id must be a number, got {sample_id[0]!r}")
    return _CdnowRow(
        customer_id=customer_id,
        date_text=date_text,
        occurred_at=_cdnow_noon(date_text),
        cds=_nonnegative_int("number_of_cds", cds_text),
        cents=_dollars_to_cents(value_text),
    )


@functools.lru_cache(maxsize=4096)
def _cdnow_noon(text: str) -> str:
    """YYYYMMDD -> ISO noon UTC; cached because a log has few distinct dates and many lines."""
    try:
        if len(text) == 8 and _DIGITS.fullmatch(text):
            day = date(int(text[:4]), int(text[4:6]), int(text[6:]))
            return datetime(day.year, day.month, day.day, 12, tzinfo=UTC).isoformat()
    except ValueError:
        pass
    raise _BadValue(f"date must be a calendar date written YYYYMMDD, got {text!r}")


def _dollars_to_cents(text: str) -> int:
    if _SIGNED_NUMBER.fullmatch(text):
        raise _BadValue(f"dollar_value must not be negative, got {text!r}")
    if not _CDNOW_VALUE.fullmatch(text):
        raise _BadValue(f"dollar_value must be a dollar amount like 11.77, got {text!r}")
    try:
        cents = Decimal(text).quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2)
    except InvalidOperation:
        # quantize refuses results beyond the context precision (28 digits).
        raise _BadValue(f"dollar_value is too large, got {text!r}") from None
    return _check_range("dollar_value", int(cents))


@dataclass
class _CdnowKeys:
    """Numbers a customer's lines per date, for ids like "cdnow-00002-19970112-1".

    Counting per (customer, date) rather than per file line gives a purchase the same id in the
    master file and in the sample. Only the current customer's dates are kept: both published
    files keep each customer's lines together (the sample is grouped but not sorted), so memory
    stays bounded by the number of customers, not lines.
    """

    customer_id: str | None = None
    per_date: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)

    def next_key(self, customer_id: str, date_text: str) -> int:
        if customer_id != self.customer_id:
            if customer_id in self.finished:
                # Restarting the count here could repeat an id that was already handed out.
                raise _BadValue(
                    f"customer_id {customer_id!r} appears again after other customers' lines; "
                    "keep each customer's lines together"
                )
            if self.customer_id is not None:
                self.finished.add(self.customer_id)
            self.customer_id = customer_id
            self.per_date = {}
        k = self.per_date.get(date_text, 0)
        self.per_date[date_text] = k + 1
        return k


def _cdnow_purchase(row: _CdnowRow, k: int, line_no: int, currency: str) -> ParsedPurchase:
    # The log has one amount per line and no unit prices: round the unit price up and give the
    # rounding back as a discount, so the line amount is exactly the logged value.
    quantity = max(row.cds, 1)  # a 0-CD line is still one sale (of something), worth its value
    unit_price = -(-row.cents // quantity)
    discount = unit_price * quantity - row.cents
    member = f"cdnow-{row.customer_id}"
    data = _purchase(
        member=member,
        external_id=f"cdnow-{row.customer_id}-{row.date_text}-{k}",
        occurred_at=row.occurred_at,
        store=None,
        channel="online",
        currency=currency,
        lines=[LineItem("CD", "CD", "music", quantity, unit_price, discount).to_api()],
        total=row.cents,
    )
    return ParsedPurchase(line_no=line_no, data=data, member_external_id=member)


def _is_header(fields: Sequence[str]) -> bool:
    # Only text counts: a first line like "-1 19970101 ..." is bad data and must be reported.
    return fields[0][0].isalpha() or fields[0][0] == "_"


def parse_cdnow(lines: Iterable[str], *, currency: str = "USD") -> Iterator[ParseResult]:
    """Parse a CDNOW purchase log: one purchase per line, dated at 12:00 UTC.

    A first line that starts with a word (like "customer_id") is a header and is skipped; blank
    lines are ignored. The published data has lines with a zero dollar value; they come through
    as zero-total purchases, which are valid and earn nothing.
    """
    if not _CURRENCY.fullmatch(currency):
        raise ValueError(f"currency must be a 3-letter ISO 4217 code, got {currency!r}")
    currency = currency.upper()
    keys = _CdnowKeys()
    before_data = True
    for line_no, text in enumerate(lines, start=1):
        fields = text.removeprefix("\ufeff").split()
        if not fields:
            continue
        if before_data and _is_header(fields):
            before_data = False
            continue
        before_data = False
        try:
            row = _cdnow_row(fields)
            k = keys.next_key(row.customer_id, row.date_text)
        except _BadValue as exc:
            yield _error(line_no, str(exc))
            continue
        yield _cdnow_purchase(row, k, line_no, currency)


# -- CSV ----------------------------------------------------------------------------------------

_REQUIRED_COLUMNS = (
    "external_id",
    "member",
    "occurred_at",
    "store",
    "channel",
    "sku",
    "name",
    "category",
    "quantity",
    "unit_price",
)
_OPTIONAL_COLUMNS = ("currency", "discount")
_KNOWN_COLUMNS = frozenset(_REQUIRED_COLUMNS + _OPTIONAL_COLUMNS)


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _csv_header(cells: Sequence[str]) -> dict[str, int]:
    """Column name -> index; raises _BadValue naming every problem with the header."""
    # Spreadsheet exports often start with a byte-order mark, which would hide the first name.
    names = [cell.removeprefix("\ufeff").strip().lower() for cell in cells]
    expected = (
        f"expected columns {', '.join(_REQUIRED_COLUMNS)} and optionally "
        f"{', '.join(_OPTIONAL_COLUMNS)}"
    )
    if not any(names):
        raise _BadValue(f"the header row is missing; {expected}")
    problems = []
    if unknown := [name for name in names if name not in _KNOWN_COLUMNS]:
        problems.append(f"unknown column(s) {_quoted(unknown)}")
    if missing := [name for name in _REQUIRED_COLUMNS if name not in names]:
        problems.append(f"missing required column(s) {_quoted(missing)}")
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"repeated column(s) {_quoted(repeated)}")
    if problems:
        raise _BadValue(f"{'; '.join(problems)} ({expected})")
    return {name: index for index, name in enumerate(names)}


def _occurred_at(text: str) -> datetime:
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        # A bare date carries no time of day; noon UTC keeps it on the same calendar day in
        # every time zone from UTC-11 to UTC+11.
        return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _BadValue(
            f"occurred_at must be an ISO 8601 date or date-time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class _Header:
    """The purchase-level fields, taken from a purchase's first row."""

    member: str
    occurred_at: datetime
    store: str | None
    channel: str
    currency: str


class _CsvRow:
    """One data row, with accessors that validate and name their column on failure."""

    def __init__(self, cells: Sequence[str], columns: dict[str, int]) -> None:
        self.cells = cells
        self.columns = columns

    def text(self, column: str) -> str:
        index = self.columns.get(column)
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index].strip()

    def required(self, column: str) -> str:
        value = self.text(column)
        if not value:
            raise _BadValue(f"{column} must not be empty")
        return value

    def check_shape(self) -> str:
        """The row's external_id, once the row is known to have the header's columns."""
        if len(self.cells) != len(self.columns):
            raise _BadValue(f"expected {len(self.columns)} columns, got {len(self.cells)}")
        return self.required("external_id")

    def header(self, default_currency: str) -> _Header:
        channel = self.required("channel").lower()
        if channel not in CHANNELS:
            raise _BadValue(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
        currency = self.text("currency") or default_currency  # checked again: it may be the cell
        if not _CURRENCY.fullmatch(currency):
            raise _BadValue(f"currency must be a 3-letter ISO 4217 code, got {currency!r}")
        return _Header(
            member=self.required("member"),
            occurred_at=_occurred_at(self.text("occurred_at")),
            store=self.text("store") or None,
            channel=channel,
            currency=currency.upper(),
        )

    def check_same_purchase(self, first: _Header, first_line_no: int) -> None:
        """A later row must agree with the first one on who bought and when."""
        # Comparing parsed values accepts "2025-03-01" and "2025-03-01T12:00:00Z" as the same.
        if self.required("member") != first.member:
            column = "member"
        elif _occurred_at(self.text("occurred_at")) != first.occurred_at:
            column = "occurred_at"
        else:
            return
        raise _BadValue(
            f"{column} differs from the first row of purchase {self.text('external_id')!r} "
            f"(line {first_line_no})"
        )

    def line(self) -> LineItem:
        quantity = _nonnegative_int("quantity", self.text("quantity"), positive=True)
        unit_price = _money("unit_price", self.text("unit_price"))
        discount = _money("discount", self.text("discount") or "0")
        if discount > quantity * unit_price:
            raise _BadValue(
                f"discount ({discount}) is more than quantity x unit_price "
                f"({quantity * unit_price})"
            )
        return LineItem(
            self.required("sku"),
            self.required("name"),
            self.required("category"),
            quantity,
            unit_price,
            discount,
        )


@dataclass
class _Draft:
    """A purchase being assembled from consecutive rows with one external_id."""

    external_id: str
    line_no: int
    header: _Header | None  # None once a row of the purchase has failed: it is dropped
    lines: list[LineItem] = field(default_factory=list)

    def add(self, row: _CsvRow) -> None:
        if self.header is None:
            # Already dropped, but still checked so that every bad row gets reported.
            row.required("member")
            _occurred_at(row.text("occurred_at"))
            row.line()
            return
        row.check_same_purchase(self.header, self.line_no)
        self.lines.append(row.line())

    def drop(self) -> None:
        self.header = None

    def result(self) -> ParsedPurchase | None:
        if self.header is None:
            return None
        h = self.header
        data = _purchase(
            member=h.member,
            external_id=self.external_id,
            occurred_at=h.occurred_at.isoformat(),
            store=h.store,
            channel=h.channel,
            currency=h.currency,
            lines=[line.to_api() for line in self.lines],
            total=sum(line.amount for line in self.lines),
        )
        return ParsedPurchase(line_no=self.line_no, data=data, member_external_id=h.member)


# (line number of the record's first line, its cells, the csv module's complaint if unreadable)
_Record = tuple[int, list[str], str | None]


def _records(reader: Iterator[list[str]], line_num: Callable[[], int]) -> Iterator[_Record]:
    """Non-blank records with the line they start on (a quoted field may span lines)."""
    last = line_num()
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield last + 1, [], f"the row is not valid CSV ({exc})"
        else:
            if any(cell.strip() for cell in cells):
                yield last + 1, cells, None
        last = line_num()


def _start_or_extend(
    draft: _Draft | None, row: _CsvRow, line_no: int, default_currency: str
) -> _Draft:
    """Add a row to its purchase (draft is None or has the row's external_id)."""
    external_id = row.check_shape()
    if draft is None:
        header = row.header(default_currency)
        return _Draft(external_id, line_no, header, [row.line()])
    draft.add(row)
    return draft


def _dropped(draft: _Draft | None, external_id: str, line_no: int) -> _Draft | None:
    """The draft after one of its rows failed: it swallows the rest of its purchase."""
    if not external_id:
        return draft  # a row without an id belongs to no purchase
    if draft is None:
        return _Draft(external_id, line_no, None)
    draft.drop()
    return draft


def parse_csv(lines: Iterable[str], *, default_currency: str = "RUB") -> Iterator[ParseResult]:
    """Parse Kopilka's purchase CSV: a header row, then one row per purchase line.

    Rows of one purchase must be consecutive; the purchase-level fields come from its first
    row, and later rows must agree on member and occurred_at. A header problem is reported on
    line 1 and ends parsing, since no row can be read without it. A bad row is reported on its
    own line and its whole purchase is dropped.
    """
    if not _CURRENCY.fullmatch(default_currency):
        raise ValueError(f"currency must be a 3-letter ISO 4217 code, got {default_currency!r}")
    reader = csv.reader(lines)
    try:
        columns = _csv_header(next(reader, []))
    except (_BadValue, csv.Error) as exc:
        yield _error(1, str(exc))
        return
    draft: _Draft | None = None
    for line_no, cells, problem in _records(reader, lambda: reader.line_num):
        row = _CsvRow(cells, columns)
        external_id = row.text("external_id")
        if draft is not None and external_id and external_id != draft.external_id:
            if (purchase := draft.result()) is not None:
                yield purchase
            draft = None
        try:
            if problem is not None:
                raise _BadValue(problem)
            draft = _start_or_extend(draft, row, line_no, default_currency)
        except _BadValue as exc:
            yield _error(line_no, str(exc))
            draft = _dropped(draft, external_id, line_no)
    if draft is not None and (purchase := draft.result()) is not None:
        yield purchase
