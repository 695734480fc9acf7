"""``kopilka coupons``: campaigns from a file, codes to a file, codes exported as CSV."""

import csv
from pathlib import Path

from tests.cli.test_cli import workdir
from tests.fixtures.cli import kopilka

__all__ = ["workdir"]

CAMPAIGNS = """\
- key: spring
  name: Spring sale
  discount: {kind: percent, value: 10}
  code_pattern: "SPR-####-####"
- key: cake
  name: A free cake
  discount: {kind: free_product, free_sku: CAKE}
  per_member_limit: 1
"""


def test_campaigns_load_from_a_file_and_load_again_to_change(workdir: Path) -> None:
    (workdir / "campaigns.yaml").write_text(CAMPAIGNS)
    first = kopilka(workdir, "coupons", "load", "campaigns.yaml")
    assert "2 campaigns created, 0 updated" in first.stdout
    (workdir / "campaigns.yaml").write_text(CAMPAIGNS.replace("Spring sale", "Spring, again"))
    second = kopilka(workdir, "coupons", "load", "campaigns.yaml")
    assert "0 campaigns created, 2 updated" in second.stdout
    listed = kopilka(workdir, "coupons", "list").stdout
    assert "Spring, again" in listed and "free_product CAKE" in listed


def test_a_bad_campaign_file_is_one_line_and_changes_nothing(workdir: Path) -> None:
    (workdir / "bad.yaml").write_text(CAMPAIGNS.replace("value: 10", "value: 300"))
    result = kopilka(workdir, "coupons", "load", "bad.yaml", check=False)
    assert result.returncode == 1
    assert "campaign 1: discount" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "spring" not in kopilka(workdir, "coupons", "list").stdout


def test_codes_are_generated_to_a_file_and_exported(workdir: Path) -> None:
    (workdir / "campaigns.yaml").write_text(CAMPAIGNS)
    kopilka(workdir, "coupons", "load", "campaigns.yaml")
    made = kopilka(workdir, "coupons", "generate", "spring", "--count", "2500", "--out", "new.txt")
    assert "2500 codes created for spring" in made.stdout
    codes = (workdir / "new.txt").read_text().split()
    assert len(set(codes)) == 2500 and all(c.startswith("SPR-") for c in codes)
    kopilka(workdir, "coupons", "export", "spring", "--out", "all.csv")
    with (workdir / "all.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["code"] for r in rows) == sorted(codes)
    assert {r["uses"] for r in rows} == {"0"} and {r["campaign"] for r in rows} == {"spring"}
    unknown = kopilka(workdir, "coupons", "generate", "nope", "--count", "1", check=False)
    assert unknown.returncode == 1 and "no coupon campaign 'nope'" in unknown.stderr
