"""Bulk import of the CDNOW purchase log into a fresh SQLite file and a fresh PostgreSQL
database: wall time, purchases/s, peak RSS of the import process, ledger check.

  .venv/bin/python benchmarks/bulk_import.py [--backends sqlite,postgresql] [--batch-size N]

For each backend: ``kopilka db upgrade``, ``kopilka program create --settings`` (USD,
1 point per dollar), then ``kopilka import purchases CDNOW_master.txt`` as a child process
whose resident memory is sampled from /proc every 0.1 s and whose peak RSS comes from
wait4(2); then ``kopilka ledger verify``.

Target (DESIGN.md, "Performance targets"): ≥ 10,000 purchases/s fully processed (the
69,659-line CDNOW log in under 10 s), in constant memory.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    KOPILKA,
    REPO,
    CpuMeter,
    install_sigterm_handler,
    kopilka_env,
    ledger_verify,
    log,
    machine,
    percentile,
    pg_url,
    postgres_cpu_by_pid,
    prepare_database,
    print_json,
    print_table,
    psql,
    rss_kib,
    scratch_pg_database,
)

DEFAULT_FILE = REPO.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
SLUG = "cdnow"
SETTINGS = """\
money_currency: USD
earning:
  - id: base
    type: per_amount
    points: 1
    per: 100
