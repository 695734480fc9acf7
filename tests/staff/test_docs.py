"""The permissions table of docs/crm.md is what the code grants."""

import re
from pathlib import Path

from kopilka.access.domain import ROLE_PERMISSIONS, SCOPE_PERMISSIONS, Permission, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "crm.md"


def test_the_documented_table_is_the_code_s() -> None:
    text = DOC.read_text()
    lines = text[text.index("| permission |") :].split("\n\n", 1)[0].splitlines()
    header = lines[0]
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    rows = {
        m.group(1): [c.strip() == "✓" for c in m.group(2).strip("|").split("|")]
        for line in lines
        if (m := re.match(r"^\| `([a-z_.]+)` (\|.*)$", line))
    }
    assert set(rows) == {p.value for p in Permission}
    for index, column in enumerate(columns):
        granted = (
            SCOPE_PERMISSIONS[column.removeprefix("key: ")]
            if column.startswith("key: ")
            else ROLE_PERMISSIONS[Role(column)]
        )
        assert {p for p, marks in rows.items() if marks[index]} == {p.value for p in granted}
