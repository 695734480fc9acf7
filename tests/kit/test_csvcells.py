"""A CSV cell that starts like a spreadsheet formula is shown as text, not run."""

import pytest

from kopilka.kit.csvcells import safe_cell


@pytest.mark.parametrize("text", ['=HYPERLINK("x")', "+1+1", "-2", "@SUM(A1)", "\tx"])
def test_formulas_become_text(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["Анна", "", "1 = 1", "a@b.example"])
def test_other_cells_are_left_alone(text: str) -> None:
    assert safe_cell(text) == text
