"""Cells of CSV files people open in spreadsheets."""

# A cell a spreadsheet would read as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """``text`` as a cell no spreadsheet runs: one that starts like a formula gets a
    leading apostrophe (shown as text, not run)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
