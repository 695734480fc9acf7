"""Purchase-file parsers: CDNOW logs and Kopilka CSV."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.imports.domain import (
    ParsedPurchase,
    RowError,
    detect_format,
    parse_cdnow,
    parse_csv,
)
from tests.conftest import require_data

CDNOW_DIR = Path("/work/shared/data/cdnow")


def _purchases(results: Iterator[ParsedPurchase | RowError]) -> list[ParsedPurchase]:
    items = list(results)
    errors = [item for item in items if isinstance(item, RowError)]
    assert not errors, errors
    return [item for item in items if isinstance(item, ParsedPurchase)]


def _errors(results: Iterator[ParsedPurchase | RowError]) -> list[RowError]:
    return [item for item in results if isinstance(item, RowError)]


def _only_line(purchase: ParsedPurchase) -> dict[str, object]:
    lines = purchase.data["lines"]
    assert isinstance(lines, list) and len(lines) == 1
    line = lines[0]
    assert isinstance(line, dict)
    return line


def _amount(line: dict[str, object]) -> int:
    quantity, price, discount = line["quantity"], line["unit_price"], line["discount"]
    assert isinstance(quantity, int) and isinstance(price, int) and isinstance(discount, int)
    return quantity * price - discount


# -- CDNOW --------------------------------------------------------------------------------------

MASTER = """\
 customer_id  date number_of_cds  dollar_value\r
 00001 19970101  1   11.77\r
 00002 19970112  1   12.00\r
 00002 19970112  5   77.00\r
 00003 19970102  2   20.76\r
"""

SAMPLE = """\
 00002 0001 19970112  1   12.00
 00002 0001 19970112  5   77.00
 00004 0002 19970101  2   29.33
