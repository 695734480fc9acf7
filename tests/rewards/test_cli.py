"""``kopilka rewards`` as a user runs it: a real process on a real SQLite file."""

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import kopilka

SETTINGS = """\
money_currency: RUB
earning: [{id: base, type: per_amount, points: 1, per: 100}]
tiers:
  levels:
    - {id: base, name: Base}
    - {id: gold, name: Gold, qualify: {spend: 1000000}}
"""

CATALOG_YAML = """\
rewards:
  - key: mug
    name: Logo mug
    kind: physical
    category: home
    price: 500
    stock: 20
    per_member_limit: 2

  - key: lounge
    name: Gold lounge evening
    kind: event
    price: 1500
    min_tier: gold
    tier_prices: {gold: 1200}
    available_from: 2026-12-01T18:00:00+03:00
    available_until: 2026-12-24T00:00:00+03:00

  - key: early-access
    name: Early access to the winter sale
    kind: digital
    price: 100
    code_pattern: EARLY-######
"""

CATALOG_CSV = """\
key,name,kind,category,price,tier_prices,stock,min_tier,per_member_limit,code_source
mug,Logo mug (blue),physical,home,,,,,,
cinema,Cinema ticket,digital,fun,800,gold:700,,,1,pool
donate,Donate 100 points,charity,,100,,,,,
"""


@pytest.fixture
def shopdir(tmp_path: Path) -> Path:
    kopilka(tmp_path, "db", "upgrade")
    (tmp_path / "shop.yaml").write_text(SETTINGS)
    kopilka(
        tmp_path, "program", "create", "--slug", "shop", "--name", "Shop", "--settings", "shop.yaml"
    )
    return tmp_path


def listed(workdir: Path) -> dict[str, dict[str, object]]:
    items = json.loads(kopilka(workdir, "rewards", "list", "--json").stdout)
    return {item["key"]: item for item in items}


def test_load_a_yaml_catalog_then_update_it_from_csv(shopdir: Path) -> None:
    (shopdir / "catalog.yaml").write_text(CATALOG_YAML)
    loaded = kopilka(shopdir, "rewards", "load", "catalog.yaml")
    assert "loaded 3 rewards: 3 created, 0 updated" in loaded.stdout
    rewards = listed(shopdir)
    assert rewards["lounge"]["tier_prices"] == {"gold": 1200}
    assert rewards["lounge"]["available_from"] == "2026-12-01T15:00:00Z"
    assert rewards["early-access"]["code_source"] == "generated"
    assert rewards["mug"]["stock"] == 20

    (shopdir / "catalog.csv").write_text(CATALOG_CSV)
    updated = kopilka(shopdir, "rewards", "load", "catalog.csv")
    assert "loaded 3 rewards: 2 created, 1 updated" in updated.stdout
    rewards = listed(shopdir)
    # Empty cells leave an existing reward's fields as they were.
    assert (rewards["mug"]["name"], rewards["mug"]["price"], rewards["mug"]["stock"]) == (
        "Logo mug (blue)",
        500,
        20,
    )
    assert rewards["cinema"]["tier_prices"] == {"gold": 700}
    assert rewards["cinema"]["codes_available"] == 0
    table = kopilka(shopdir, "rewards", "list").stdout
    assert "Logo mug (blue)" in table and "5 rewards" in table
    assert "unlimited" in table and "(0 codes)" in table


def test_bad_rows_and_bad_files_are_reported_and_nothing_is_loaded(shopdir: Path) -> None:
    (shopdir / "bad.csv").write_text(
        "key,name,kind,price,tier_prices,min_tier\n"
        "ok,Fine,physical,10,,\n"
        "broken,Broken,physical,ten,,\n"
        "tiers,Tiers,physical,10,gold=5,\n"
        "exclusive,Exclusive,physical,10,,platinum\n"
    )
    result = kopilka(shopdir, "rewards", "load", "bad.csv", check=False)
    assert result.returncode == 1
    assert "error: 3 bad rows in bad.csv; nothing loaded" in result.stderr
    assert "line 3: price:" in result.stderr
    assert "line 4: tier_prices: write tier:price pairs" in result.stderr
    assert "line 5: min_tier 'platinum' is not a tier of the ladder" in result.stderr
    assert listed(shopdir) == {}

    (shopdir / "bad.yaml").write_text(
        "- {key: a, name: A, kind: physical, price: 1}\n"
        "- just a string\n"
        "- key: b\n"
        "  name: B\n"
        "  kind: gift_certificate\n"
        "  price: 1\n"
    )
    result = kopilka(shopdir, "rewards", "load", "bad.yaml", check=False)
    assert result.returncode == 1
    assert "line 2: a reward is a mapping" in result.stderr
    assert "line 3: a gift_certificate reward needs gift_amount" in result.stderr
    assert listed(shopdir) == {}

    # A file that is not a catalog at all: one readable line.
    (shopdir / "x.yaml").write_text("rewards: {mug: 1}\n")
    result = kopilka(shopdir, "rewards", "load", "x.yaml", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "expected a list of rewards" in result.stderr
    (shopdir / "x.csv").write_text("key,colour\nmug,blue\n")
    result = kopilka(shopdir, "rewards", "load", "x.csv", check=False)
    assert result.returncode == 1 and "unknown columns ['colour']" in result.stderr


def test_csv_lines_are_the_files_lines_past_blank_lines_and_a_byte_order_mark(
    shopdir: Path,
) -> None:
    (shopdir / "blank.csv").write_bytes(
        "\ufeffkey,name,kind,price\nok,Fine,physical,1\n\nbad,Bad,physical,x\n".encode()
    )
    result = kopilka(shopdir, "rewards", "load", "blank.csv", check=False)
    assert result.returncode == 1
    assert "line 4: price:" in result.stderr and "line 3" not in result.stderr