"""
TIME_LIMIT = 900.0  # seconds; the import is killed after this
REPORTED = re.compile(r"imported (\d+) purchases, (\d+) already there, (\d+) failed, in ([\d.]+) s")


ACTIVITY = (
    "SELECT state || ' | ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 100) "
    "FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend'"
)


def run_import(
    url: str, file: Path, batch_size: int | None, pg_database: str | None, profile: bool
) -> dict[str, Any]:
    """Run the import as a child; sample its RSS (and, on PostgreSQL, the server's CPU and,
    with ``profile``, what its connection is doing); peak RSS and CPU from wait4(2)."""
    args = [KOPILKA, "import", "purchases", str(file), "--program", SLUG]
    if batch_size:
        args += ["--batch-size", str(batch_size)]
    pg_before = postgres_cpu_by_pid()
    pg_last: dict[int, float] = {}
    activity: Counter[str] = Counter()
    with tempfile.TemporaryFile() as out:
        meter = CpuMeter({})
        meter.start()
        started = time.monotonic()
        proc = subprocess.Popen(
            args, env=kopilka_env(url), stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
        samples: list[tuple[float, int]] = []
        status, usage, ticks = 0, None, 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            elapsed = time.monotonic() - started
            if elapsed > TIME_LIMIT:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            rss = rss_kib(proc.pid)
            if rss:
                samples.append((elapsed, rss))
            ticks += 1
            if pg_database and ticks % 5 == 0:
                # The import's backend ends with it: keep the last reading of each process.
                pg_last.update(postgres_cpu_by_pid())
            if pg_database and profile and ticks % 2 == 0:
                activity.update(psql(ACTIVITY.format(db=pg_database), pg_database).splitlines())
            time.sleep(0.1)
        wall = time.monotonic() - started
        machine_cpu = meter.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        output = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"import failed ({proc.returncode}):\n{output[-3000:]}")
    found = REPORTED.search(output)
    if found is None:
        raise RuntimeError(f"cannot read the import's summary:\n{output[-3000:]}")
    imported, already, failed, seconds = found.groups()
    # Memory over the run: the middle 80 % of the samples shows whether it grows.
    rss_values = [rss for _, rss in samples]
    middle = rss_values[len(rss_values) // 10 : max(len(rss_values) * 9 // 10, 1)]
    result: dict[str, Any] = {
        "imported": int(imported),
        "already_there": int(already),
        "failed": int(failed),
        "wall_s": round(wall, 2),
        "import_phase_s": float(seconds),
        "per_s_wall": round(int(imported) / wall, 0),
        "per_s_import_phase": round(int(imported) / float(seconds), 0) if float(seconds) else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1) if usage else None,
        "rss_mb_p10_p50_p90": [round(percentile(sorted(middle), p) / 1024, 1) for p in (10, 50, 90)]
        if middle
        else None,
        "cpu_user_s": round(usage.ru_utime, 2) if usage else None,
        "cpu_sys_s": round(usage.ru_stime, 2) if usage else None,
        "postgres_cpu_s": round(
            sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_last.items()), 1
        )
        if pg_database
        else None,
        "machine_busy_pct": machine_cpu["machine_busy_pct"],
    }
    if activity:
        total = sum(activity.values())
        result["pg_activity"] = [
            (round(100 * n / total, 1), what) for what, n in activity.most_common(6)
        ]
    return result


def bench_backend(
    backend: str,
    file: Path,
    settings: Path,
    batch_size: int | None,
    workdir: Path,
    profile: bool,
) -> dict[str, Any]:
    if backend == "sqlite":
        path = workdir / "cdnow.db"
        url = f"sqlite+aiosqlite:///{path}"
        return _measure(backend, url, file, settings, batch_size, None, profile)
    with scratch_pg_database("import") as db:
        result = _measure(backend, pg_url(db), file, settings, batch_size, db, profile)
        result["rows_purchases"] = int(psql("SELECT count(*) FROM purchases", db))
        return result


def _measure(
    backend: str,
    url: str,
    file: Path,
    settings: Path,
    batch_size: int | None,
    pg_database: str | None,
    profile: bool,
) -> dict[str, Any]:
    log(f"{backend}: db upgrade, program create")
    prepare_database(url, SLUG, settings)
    log(f"{backend}: kopilka import purchases {file.name}")
    result = run_import(url, file, batch_size, pg_database, profile)
    log(f"{backend}: imported {result['imported']} in {result['wall_s']} s; ledger verify")
    started = time.monotonic()
    ok, output = ledger_verify(url, SLUG)
    result["verify_s"] = round(time.monotonic() - started, 1)
    result["ledger_verify_ok"] = ok
    if not ok:
        result["verify_output"] = output[-2000:]
    return {"backend": backend, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batch-size", type=int, default=None, help="passed to the import")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="PostgreSQL: sample pg_stat_activity to show which statement the import waits on",
    )
    args = parser.parse_args()
    install_sigterm_handler()
    info = machine()
    lines = sum(1 for line in args.file.open("rb") if line.strip())
    results = []
    with tempfile.TemporaryDirectory(prefix="kopilka-bench-") as tmp:
        workdir = Path(tmp)
        settings = workdir / "settings.yaml"
        settings.write_text(SETTINGS)
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            results.append(
                bench_backend(backend, args.file, settings, args.batch_size, workdir, args.profile)
            )

    rows: list[tuple[str, Any]] = [
        ("date / machine", f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}"),
        ("file", f"{args.file} ({lines:,} lines with the header)"),
    ]
    for r in results:
        b = r["backend"]
        rows += [
            (
                f"{b}: imported / already / failed",
                f"{r['imported']} / {r['already_there']} / {r['failed']}",
            ),
            (
                f"{b}: wall s (whole command) → purchases/s",
                f"{r['wall_s']} → {r['per_s_wall']:,.0f} "
                f"{'OK' if r['per_s_wall'] >= 10_000 else 'MISSED'} (target ≥ 10,000)",
            ),
            (
                f"{b}: import phase s (as printed) → /s",
                f"{r['import_phase_s']} → {r['per_s_import_phase']:,.0f}",
            ),
            (
                f"{b}: CPU s import user / sys; postgres; machine busy %",
                f"{r['cpu_user_s']} / {r['cpu_sys_s']}; {r['postgres_cpu_s']}; "
                f"{r['machine_busy_pct']}",
            ),
            (
                f"{b}: peak RSS MB; RSS p10/p50/p90 MB",
                f"{r['peak_rss_mb']}; {r['rss_mb_p10_p50_p90']}",
            ),
            (
                f"{b}: kopilka ledger verify",
                f"{'ok' if r['ledger_verify_ok'] else 'FAILED'} ({r['verify_s']} s)",
            ),
        ]
    print_table("Bulk import of the CDNOW log", rows)
    for r in results:
        if r.get("pg_activity"):
            print(
                f"{r['backend']}: what the import's PostgreSQL connection was doing (share of "
                "samples; 'active' = the server is executing it):"
            )
            for share, what in r["pg_activity"]:
                print(f"  {share:5.1f}%  {what}")
    for r in results:
        if not r["ledger_verify_ok"]:
            print(r["verify_output"])
    print_json(
        {
            "benchmark": "bulk_import",
            **info,
            "file": str(args.file),
            "lines": lines,
            "batch_size": args.batch_size,
            "results": results,
        }
    )
    return 0 if all(r["ledger_verify_ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
