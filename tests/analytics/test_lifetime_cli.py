"""``kopilka analytics clv`` and ``kopilka analytics validate`` on a purchase-log file."""

import json
from pathlib import Path

import pytest

from tests.conftest import require_data
from tests.fixtures.cli import kopilka

SAMPLE = Path("/work/shared/data/cdnow/CDNOW_sample.txt")


@pytest.fixture
def sample() -> str:
    require_data(SAMPLE)
    return str(SAMPLE)


def test_clv_prints_the_fit_as_json(tmp_path: Path, sample: str) -> None:
    result = kopilka(
        tmp_path,
        *("analytics", "clv", "--from-file", sample, "--format", "cdnow"),
        *("--calibration-end", "1997-09-30", "--model", "bgnbd", "--json"),
    )
    body = json.loads(result.stdout)
    assert body["model"] == "bgnbd" and body["customers"] == 2357 and body["converged"]
    assert round(body["params"]["alpha"], 3) == 4.414
    assert round(body["log_likelihood"], 1) == -9582.4
    assert body["calibration_end"] == "1997-09-30"


def test_clv_prints_a_table(tmp_path: Path, sample: str) -> None:
    result = kopilka(
        tmp_path,
        *("analytics", "clv", "--from-file", sample),
        *("--calibration-end", "1997-09-30", "--model", "gammagamma"),
    )
    assert "Gamma-Gamma" in result.stdout and "15.44" in result.stdout
    assert "946" in result.stdout  # customers with a repeat purchase


def test_validate_prints_the_report_and_writes_the_plot(tmp_path: Path, sample: str) -> None:
    plot = tmp_path / "tracking.svg"
    result = kopilka(
        tmp_path,
        *("analytics", "validate", "--from-file", sample, "--calibration-end", "1997-09-30"),
        *("--holdout-end", "1998-06-30", "--svg", str(plot)),
    )
    assert "Pareto/NBD" in result.stdout and "7+" in result.stdout
    assert "holdout (tracking)" in result.stdout and "1882" in result.stdout
    svg = plot.read_text()
    assert svg.startswith("<svg") and "end of calibration" in svg and "style=" not in svg
    assert "<script" not in svg


def test_validate_as_json(tmp_path: Path, sample: str) -> None:
    result = kopilka(
        tmp_path,
        *("analytics", "validate", "--from-file", sample, "--calibration-end", "1997-09-30"),
        *("--holdout-end", "1998-06-30", "--model", "bgnbd", "--json"),
    )
    body = json.loads(result.stdout)
    assert list(body["fits"]) == ["bgnbd"]
    assert body["totals"]["holdout"]["actual"] == 1882
    assert len(body["tracking"]["actual"]) == 78
    assert body["groups"][-1]["frequency"] == "7+"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--calibration-end", "1997-13-01"), "--calibration-end: '1997-13-01' is not a date"),
        (("--format", "csv"), "--format: unknown format 'csv'"),
        (("--model", "nbd"), "--model: unknown model 'nbd'"),
        (("--unit-days", "0"), "--unit-days: must be at least 1"),
        (("--calibration-end", "1996-01-01"), "no customer made a first purchase on or before"),
    ],
)
def test_clv_bad_input_is_one_line_and_exit_1(
    tmp_path: Path, sample: str, arguments: tuple[str, ...], message: str
) -> None:
    result = kopilka(tmp_path, "analytics", "clv", "--from-file", sample, *arguments, check=False)
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_file_and_bad_line(tmp_path: Path) -> None:
    missing = kopilka(
        tmp_path, "analytics", "clv", "--from-file", str(tmp_path / "none.txt"), check=False
    )
    assert missing.returncode == 1 and "--from-file: cannot read" in missing.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text(" 00001 19970101 1 11.77\n 00001 1997010 1 12.00\n")
    result = kopilka(tmp_path, "analytics", "clv", "--from-file", str(bad), check=False)
    assert result.returncode == 1
    assert "bad.txt: line 2: date must be a calendar date YYYYMMDD" in result.stderr


def test_validate_refuses_a_holdout_before_calibration(tmp_path: Path, sample: str) -> None:
    result = kopilka(
        tmp_path,
        *("analytics", "validate", "--from-file", sample, "--calibration-end", "1997-09-30"),
        *("--holdout-end", "1997-09-30", "--model", "gammagamma"),
        check=False,
    )
    assert result.returncode == 1 and "--model: unknown model 'gammagamma'" in result.stderr
    result = kopilka(
        tmp_path,
        *("analytics", "validate", "--from-file", sample, "--calibration-end", "1997-09-30"),
        *("--holdout-end", "1997-09-30"),
        check=False,
    )
    assert result.returncode == 1 and "--holdout-end: 1997-09-30 must come after" in result.stderr


def test_database_purchases_give_the_same_fit_as_the_file(tmp_path: Path, sample: str) -> None:
    # The first 150 customers of the sample, imported into a program, then fitted from the
    # database: the same days and customers, so the same BG/NBD as from the file.
    lines = [line for line in SAMPLE.read_text().splitlines() if int(line.split()[1]) <= 150]
    log = tmp_path / "log.txt"
    log.write_text("\n".join(lines) + "\n")
    kopilka(tmp_path, "db", "upgrade")
    (tmp_path / "usd.yaml").write_text(
        "money_currency: USD\nearning: [{id: base, type: per_amount, points: 1, per: 100}]\n"
    )
    kopilka(
        tmp_path, "program", "create", "--slug", "shop", "--name", "Shop", "--settings", "usd.yaml"
    )
    kopilka(tmp_path, "import", "purchases", str(log))
    arguments = ("--calibration-end", "1997-09-30", "--model", "bgnbd", "--json")
    from_db = json.loads(kopilka(tmp_path, "analytics", "clv", *arguments).stdout)
    from_file = json.loads(
        kopilka(tmp_path, "analytics", "clv", "--from-file", str(log), *arguments).stdout
    )
    assert from_db["customers"] == from_file["customers"] == 150
    assert from_db["params"] == pytest.approx(from_file["params"], rel=1e-6)
    assert from_db["log_likelihood"] == pytest.approx(from_file["log_likelihood"], rel=1e-9)
