"""A purchase log as the lifetime models take it, in plain Python: reading a log (a file, the
database) needs neither numpy nor scipy, which only a fit loads."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Transaction:
    """One purchase of a purchase log: who, on which day, for how much. ``amount`` is in
    whatever money unit the log uses (dollars in CDNOW, minor units from the database); the
    models only compare amounts with each other."""

    customer: str
    day: date
    amount: float


# A customer's purchase days, several purchases of one day merged: day → that day's total.
Days = dict[date, float]


def merge_same_day(transactions: Iterable[Transaction]) -> dict[str, Days]:
    """Each customer's purchase days in order of first appearance. The models count
    transactions in continuous time but the log knows only the day, so the literature (and
    this) counts several purchases of one customer on one day as one transaction whose
    amount is their sum."""
    customers: dict[str, Days] = {}
    for transaction in transactions:
        days = customers.setdefault(transaction.customer, {})
        days[transaction.day] = days.get(transaction.day, 0.0) + transaction.amount
    return customers
