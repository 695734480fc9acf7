"""Simulation of a draft program on stored history: purchases replayed per second.

  .venv/bin/python benchmarks/simulate.py [--purchases 100000] [--backends sqlite,postgresql]

For each backend: a fresh database, a published program whose rules read member history
(base earning, win-back after 30 quiet days, regulars with 4+ visits in 30 days, a weekly
capped bonus, a boost after big baskets), and a synthetic purchase log in the CDNOW layout
(seeded: ``--purchases`` purchases by a fifth as many customers over 18 months) imported
with ``kopilka import purchases``. Then, in this process, ``simulate`` replays the whole
history under the published program and a draft (base doubled, win-back ×3, the cap
dropped) and the wall time of that call is reported.

Target (issue: rules engine): replaying 100,000 purchases takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from _common import (
    install_sigterm_handler,
    kopilka,
    log,
    machine,
    pg_url,
    prepare_database,
    print_json,
    print_table,
    scratch_pg_database,
)

from kopilka.db import make_engine, reading
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import program_service
from kopilka.purchases.simulation import simulate

SLUG = "sim"
START = date(2025, 1, 1)
PUBLISHED: dict[str, Any] = {
    "money_currency": "USD",
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
    "rules": [
        {
            "id": "win-back",
            "conditions": [{"type": "days_since_last_purchase", "min": 30}],
            "effects": [{"type": "multiplier", "factor": 2, "of": ["base"]}],
        },
        {
            "id": "regulars",
            "conditions": [{"type": "purchases_in_window", "days": 30, "min": 4}],
            "effects": [{"type": "percent", "basis_points": 300}],
        },
        {
            "id": "weekly-bonus",
            "conditions": [{"type": "basket_total", "min": 2_000}],
            "effects": [{"type": "points", "amount": 10}],
            "limits": {"periods": [{"per": "member", "period": "week", "times": 1}]},
        },
        {
            "id": "big-basket-boost",
            "conditions": [{"type": "basket_total", "min": 10_000}],
            "effects": [{"type": "boost", "factor": "1.5", "valid_days": 14}],
        },
    ],
}


def draft_document() -> dict[str, Any]:
    draft = yaml.safe_load(yaml.safe_dump(PUBLISHED))
    draft["earning"][0]["points"] = 2
    draft["rules"][0]["effects"][0]["factor"] = 3
    draft["rules"][2].pop("limits")
    return draft


def write_log(path: Path, purchases: int, seed: int = 7) -> None:
    """A CDNOW-layout log: customer, yyyymmdd, quantity, dollars; customers with their own
    purchase rates, in date order per customer as the original file is."""
    rng = random.Random(seed)
    customers = max(purchases // 5, 1)
    rates = [rng.expovariate(1.0) for _ in range(customers)]
    weights_total = sum(rates)
    counts = [max(1, round(purchases * r / weights_total)) for r in rates]
    lines = []
    for customer, count in enumerate(counts, start=1):
        days = sorted(rng.randrange(540) for _ in range(count))
        for day in days:
            when = START + timedelta(days=day)
            quantity = rng.randint(1, 4)
            dollars = round(rng.lognormvariate(3.0, 0.8), 2)
            lines.append(f"{customer:05d} {when:%Y%m%d} {quantity} {dollars:.2f}")
    path.write_text("\n".join(lines) + "\n")


async def time_simulation(url: str) -> dict[str, Any]:
    engine = make_engine(url, pool_size=2)
    try:
        async with reading(engine) as conn:
            program = await program_service.get_by_slug(conn, SLUG)
            draft = ProgramSettings.model_validate(draft_document())
            since = datetime(2024, 12, 1, tzinfo=UTC)
            until = datetime.now(UTC)
            started = time.perf_counter()
            report = await simulate(conn, program, draft, since, until)
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    points = next(t for t in report["totals"] if t["currency"] == "points")
    return {
        "replayed": report["purchases"],
        "seconds": round(seconds, 2),
        "per_s": round(report["purchases"] / seconds),
        "points_published": points["published"],
        "points_draft": points["draft"],
        "members_affected": report["members_affected"],
    }


def run_backend(backend: str, url: str, log_file: Path, settings: Path) -> dict[str, Any]:
    log(f"{backend}: db upgrade, program create, import")
    prepare_database(url, SLUG, settings)
    started = time.perf_counter()
    kopilka(url, "import", "purchases", str(log_file), "--program", SLUG, timeout=1800)
    imported_s = time.perf_counter() - started
    log(f"{backend}: imported in {imported_s:.1f} s; simulating")
    return {
        "backend": backend,
        "import_s": round(imported_s, 1),
        **asyncio.run(time_simulation(url)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    install_sigterm_handler()
    info = machine()
    results = []
    with tempfile.TemporaryDirectory(prefix="kopilka-sim-") as tmp:
        folder = Path(tmp)
        log_file = folder / "purchases.txt"
        write_log(log_file, args.purchases)
        settings = folder / "published.yaml"
        settings.write_text(yaml.safe_dump(PUBLISHED))
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite+aiosqlite:///{folder / 'sim.db'}"
                results.append(run_backend(backend, url, log_file, settings))
            else:
                with scratch_pg_database("sim") as name:
                    results.append(run_backend(backend, pg_url(name), log_file, settings))
    rows: list[tuple[str, Any]] = [
        ("date / machine", f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}")
    ]
    for r in results:
        name = r["backend"]
        rows += [
            (f"{name}: purchases replayed", f"{r['replayed']:,} (import took {r['import_s']} s)"),
            (f"{name}: simulate wall s → purchases/s", f"{r['seconds']} → {r['per_s']:,}"),
            (
                f"{name}: points published → draft; members affected",
                f"{r['points_published']:,} → {r['points_draft']:,}; {r['members_affected']:,}",
            ),
        ]
    print_table("Simulation of a draft on stored history (two programs per purchase)", rows)
    print_json({"benchmark": "simulate", **info, "purchases": args.purchases, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
