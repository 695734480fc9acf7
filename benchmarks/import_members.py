"""Member migration: a generated CSV of members brought over from another loyalty system
(profile, consents with dates, tags, attributes, opening balances of 1–3 lots, tiers for
a share of them) imported into a fresh SQLite file and a fresh PostgreSQL database: wall
time, members/s, peak RSS of the import process, ledger check, and a second run of the
same file (everything already imported).

  .venv/bin/python benchmarks/import_members.py [--members 100000] [--backends sqlite,postgresql]
      [--consent-share 0.6] [--batch-size N]

For each backend: ``kopilka db upgrade``, ``kopilka program create --settings``, then
``kopilka import members FILE`` as a child process whose peak RSS comes from wait4(2),
``kopilka ledger verify``, and the same import again.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import subprocess
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from _common import (
    KOPILKA,
    REPO,
    install_sigterm_handler,
    kopilka_env,
    ledger_verify,
    log,
    machine,
    pg_url,
    prepare_database,
    print_json,
    print_table,
    psql,
    scratch_pg_database,
)

SLUG = "moved"
SETTINGS = """\
money_currency: RUB
timezone: Europe/Moscow
currencies: [{code: points}, {code: cashback, kind: money}]
expiry: {policy: days, days: 365}
member_attributes:
  shoe_size: {type: integer}
  segment: {type: choice, values: [a, b, c]}
tiers:
  levels:
    - {id: base, name: Base}
    - {id: silver, name: Silver, qualify: {spend: 1500000}}
    - {id: gold, name: Gold, qualify: {spend: 5000000}}
"""
HEADER = [
    "external_id", "phone", "email", "name", "birthday", "language", "gender", "city",
    "registered_at", "tags", "attr.shoe_size", "attr.segment",
    "consent.email.marketing", "consent.email.marketing.at", "consent.email.marketing.version",
    "consent.sms.marketing", "consent.sms.marketing.at",
    "points", "tier", "tier_since",
]  # fmt: skip
REPORTED = re.compile(
    r"imported (\d+) members, (\d+) already imported, (\d+) failed, in ([\d.]+) s"
)
TIME_LIMIT = 1800.0


def generate(path: Path, members: int, consent_share: float, seed: int = 7) -> dict[str, int]:
    """The CSV file; what it holds, counted."""
    rng = random.Random(seed)
    today = date.today()
    counts = {"lots": 0, "consents": 0, "tiers": 0}
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for n in range(members):
            joined = today - timedelta(days=rng.randint(30, 3000))
            consent = ["", "", "", "", ""]
            if rng.random() < consent_share:
                at = (joined + timedelta(days=rng.randint(0, 20))).isoformat()
                consent = ["granted", at, "v1", rng.choice(["granted", "denied"]), at]
                counts["consents"] += 2
            lots = []
            for _ in range(rng.randint(1, 3)):
                expiry = today + timedelta(days=rng.randint(-30, 700))
                lots.append(f"{rng.randint(1, 5000)}@{expiry.isoformat()}")
            counts["lots"] += len(lots)
            tier, since = "", ""
            if rng.random() < 0.2:
                tier = rng.choice(["silver", "gold"])
                since = (today - timedelta(days=rng.randint(1, 700))).isoformat()
                counts["tiers"] += 1
            out.writerow(
                [
                    f"OLD-{n:07d}",
                    f"+7916{n:07d}",
                    f"member{n}@example.com",
                    f"Member {n}",
                    (date(1960, 1, 1) + timedelta(days=rng.randint(0, 15000))).isoformat(),
                    rng.choice(["ru", "en"]),
                    rng.choice(["female", "male", ""]),
                    rng.choice(["Moscow", "Kazan", "Perm", ""]),
                    joined.isoformat(),
                    ";".join(rng.sample(["coffee", "vip", "family", "online"], rng.randint(0, 2))),
                    str(rng.randint(35, 46)),
                    rng.choice(["a", "b", "c"]),
                    *consent,
                    ";".join(lots),
                    tier,
                    since,
                ]
            )
    return counts


def run_import(url: str, file: Path, batch_size: int | None) -> dict[str, Any]:
    args = [KOPILKA, "import", "members", str(file), "--program", SLUG]
    if batch_size:
        args += ["--batch-size", str(batch_size)]
    load = round(os.getloadavg()[0], 2)  # other work on the machine slows the import
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            args, env=kopilka_env(url), stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    found = REPORTED.search(output)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"import failed ({proc.returncode}):\n{output[-3000:]}")
    created, already, failed, seconds = (
        int(found[1]),
        int(found[2]),
        int(found[3]),
        float(found[4]),
    )
    done = created + already
    return {
        "created": created,
        "already_imported": already,
        "failed": failed,
        "wall_s": round(wall, 2),
        "import_phase_s": seconds,
        "members_per_s": round(done / seconds) if seconds else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        # The machine may be shared: the process's own CPU time tells its cost apart
        # from time spent waiting for the database or for a core.
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "load_avg_1m_before": load,
    }


def bench(backend: str, url: str, file: Path, settings: Path, batch: int | None) -> dict[str, Any]:
    log(f"{backend}: db upgrade, program create")
    prepare_database(url, SLUG, settings)
    log(f"{backend}: kopilka import members {file.name}")
    first = run_import(url, file, batch)
    log(f"{backend}: {first['created']} members in {first['wall_s']} s; ledger verify")
    ok, output = ledger_verify(url, SLUG)
    log(f"{backend}: the same file again")
    again = run_import(url, file, batch)
    result = {"backend": backend, "first": first, "again": again, "ledger_verify_ok": ok}
    if not ok:
        result["verify_output"] = output[-2000:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--consent-share", type=float, default=0.6)
    parser.add_argument("--batch-size", type=int, default=None)
    options = parser.parse_args()
    install_sigterm_handler()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        file = workdir / "members.csv"
        counts = generate(file, options.members, options.consent_share)
        log(f"generated {options.members} members: {counts}")
        settings = workdir / "settings.yaml"
        settings.write_text(SETTINGS)
        for backend in options.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{workdir / 'members.db'}"
                results.append(bench(backend, url, file, settings, options.batch_size))
            else:
                with scratch_pg_database("members") as db:
                    results.append(bench(backend, pg_url(db), file, settings, options.batch_size))
                    results[-1]["rows_members"] = int(psql("SELECT count(*) FROM members", db))
    for result in results:
        first, again = result["first"], result["again"]
        print_table(
            f"import members ({result['backend']}, {options.members:,} rows)",
            [
                ("members/s", first["members_per_s"]),
                ("total time, s", first["wall_s"]),
                ("peak RSS, MB", first["peak_rss_mb"]),
                ("import CPU (user+sys), s", first["cpu_s"]),
                ("load average before", first["load_avg_1m_before"]),
                ("again: already imported", again["already_imported"]),
                ("again: total time, s", again["wall_s"]),
                ("ledger verify", "ok" if result["ledger_verify_ok"] else "FAIL"),
            ],
        )
    print_json({"machine": machine(), "file": counts, "results": results})
    return 0 if all(r["ledger_verify_ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
