"""Pure parts: the RFM grid, quintiles, windows (no database)."""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from kopilka.crm.domain import RFM_GRID, RfmGroup, average_check, quintile, rfm_group
from kopilka.segments.domain import Purchases, parse_definition


def test_the_rfm_grid_names_every_pair_once() -> None:
    for r in range(1, 6):
        for f in range(1, 6):
            matches = [g for g, rs, fs in RFM_GRID if r in rs and f in fs]
            assert matches, (r, f)
            assert rfm_group(r, f) == matches[0]
    assert {rfm_group(r, f) for r in range(1, 6) for f in range(1, 6)} == set(RfmGroup)
    assert rfm_group(5, 5) == RfmGroup.CHAMPIONS and rfm_group(1, 1) == RfmGroup.LOST


@given(st.integers(1, 10_000), st.data())
def test_quintiles_are_one_to_five_and_monotonic(n: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(1, n))
    b = data.draw(st.integers(a, n))
    assert 1 <= quintile(a, n) <= quintile(b, n) <= 5
    assert quintile(n, n) == 5


def test_windows_and_average() -> None:
    node = parse_definition({"type": "purchases", "last_days": 1, "min": 1})
    assert isinstance(node, Purchases) and node.first_day(date(2026, 6, 1)) == date(2026, 6, 1)
    assert average_check(10, 3) == 3 and average_check(5, 0) == 0
