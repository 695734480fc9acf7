"""Run the six benchmarks one after the other and print their figures against the targets.

  .venv/bin/python benchmarks/run_all.py [--seconds 20] [--output results.jsonl]

Each benchmark runs as its own process (benchmarks/NAME.py) with its own fresh databases;
its last output line (JSON) is collected. ``--seconds`` goes to http_purchases.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import install_sigterm_handler, machine, print_json, print_table

HERE = Path(__file__).resolve().parent
TIME_LIMITS = {
    "rules_eval": 300,
    "api_rss": 300,
    "bulk_import": 1800,
    "http_purchases": 1800,
    "simulate": 1800,
    "coupons": 900,
}


def run(name: str, extra: list[str]) -> dict[str, Any]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), *extra],
        capture_output=True,
        text=True,
        timeout=TIME_LIMITS[name],
    )
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr[-5000:])
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"benchmark": name}
    result["exit_code"] = proc.returncode
    result["run_seconds"] = round(time.monotonic() - started, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="for http_purchases.py")
    parser.add_argument(
        "--only", default="rules_eval,api_rss,bulk_import,http_purchases,simulate,coupons"
    )
    parser.add_argument("--output", type=Path, help="append the JSON lines to this file")
    args = parser.parse_args()
    install_sigterm_handler()
    info = machine()
    results: dict[str, dict[str, Any]] = {}
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        extra = ["--seconds", str(args.seconds)] if name == "http_purchases" else []
        results[name] = run(name, extra)

    rows: list[tuple[str, Any]] = [
        (
            "date / machine",
            f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}, src {info['src_sha256']}",
        ),
    ]
    if (r := results.get("rules_eval")) and "median_us" in r:
        rows.append(
            (
                "rules, mixed 50: median µs (target < 50)",
                f"{r['median_us']}  → {r['median_us'] / 50:.2f} × target; "
                f"base-earning 50: {r['base']['median_us']}",
            )
        )
    if (r := results.get("api_rss")) and "rss_idle_mb" in r:
        rows.append(
            (
                "API idle RSS MB (target < 150)",
                f"{r['rss_idle_mb']}  → {r['rss_idle_mb'] / 150:.2f} × target",
            )
        )
    for b in (results.get("bulk_import") or {}).get("results", []):
        rows.append(
            (
                f"import {b['backend']}: purchases/s (target ≥ 10,000)",
                f"{b['per_s_wall']:,.0f}  → {b['per_s_wall'] / 10_000:.2f} × target; "
                f"peak RSS {b['peak_rss_mb']} MB",
            )
        )
    if (r := results.get("http_purchases")) and "purchases_per_s" in r:
        rows += [
            (
                "HTTP: purchases/s ÷ pgbench TPS (target ≥ 0.3)",
                f"{r['purchases_per_s']} ÷ {r['pgbench_tps']} = {r['ratio_to_pgbench']}",
            ),
            (
                "HTTP: p99 ms at half load (target < 25)",
                f"{r['paced_p99_ms']} (p50 {r['paced_p50_ms']}) at {r['paced_rate']}/s",
            ),
        ]
    for b in (results.get("simulate") or {}).get("results", []):
        rows.append(
            (
                f"simulate {b['backend']}: purchases replayed (two programs)",
                f"{b['replayed']:,} in {b['seconds']} s → {b['per_s']:,}/s",
            )
        )
    if (r := results.get("coupons")) and "generation" in r:
        rows.append(("coupons: codes generated/s", f"{r['generation']['codes_per_s']:,}"))
        for backend in ("sqlite", "postgresql"):
            if b := r.get(backend):
                rows.append(
                    (
                        f"coupons {backend}: store 100k / validate / purchase with a code",
                        f"{b['store_seconds']} s / {b['validate']['per_s']:,}/s / "
                        f"{b['purchase_with_code']['per_s']:,}/s",
                    )
                )
    print_table("All benchmarks against the targets", rows)
    summary = {"benchmark": "run_all", **info, "results": results}
    if args.output:
        with args.output.open("a") as handle:
            handle.write(json.dumps(summary, default=str) + "\n")
    print_json(summary)
    return 0 if all(r.get("exit_code") == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
