"""``kopilka stores``: a CSV file imported all or nothing, again without changes; the list."""

from pathlib import Path

from tests.cli.test_cli import workdir
from tests.fixtures.cli import kopilka

__all__ = ["workdir"]

STORES = "\n".join(
    [
        "code,name,address,region,lat,lon,timezone,hours,special_hours,tags,phone,status",
        'MSK-1,Tverskaya,"Tverskaya 1, Moscow",moscow,55.765,37.605,Europe/Moscow,'
        "Mo-Fr 08:00-22:00; Sa-Su 10:00-20:00,2026-12-31 10:00-16:00,coffee;24h,"
        "+7 495 000-00-00,",
        "SPB-1,Nevsky,,north,59.935,30.325,Europe/Moscow,24/7,,,,",
        "VLD-1,Svetlanskaya,,east,43.116,131.882,Asia/Vladivostok,,,,,closed",
        "",
    ]
)


def test_a_csv_file_imports_lists_and_imports_again_unchanged(workdir: Path) -> None:
    (workdir / "stores.csv").write_text(STORES)
    first = kopilka(workdir, "stores", "import", "stores.csv")
    assert "3 stores were created, 0 updated, 0 unchanged" in first.stdout
    again = kopilka(workdir, "stores", "import", "stores.csv")
    assert "0 stores were created, 0 updated, 3 unchanged" in again.stdout
    listed = kopilka(workdir, "stores", "list").stdout
    assert "Tverskaya" in listed and "Asia/Vladivostok" in listed and "3 stores" in listed
    north = kopilka(workdir, "stores", "list", "--region", "north").stdout
    assert "Nevsky" in north and "Tverskaya" not in north
    closed = kopilka(workdir, "stores", "list", "--status", "closed").stdout
    assert "VLD-1" in closed and "MSK-1" not in closed
    (workdir / "more.csv").write_text("code,name,region\nMSK-1,Tverskaya,centre\nKZN-1,Kazan,\n")
    dry = kopilka(workdir, "stores", "import", "more.csv", "--dry-run")
    assert "1 stores would be created, 1 updated" in dry.stdout
    assert "KZN-1" not in kopilka(workdir, "stores", "list").stdout


def test_a_file_with_bad_lines_is_refused_whole(workdir: Path) -> None:
    (workdir / "bad.csv").write_text(
        "code,name,lat,lon,hours\nA,Alpha,1,1,\nB,Beta,north,1,\n"
        "C,Gamma,1,1,Mo 25:00-26:00\nA,Again,1,1,\n"
    )
    refused = kopilka(workdir, "stores", "import", "bad.csv", check=False)
    assert refused.returncode == 1
    assert "line 3: latitude: 'north' is not a number of degrees" in refused.stderr
    assert (
        "line 4: hours:" in refused.stderr
        and "line 5: code: 'A' is also on line 2" in refused.stderr
    )
    assert "error: bad.csv refused" in refused.stderr.splitlines()[-1]
    # Lines only the full check finds (latitude out of range, a time zone) are listed too.
    (workdir / "bad2.csv").write_text(
        "code,name,lat,lon,timezone\nA,Alpha,1,1,\nB,Beta,95,1,\nC,Gamma,1,1,Mars/Base\n"
    )
    refused = kopilka(workdir, "stores", "import", "bad2.csv", check=False)
    assert refused.returncode == 1
    assert "line 3: latitude:" in refused.stderr and "line 4: timezone:" in refused.stderr
    assert "nothing was written" in refused.stderr.splitlines()[-1]
    assert "0 stores" in kopilka(workdir, "stores", "list").stdout
