"""The per-customer summary the lifetime models read, and the CDNOW reader, on tiny logs
worked out by hand."""

import io
from datetime import date

import numpy as np
import pytest

from kopilka.analytics.lifetime.cdnow import read_cdnow
from kopilka.analytics.lifetime.errors import LifetimeDataError
from kopilka.analytics.lifetime.models import Summary, Transaction, fit, summarise
from kopilka.analytics.lifetime.summary import require_customers

CAL_END = date(2024, 1, 29)  # a Monday: 4 weeks after 1 January
HOLDOUT_END = date(2024, 2, 26)


def tx(customer: str, day: date, amount: float = 10.0) -> Transaction:
    return Transaction(customer=customer, day=day, amount=amount)


LOG = [
    # Anna: first on 1 Jan, twice on 8 Jan (one transaction of 30), once on 22 Jan,
    # once in the holdout, once after it.
    tx("anna", date(2024, 1, 1), 100.0),
    tx("anna", date(2024, 1, 8), 10.0),
    tx("anna", date(2024, 1, 8), 20.0),
    tx("anna", date(2024, 1, 22), 6.0),
    tx("anna", date(2024, 2, 5), 50.0),
    tx("anna", date(2024, 3, 1), 70.0),
    # Boris: one purchase on 15 Jan, none after.
    tx("boris", date(2024, 1, 15), 40.0),
    # Vera: first purchase in the holdout: not yet a customer at the end of calibration.
    tx("vera", date(2024, 2, 1), 5.0),
    # Gleb: first and only calibration purchase on the last day of calibration, then two
    # holdout days, one of them twice.
    tx("gleb", CAL_END, 1.0),
    tx("gleb", date(2024, 2, 10), 1.0),
    tx("gleb", date(2024, 2, 10), 1.0),
    tx("gleb", HOLDOUT_END, 1.0),
]


def row(summary: Summary, customer: str) -> tuple[float, float, float, float, float]:
    i = summary.customers.index(customer)
    holdout = summary.holdout_frequency
    assert holdout is not None
    return (
        float(summary.frequency[i]),
        float(summary.recency[i]),
        float(summary.age[i]),
        float(summary.monetary[i]),
        float(holdout[i]),
    )


def test_same_day_purchases_are_one_transaction_and_time_is_in_weeks() -> None:
    summary = summarise(LOG, CAL_END, holdout_end=HOLDOUT_END)
    assert summary.customers == ["anna", "boris", "gleb"]  # Vera came after calibration
    # Anna: repeats on 8 and 22 Jan (x = 2), the last 3 weeks after the first, observed 4
    # weeks; mean repeat spend (30 + 6) / 2, the first purchase left out; one holdout day.
    assert row(summary, "anna") == (2.0, 3.0, 4.0, 18.0, 1.0)
    assert row(summary, "boris") == (0.0, 0.0, 2.0, 0.0, 0.0)
    # Gleb: born on the last calibration day; two holdout days (10 Feb counted once).
    assert row(summary, "gleb") == (0.0, 0.0, 0.0, 0.0, 2.0)
    assert summary.holdout_length == 4.0
    assert summary.first_purchase == [date(2024, 1, 1), date(2024, 1, 15), CAL_END]


def test_unit_days_changes_only_the_time_scale() -> None:
    days = summarise(LOG, CAL_END, unit_days=1, holdout_end=HOLDOUT_END)
    weeks = summarise(LOG, CAL_END, holdout_end=HOLDOUT_END)
    assert np.array_equal(days.frequency, weeks.frequency)
    assert np.allclose(days.recency, weeks.recency * 7)
    assert np.allclose(days.age, weeks.age * 7)
    assert days.holdout_length == 28.0


def test_without_a_holdout_later_purchases_are_ignored() -> None:
    summary = summarise(LOG, CAL_END)
    assert summary.holdout_frequency is None and summary.holdout_length is None
    assert row_without_holdout(summary, "anna") == (2.0, 3.0, 4.0)