"""


def test_cdnow_master_layout_with_header() -> None:
    parsed = _purchases(parse_cdnow(io.StringIO(MASTER)))
    assert [p.line_no for p in parsed] == [2, 3, 4, 5]
    first = parsed[0]
    assert first.member_external_id == "cdnow-00001"
    assert first.data == {
        "member": {"external_id": "cdnow-00001"},
        "external_id": "cdnow-00001-19970101-0",
        "occurred_at": "1997-01-01T12:00:00+00:00",
        "store": None,
        "channel": "online",
        "currency": "USD",
        "lines": [
            {
                "sku": "CD",
                "name": "CD",
                "category": "music",
                "quantity": 1,
                "unit_price": 1177,
                "discount": 0,
            }
        ],
        "total": 1177,
    }


def test_cdnow_numbers_same_day_lines_of_a_customer() -> None:
    parsed = _purchases(parse_cdnow(io.StringIO(MASTER)))
    assert [p.data["external_id"] for p in parsed[1:3]] == [
        "cdnow-00002-19970112-0",
        "cdnow-00002-19970112-1",
    ]


def test_cdnow_sample_layout_gives_the_same_ids_as_master() -> None:
    master = {p.data["external_id"]: p.data for p in _purchases(parse_cdnow(MASTER.splitlines()))}
    sample = _purchases(parse_cdnow(SAMPLE.splitlines()))
    assert [p.line_no for p in sample] == [1, 2, 3]
    for purchase in sample[:2]:
        assert purchase.data == master[purchase.data["external_id"]]
    assert sample[2].data["total"] == 2933


def test_cdnow_currency_is_configurable() -> None:
    (purchase,) = _purchases(parse_cdnow([" 00001 19970101 1 11.77"], currency="eur"))
    assert purchase.data["currency"] == "EUR"
    with pytest.raises(ValueError, match="currency"):
        next(parse_cdnow([], currency="dollars"))


def test_cdnow_amount_beyond_the_api_limit_is_a_row_error() -> None:
    (error,) = _errors(parse_cdnow([" 00001 19970101 1 100000000000.01"]))
    assert "dollar_value is too large" in error.message


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("11.77", 1177),
        ("0.10", 10),
        ("0.1", 10),
        ("12", 1200),
        ("0.29", 29),  # 0.29 * 100 is 28.999999999999996 in binary floating point
        ("1.005", 101),  # more digits than cents: half up
        ("1.004", 100),
        ("0.00", 0),
    ],
)
def test_cdnow_dollars_become_exact_cents(value: str, cents: int) -> None:
    (purchase,) = _purchases(parse_cdnow([f" 00001 19970101 1 {value}"]))
    assert purchase.data["total"] == cents
    assert _amount(_only_line(purchase)) == cents


def test_cdnow_zero_value_line_is_a_free_purchase() -> None:
    (purchase,) = _purchases(parse_cdnow([" 00455 19970102  1    0.00"]))
    line = _only_line(purchase)
    assert (line["quantity"], line["unit_price"], line["discount"]) == (1, 0, 0)
    assert purchase.data["total"] == 0


def test_cdnow_zero_cds_counts_as_one_unit() -> None:
    (purchase,) = _purchases(parse_cdnow([" 00001 19970101 0 5.00"]))
    line = _only_line(purchase)
    assert (line["quantity"], line["unit_price"], line["discount"]) == (1, 500, 0)


def test_cdnow_splits_the_value_over_the_cds_exactly() -> None:
    (purchase,) = _purchases(parse_cdnow([" 00001 19970101 3 0.10"]))
    line = _only_line(purchase)
    assert (line["quantity"], line["unit_price"], line["discount"]) == (3, 4, 2)


@given(n=st.integers(min_value=1, max_value=50), cents=st.integers(min_value=0, max_value=10**7))
def test_cdnow_line_amount_is_always_the_logged_value(n: int, cents: int) -> None:
    text = f" 01234 0042 19980630 {n} {cents // 100}.{cents % 100:02d}"
    (purchase,) = _purchases(parse_cdnow([text]))
    line = _only_line(purchase)
    assert line["quantity"] == n
    assert _amount(line) == cents == purchase.data["total"]
    unit_price, discount = line["unit_price"], line["discount"]
    assert isinstance(unit_price, int) and isinstance(discount, int)
    assert unit_price >= 0 and 0 <= discount < n


def test_cdnow_skips_blank_lines_and_only_a_leading_header() -> None:
    results = list(parse_cdnow(["", "customer date cds value", "", " 00001 19970101 1 1.00"]))
    assert [type(r) for r in results] == [ParsedPurchase]
    assert results[0].line_no == 4
    (error,) = _errors(parse_cdnow([" 00001 19970101 1 1.00", "customer date cds value"]))
    assert error.line_no == 2


@pytest.mark.parametrize(
    ("text", "column"),
    [
        (" 00001 19970101 -1 11.77", "number_of_cds"),
        (" 00001 19970101 x 11.77", "number_of_cds"),
        (" 00001 19970101 1.5 11.77", "number_of_cds"),
        (" 00001 19970101 1 -11.77", "dollar_value"),
        (" 00001 19970101 1 $11.77", "dollar_value"),
        (" 00001 19970101 1 NaN", "dollar_value"),
        (" 00001 19970101 1 1e3", "dollar_value"),
        (" 00001 19970230 1 11.77", "date"),
        (" 00001 1997-01-01 1 11.77", "date"),
        (" 0000A 19970101 1 11.77", "customer_id"),
        (" 00001 00X1 19970101 1 11.77", "sample_id"),
        (" 00001 19970101 1", "columns"),
        (" 00001 19970101 1 11.77 x y", "columns"),
    ],
)
def test_cdnow_bad_fields_are_reported_with_line_and_column(text: str, column: str) -> None:
    results = list(parse_cdnow([" 00001 19961231 1 1.00", text, " 00009 19970101 1 2.00"]))
    assert [type(r) for r in results] == [ParsedPurchase, RowError, ParsedPurchase]
    error = results[1]
    assert error.line_no == 2
    assert isinstance(error, RowError)
    assert error.message.startswith("line 2: ")
    assert column in error.message


def test_cdnow_customer_split_across_the_file_is_an_error() -> None:
    # Restarting the per-date count for 00001 would reuse "cdnow-00001-19970101-0".
    results = list(
        parse_cdnow([" 00001 19970101 1 1.00", " 00002 19970101 1 1.00", " 00001 19970101 1 1.00"])
    )
    assert [type(r) for r in results] == [ParsedPurchase, ParsedPurchase, RowError]
    assert "customer_id" in results[2].message  # type: ignore[union-attr]


def test_cdnow_streams() -> None:
    def endless() -> Iterator[str]:
        for n in itertools.count(1):
            yield f" {n:05d} 19970101 1 1.00\n"

    first = list(itertools.islice(parse_cdnow(endless()), 3))
    assert [r.line_no for r in first] == [1, 2, 3]


def test_cdnow_master_file() -> None:
    path = CDNOW_DIR / "CDNOW_master.txt"
    require_data(path)
    with path.open(encoding="ascii") as lines:
        results = list(parse_cdnow(lines))
    assert not _errors(iter(results))
    purchases = [r for r in results if isinstance(r, ParsedPurchase)]
    assert len(purchases) == 69_659
    assert len({p.member_external_id for p in purchases}) == 23_570
    assert len({p.data["external_id"] for p in purchases}) == 69_659

    with path.open(encoding="ascii") as raw:
        next(raw)  # header
        expected = sum(Decimal(line.split()[-1]) for line in raw if line.strip()) * 100
    total = 0
    for purchase in purchases:
        amount = purchase.data["total"]
        assert isinstance(amount, int)
        assert _amount(_only_line(purchase)) == amount
        total += amount
    assert total == expected


def test_cdnow_sample_file_matches_master() -> None:
    master_path, sample_path = CDNOW_DIR / "CDNOW_master.txt", CDNOW_DIR / "CDNOW_sample.txt"
    require_data(master_path)
    require_data(sample_path)
    with sample_path.open(encoding="ascii") as lines:
        sample = {p.data["external_id"]: p.data for p in _purchases(parse_cdnow(lines))}
    with master_path.open(encoding="ascii") as lines:
        master = {
            p.data["external_id"]: p.data
            for p in _purchases(parse_cdnow(lines))
            if p.data["external_id"] in sample
        }
    assert len(sample) == 6_919
    assert master == sample


# -- CSV ----------------------------------------------------------------------------------------

HEADER = (
    "external_id,member,occurred_at,store,channel,currency,"
    "sku,name,category,quantity,unit_price,discount"
)


def _csv(*rows: str, header: str = HEADER) -> list[ParsedPurchase | RowError]:
    return list(parse_csv(io.StringIO("\n".join((header, *rows)) + "\n", newline="")))


def test_csv_groups_consecutive_rows_into_purchases() -> None:
    results = _csv(
        "P1,M1,2025-03-01T10:15:00+00:00,store-01,pos,RUB,COF-1,Latte,coffee,2,250,50",
        "P1,M1,2025-03-01T10:15:00+00:00,store-01,pos,RUB,BAK-1,Croissant,bakery,1,95,",
        "P2,M2,2025-03-01T11:00:00+00:00,,online,USD,SNA-1,Chips,snacks,3,12.50,0.50",
    )
    first, second = results
    assert isinstance(first, ParsedPurchase) and isinstance(second, ParsedPurchase)
    assert (first.line_no, second.line_no) == (2, 4)
    assert first.member_external_id == "M1"
    assert first.data == {
        "member": {"external_id": "M1"},
        "external_id": "P1",
        "occurred_at": "2025-03-01T10:15:00+00:00",
        "store": "store-01",
        "channel": "pos",
        "currency": "RUB",
        "lines": [
            {
                "sku": "COF-1",
                "name": "Latte",
                "category": "coffee",
                "quantity": 2,
                "unit_price": 250,
                "discount": 50,
            },
            {
                "sku": "BAK-1",
                "name": "Croissant",
                "category": "bakery",
                "quantity": 1,
                "unit_price": 95,
                "discount": 0,
            },
        ],
        "total": 545,
    }
    assert second.data["store"] is None
    assert second.data["currency"] == "USD"
    assert second.data["total"] == 3 * 1250 - 50


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01", "2025-03-01T12:00:00+00:00"),
        ("2025-03-01T08:30:00", "2025-03-01T08:30:00+00:00"),
        ("2025-03-01 08:30", "2025-03-01T08:30:00+00:00"),
        ("2025-03-01T08:30:00Z", "2025-03-01T08:30:00+00:00"),
        ("2025-03-01T08:30:00+03:00", "2025-03-01T05:30:00+00:00"),
    ],
)
def test_csv_occurred_at_is_normalised_to_utc(text: str, expected: str) -> None:
    (purchase,) = _csv(f"P1,M1,{text},s,pos,RUB,A,Apple,produce,1,100,0")
    assert isinstance(purchase, ParsedPurchase)
    assert purchase.data["occurred_at"] == expected


@pytest.mark.parametrize(
    ("price", "minor"),
    [("1250", 1250), ("12.50", 1250), ("12.5", 1250), ("0.10", 10), ("0.29", 29), ("7.00", 700)],
)
def test_csv_prices_in_minor_or_major_units(price: str, minor: int) -> None:
    (purchase,) = _csv(f"P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,{price},0")
    assert isinstance(purchase, ParsedPurchase)
    assert purchase.data["total"] == minor


def test_csv_optional_columns_have_defaults() -> None:
    header = "sku,name,category,quantity,unit_price,external_id,member,occurred_at,store,channel"
    (purchase,) = list(
        parse_csv([header, "A,Apple,produce,2,100,P1,M1,2025-03-01,,app"], default_currency="KZT")
    )
    assert isinstance(purchase, ParsedPurchase)
    assert purchase.data["currency"] == "KZT"
    assert purchase.data["channel"] == "app"
    assert purchase.data["total"] == 200


def test_csv_header_tolerates_bom_case_and_spaces() -> None:
    header = "\ufeff" + ", ".join(name.upper() for name in HEADER.split(","))
    (purchase,) = _csv("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,0", header=header)
    assert isinstance(purchase, ParsedPurchase)


@pytest.mark.parametrize(
    ("header", "named"),
    [
        (HEADER.replace(",unit_price", ""), "'unit_price'"),
        (HEADER + ",colour", "'colour'"),
        (HEADER + ",sku", "'sku'"),
        ("", "header"),
    ],
)
def test_csv_bad_header_is_one_error_then_stop(header: str, named: str) -> None:
    results = _csv("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,0", header=header)
    assert len(results) == 1
    (error,) = results
    assert isinstance(error, RowError)
    assert error.line_no == 1
    assert error.message.startswith("line 1: ")
    assert named in error.message


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,x,100,0",
            "line 3: quantity must be a positive integer, got 'x'",
        ),
        ("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,0,100,0", "quantity"),
        ("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,12.505,0", "unit_price"),
        ("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,-1,0", "unit_price"),
        ("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,1e3,0", "unit_price"),
        ("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,101", "discount"),
        ("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,-1", "discount"),
        ("P1,M1,yesterday,s,pos,RUB,A,Apple,produce,1,100,0", "occurred_at"),
        ("P1,M1,2025-03-01,s,pos,RUB,,Apple,produce,1,100,0", "sku"),
        ("P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,100", "columns"),
        ("P1,M2,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,0", "member"),
        ("P1,M1,2025-03-02,s,pos,RUB,A,Apple,produce,1,100,0", "occurred_at"),
    ],
)
def test_csv_bad_row_drops_its_whole_purchase(row: str, message: str) -> None:
    results = _csv(
        "P1,M1,2025-03-01,s,pos,RUB,B,Bread,bakery,1,100,0",
        row,
        "P1,M1,2025-03-01,s,pos,RUB,C,Cheese,dairy,1,100,0",
        "P2,M1,2025-03-01,s,pos,RUB,B,Bread,bakery,1,100,0",
    )
    assert len(results) == 2, results
    error, survivor = results
    assert isinstance(error, RowError)
    assert error.line_no == 3
    assert error.message.startswith("line 3: ")
    assert message in error.message
    assert isinstance(survivor, ParsedPurchase)
    assert survivor.data["external_id"] == "P2"


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("P1,M1,2025-03-01,s,fax,RUB,A,Apple,produce,1,100,0", "channel"),
        ("P1,M1,2025-03-01,s,pos,roubles,A,Apple,produce,1,100,0", "currency"),
        ("P1,,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,0", "member"),
        ("P1,M1,2025-13-01,s,pos,RUB,A,Apple,produce,1,100,0", "occurred_at"),
    ],
)
def test_csv_bad_first_row_drops_its_whole_purchase(row: str, column: str) -> None:
    results = _csv(
        row,
        "P1,M1,2025-03-01,s,pos,RUB,B,Bread,bakery,1,100,0",
        "P2,M1,2025-03-01,s,pos,RUB,B,Bread,bakery,1,100,0",
    )
    assert [(type(r), r.line_no) for r in results] == [(RowError, 2), (ParsedPurchase, 4)]
    assert results[0].message.startswith(f"line 2: {column} ")  # type: ignore[union-attr]


def test_csv_purchase_fields_come_from_the_first_row() -> None:
    (purchase,) = _csv(
        "P1,M1,2025-03-01,store-01,app,EUR,A,Apple,produce,1,100,0",
        "P1,M1,2025-03-01,,,,B,Bread,bakery,1,100,0",
        "P1,M1,2025-03-01,store-02,pos,RUB,C,Cheese,dairy,1,100,0",
    )
    assert isinstance(purchase, ParsedPurchase)
    assert (purchase.data["store"], purchase.data["channel"], purchase.data["currency"]) == (
        "store-01",
        "app",
        "EUR",
    )
    assert purchase.data["total"] == 300


def test_csv_each_bad_row_is_reported_once() -> None:
    results = _csv(
        "P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,x,100,0",
        "P1,M1,2025-03-01,s,pos,RUB,B,Bread,bakery,1,100,0",
        "P1,M1,2025-03-01,s,pos,RUB,C,Cheese,dairy,1,abc,0",
    )
    assert [(type(r), r.line_no) for r in results] == [(RowError, 2), (RowError, 4)]


def test_csv_row_without_external_id_belongs_to_no_purchase() -> None:
    results = _csv(
        "P1,M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,0",
        ",M1,2025-03-01,s,pos,RUB,B,Bread,bakery,1,100,0",
        "P1,M1,2025-03-01,s,pos,RUB,C,Cheese,dairy,1,100,0",
    )
    error, purchase = results
    assert isinstance(error, RowError) and "external_id" in error.message
    assert isinstance(purchase, ParsedPurchase) and purchase.data["total"] == 200


def test_csv_line_numbers_follow_the_source_lines() -> None:
    results = _csv(
        "",
        'P1,M1,2025-03-01,s,pos,RUB,A,"Apple,',
        'green",produce,1,100,0',
        "P2,M1,2025-03-01,s,pos,RUB,A,Apple,produce,one,100,0",
    )
    purchase, error = results
    assert isinstance(purchase, ParsedPurchase) and purchase.line_no == 3
    assert _only_line(purchase)["name"] == "Apple,\ngreen"
    assert isinstance(error, RowError) and error.line_no == 5


def test_csv_streams() -> None:
    def endless() -> Iterator[str]:
        yield HEADER + "\n"
        for n in itertools.count(1):
            yield f"P{n},M1,2025-03-01,s,pos,RUB,A,Apple,produce,1,100,0\n"

    first = list(itertools.islice(parse_csv(endless()), 3))
    assert [r.line_no for r in first] == [2, 3, 4]


# -- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        (" customer_id  date number_of_cds  dollar_value\r\n", "cdnow"),
        (" 00001 19970101  1   11.77\n", "cdnow"),
        (" 00004 0001 19970101  2   29.33\n", "cdnow"),
        (HEADER + "\n", "csv"),
        ("\ufeff" + HEADER, "csv"),
    ],
)
def test_detect_format(first_line: str, expected: str) -> None:
    assert detect_format(first_line) == expected
