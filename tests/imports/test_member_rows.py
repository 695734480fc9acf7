"""The member CSV layout, without a database."""

from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.imports.member_rows import HeaderError, MemberCsv, MemberRow, MemberRowError, column_of
from kopilka.kit.clock import zone_named
from kopilka.programs.schemas import AttributeSpec

MOSCOW = zone_named("Europe/Moscow")
assert MOSCOW is not None
LAYOUT = MemberCsv(
    zone=MOSCOW,
    attributes={
        "size": AttributeSpec(type="integer"),
        "ratio": AttributeSpec(type="number"),
        "vip": AttributeSpec(type="boolean"),
        "since": AttributeSpec(type="date"),
    },
)


def parse(*lines: str) -> list[MemberRow | MemberRowError]:
    # Physical lines, as a file gives them (a quoted cell may span two).
    return list(LAYOUT.rows(("\n".join(lines) + "\n").splitlines(keepends=True)))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("name,city", "needs at least one identifier column"),
        ("external_id,shoe", "unknown column 'shoe'"),
        ("external_id,attr.colour", "declares no attribute 'colour'"),
        ("external_id,name,name", "appears twice"),
        ("external_id,points_expire_on", "needs a points column"),
        ("external_id,consent.email.marketing.at", "needs a consent.email.marketing column"),
    ],
)
def test_a_header_it_cannot_read_is_refused_whole(header: str, reason: str) -> None:
    with pytest.raises(HeaderError, match=reason):
        LAYOUT.rows([header + "\n"])


def test_cells_become_a_typed_record() -> None:
    [parsed] = parse(
        "\ufeffexternal_id,registered_at,tags,attr.size,attr.ratio,attr.vip,attr.since,"
        "consent.push.marketing,consent.push.marketing.at,points,balance.cashback,tier,tier_since",
        "A-1,2020-01-15, a ; b ;,42,1.5,TRUE,2020-02-02,granted,2020-01-15T10:00:00+03:00,"
        "500@2031-03-31;100,70@2031-12-31T23:00:00+03:00,gold,2024-06-01",
    )
    assert isinstance(parsed, MemberRow) and parsed.line_no == 2
    assert parsed.data == {
        "external_id": "A-1",
        "registered_at": "2020-01-15T00:00:00+03:00",
        "tags": ["a", "b"],
        "attributes": {"size": 42, "ratio": 1.5, "vip": True, "since": "2020-02-02"},
        "consents": [
            {
                "channel": "push",
                "purpose": "marketing",
                "granted": True,
                "at": "2020-01-15T10:00:00+03:00",
            }
        ],
        "points": [
            {"amount": 500, "expires_on": "2031-03-31"},
            {"amount": 100},
            {"amount": 70, "currency": "cashback", "expires_at": "2031-12-31T23:00:00+03:00"},
        ],
        "tier": {"id": "gold", "since": "2024-06-01T00:00:00+03:00"},
    }


def test_points_expire_on_goes_with_one_amount() -> None:
    ok, bad = parse(
        "external_id,points,points_expire_on", "A,300,2031-01-31", "B,1@2031-01-01,2031-01-31"
    )
    assert isinstance(ok, MemberRow)
    assert ok.data["points"] == [{"amount": 300, "expires_on": "2031-01-31"}]
    assert isinstance(bad, MemberRowError) and (bad.line_no, bad.field) == (3, "points_expire_on")


def test_bad_cells_name_their_line_and_column() -> None:
    rows = parse(
        "external_id,attr.size,attr.vip,consent.sms.service,consent.sms.service.at,points",
        "A,x,,,,",
        "B,,maybe,,,",
        "C,,,granted,,",
        "D,,,,,0",
        '"E\nstill E",,,,,',
        "F,,,,,1@tomorrow",
        "G,1",
    )
    assert [(r.line_no, r.field) for r in rows if isinstance(r, MemberRowError)] == [
        (2, "attr.size"),
        (3, "attr.vip"),
        (4, "consent.sms.service.at"),
        (5, "points"),
        (8, "points"),
        (9, "row"),
    ]
    # A quoted cell over two lines is one row, numbered from its first line.
    assert [r.line_no for r in rows if isinstance(r, MemberRow)] == [6]


def test_validation_errors_map_back_to_columns() -> None:
    data = {
        "consents": [{"channel": "sms", "purpose": "service"}],
        "points": [{"amount": 1}, {"amount": 2, "currency": "cashback"}],
    }
    assert column_of(("consents", 0, "at"), data) == "consent.sms.service.at"
    assert column_of(("consents", 0, "text_version"), data) == "consent.sms.service.version"
    assert column_of(("points", 1, "expires_at"), data) == "balance.cashback"
    assert column_of(("points", 0, "amount"), data) == "points"
    assert column_of(("attributes", "size"), data) == "attr.size"
    assert column_of(("tier", "since"), data) == "tier_since"
    assert column_of(("phone",), data) == "phone"


@given(
    st.lists(
        st.tuples(st.integers(1, 10**12), st.one_of(st.none(), st.dates().map(str))),
        min_size=1,
        max_size=5,
    )
)
def test_any_list_of_lots_reads_back(lots: list[tuple[int, str | None]]) -> None:
    written = ";".join(f"{amount}@{day}" if day else str(amount) for amount, day in lots)
    [parsed] = parse("external_id,points", f"A,{written}")
    assert isinstance(parsed, MemberRow)
    expected = [{"amount": amount, **({"expires_on": day} if day else {})} for amount, day in lots]
    assert parsed.data["points"] == expected
    assert UTC  # the layout's zone is not UTC: dates stay dates, instants are computed later
