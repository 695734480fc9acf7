"""The CDNOW purchase log (either published layout) as :class:`Transaction` rows.

* master: ``customer_id date number_of_cds dollar_value`` (a header line may come first);
* 1/10 sample: ``customer_id sample_id date number_of_cds dollar_value``.

Columns are separated by whitespace, dates are ``YYYYMMDD``. The customer is the master id
in both layouts, so a sample customer is the same customer in the master file.
"""

from collections.abc import Iterable
from datetime import date

from kopilka.analytics.lifetime.errors import LifetimeDataError
from kopilka.analytics.lifetime.transactions import Transaction


def read_cdnow(lines: Iterable[str]) -> list[Transaction]:
    """Parse the lines of a CDNOW file (an open text file works). Blank lines are skipped;
    a first line whose first column is not a number is taken for a header. A line that does
    not parse raises :class:`LifetimeDataError` naming its 1-based number and the column."""
    transactions: list[Transaction] = []
    dates: dict[str, date] = {}  # a log has few distinct dates and many lines
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or (number == 1 and not _digits(fields[0])):
            continue
        try:
            transactions.append(_transaction(fields, dates))
        except ValueError as exc:
            raise LifetimeDataError(f"line {number}: {exc}") from exc
    return transactions


def _transaction(fields: list[str], dates: dict[str, date]) -> Transaction:
    if len(fields) not in (4, 5):
        raise ValueError(f"expected 4 or 5 whitespace-separated columns, got {len(fields)}")
    customer, *_, date_text, cds, dollars = fields
    if not _digits(customer):
        raise ValueError(f"customer_id must be a number, got {customer!r}")
    day = dates.get(date_text)
    if day is None:
        day = dates[date_text] = _day(date_text)
    if not _digits(cds):
        raise ValueError(f"number_of_cds must be a whole number, got {cds!r}")
    try:
        if not dollars.isascii():
            raise ValueError
        amount = float(dollars)
    except ValueError:
        raise ValueError(f"dollar_value must be a number, got {dollars!r}") from None
    if not 0 <= amount < float("inf"):
        raise ValueError(f"dollar_value must be a non-negative amount, got {dollars!r}")
    return Transaction(customer=customer, day=day, amount=amount)


def _day(text: str) -> date:
    if len(text) == 8 and _digits(text):
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    raise ValueError(f"date must be a calendar date YYYYMMDD, got {text!r}")


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
