"""``kopilka program`` versions as a user runs them: a real process on a real SQLite file."""

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import kopilka

DOUBLE = "earning: [{id: base, type: per_amount, points: 2, per: 100}]\n"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    kopilka(tmp_path, "db", "upgrade")
    kopilka(tmp_path, "program", "create", "--slug", "shop", "--name", "Shop")
    return tmp_path


def test_validate_needs_no_database(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(DOUBLE)
    (tmp_path / "bad.json").write_text(
        json.dumps({"earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 0}]})
    )
    # No ``db upgrade``: there is no database file at all.
    assert kopilka(tmp_path, "program", "validate", "good.yaml").stdout.strip() == "valid"
    bad = kopilka(tmp_path, "program", "validate", "bad.json", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0  # one readable line
    assert "earning.0.per" in bad.stderr and "greater than or equal to 1" in bad.stderr
    missing = kopilka(tmp_path, "program", "validate", "nowhere.yaml", check=False)
    assert missing.returncode == 1 and "cannot read nowhere.yaml" in missing.stderr
    assert not (tmp_path / "k.db").exists()


def test_publish_versions_show_and_rollback(shop: Path) -> None:
    (shop / "double.yaml").write_text(DOUBLE)
    published = kopilka(shop, "program", "publish", "double.yaml", "--note", "double points")
    assert published.stdout.strip() == "published version 2"
    # The very next command earns by version 2: 2 × 150.00 ₽ at 2 points per rouble.
    (shop / "p.csv").write_text(
        "external_id,member,occurred_at,store,channel,currency,sku,name,category,quantity,"
        "unit_price,discount\n"
        "p1,c1,2026-01-05,s1,pos,RUB,A,Apple,fruit,2,15000,0\n"
    )
    assert "earned 600 points" in kopilka(shop, "import", "purchases", "p.csv").stdout

    shown = json.loads(kopilka(shop, "program", "show", "--program", "shop").stdout)
    assert shown["version"] == 2 and shown["in_force"] is True
    assert shown["settings"]["earning"][0]["points"] == 2
    first = json.loads(kopilka(shop, "program", "show", "--version", "1").stdout)
    assert first["version"] == 1 and first["in_force"] is False
    assert first["settings"]["earning"][0]["points"] == 1

    rolled = kopilka(shop, "program", "rollback", "1")
    assert rolled.stdout.strip() == "published version 3 (rollback to v1)"
    listed = kopilka(shop, "program", "versions").stdout
    assert "3 (in force)" in listed and "rollback to v1" in listed and "double points" in listed

    unknown = kopilka(shop, "program", "rollback", "9", check=False)
    assert unknown.returncode == 1 and "no version 9" in unknown.stderr
    assert unknown.stderr.strip().count("\n") == 0
    (shop / "bad.yaml").write_text("earning: [{id: base, type: per_amount, per: 0}]\n")
    refused = kopilka(shop, "program", "publish", "bad.yaml", check=False)
    assert refused.returncode == 1 and "earning.0.per" in refused.stderr