def row_without_holdout(summary: Summary, customer: str) -> tuple[float, float, float]:
    i = summary.customers.index(customer)
    return float(summary.frequency[i]), float(summary.recency[i]), float(summary.age[i])


def test_identical_rows_are_compressed_with_weights() -> None:
    log = [tx(f"c{i}", date(2024, 1, 1)) for i in range(5)] + [
        tx("r1", date(2024, 1, 1)),
        tx("r1", date(2024, 1, 8)),
        tx("r2", date(2024, 1, 1)),
        tx("r2", date(2024, 1, 8)),
    ]
    summary = summarise(log, CAL_END)
    rows = summary.compressed()
    assert sorted(rows.weights.tolist()) == [2.0, 5.0]
    # Each customer maps back to its row.
    assert np.array_equal(rows.frequency[rows.inverse], summary.frequency)
    assert np.array_equal(rows.age[rows.inverse], summary.age)


def test_bad_arguments_are_refused_with_the_field() -> None:
    with pytest.raises(LifetimeDataError, match="holdout_end") as caught:
        summarise(LOG, CAL_END, holdout_end=CAL_END)
    assert caught.value.field == "holdout_end"
    with pytest.raises(LifetimeDataError, match="unit_days"):
        summarise(LOG, CAL_END, unit_days=0)


def test_degenerate_cohorts_give_a_clear_error() -> None:
    empty = summarise([], CAL_END)
    with pytest.raises(LifetimeDataError, match="no customer made a first purchase"):
        require_customers(empty)
    nobody_repeats = summarise([tx("a", date(2024, 1, 1)), tx("b", date(2024, 1, 2))], CAL_END)
    for model in ("bgnbd", "pareto", "gammagamma"):
        with pytest.raises(LifetimeDataError, match="none of the 2 customers made a repeat"):
            fit(model, nobody_repeats)


def test_spend_model_needs_positive_amounts() -> None:
    log = [tx("a", date(2024, 1, 1)), tx("a", date(2024, 1, 2), 0.0)]
    with pytest.raises(LifetimeDataError, match="positive mean spend") as caught:
        fit("gammagamma", summarise(log, CAL_END))
    assert caught.value.field == "amount"


# -- CDNOW reader ---------------------------------------------------------------------------

MASTER = """\
 customer_id  date number_of_cds  dollar_value
 00001 19970101  1   11.77
 00002 19970112  1   12.00

 00002 19970112  5   77.00
"""
SAMPLE = " 00004 0001 19970101  2   29.33\r\n 00004 0001 19970118  2   29.73\r\n"


def test_reads_both_layouts_with_the_master_id() -> None:
    master = read_cdnow(io.StringIO(MASTER))
    assert master == [
        Transaction("00001", date(1997, 1, 1), 11.77),
        Transaction("00002", date(1997, 1, 12), 12.0),
        Transaction("00002", date(1997, 1, 12), 77.0),
    ]
    sample = read_cdnow(io.StringIO(SAMPLE))
    assert [(t.customer, t.day, t.amount) for t in sample] == [
        ("00004", date(1997, 1, 1), 29.33),
        ("00004", date(1997, 1, 18), 29.73),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (" 00001 19970101 1\n", "line 1: expected 4 or 5 whitespace-separated columns, got 3"),
        (" 00001 19970101 1 2.0\n x1 19970101 1 2.0\n", "line 2: customer_id must be a number"),
        (" 00001 19971301 1 2.0\n", "line 1: date must be a calendar date YYYYMMDD"),
        (" 00001 19970101 one 2.0\n", "line 1: number_of_cds must be a whole number"),
        (" 00001 19970101 1 -2.0\n", "line 1: dollar_value must be a non-negative amount"),
        (" 00001 19970101 1 nan\n", "line 1: dollar_value must be a non-negative amount"),
        (" 00001 19970101 1 £2\n", "line 1: dollar_value must be a number"),
    ],
)
def test_a_bad_line_is_named_by_number(text: str, message: str) -> None:
    with pytest.raises(LifetimeDataError) as caught:
        read_cdnow(io.StringIO(text))
    assert caught.value.detail.startswith(message)
