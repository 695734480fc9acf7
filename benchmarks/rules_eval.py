"""Pure rule evaluation: a 50-rule program on a 10-line basket.

  .venv/bin/python benchmarks/rules_eval.py [--iterations 50000] [--max-seconds 30]

Builds the program with kopilka.rules.registry.compile_program from validated
ProgramSettings (25 ``per_amount`` and 25 ``percent`` rules, most with a few
exclude_categories), a 10-line basket, and times kopilka.rules.domain.evaluate one call at a
time with time.perf_counter_ns. No I/O.

Target (DESIGN.md, "Performance targets"): < 50 µs median.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import UTC, datetime

from _common import machine, percentile, print_json, print_table

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.domain import BasketLine, EvaluationContext, evaluate
from kopilka.rules.registry import compile_program

CATEGORIES = [
    "food",
    "drinks",
    "alcohol",
    "tobacco",
    "household",
    "gift_cards",
    "books",
    "toys",
    "pharmacy",
    "electronics",
]
TARGET_US = 50.0


def settings(rules: int) -> ProgramSettings:
    earning = []
    for i in range(rules):
        # 0 to 3 excluded categories, rotating through the list.
        excluded = [CATEGORIES[(i + k) % len(CATEGORIES)] for k in range(i % 4)]
        if i % 2 == 0:
            earning.append(
                {
                    "id": f"per-{i}",
                    "type": "per_amount",
                    "points": 1 + i % 3,
                    "per": 100 * (1 + i % 5),
                    "exclude_categories": excluded,
                }
            )
        else:
            earning.append(
                {
                    "id": f"pct-{i}",
                    "type": "percent",
                    "basis_points": 50 + 10 * i,
                    "currency": "cashback" if i % 3 == 0 else "points",
                    "exclude_categories": excluded,
                }
            )
    return ProgramSettings.model_validate(
        {
            "money_currency": "RUB",
            "currencies": [{"code": "points"}, {"code": "cashback", "kind": "money"}],
            "earning": earning,
        }
    )


def basket(lines: int) -> EvaluationContext:
    items = [
        BasketLine(
            sku=f"SKU-{i}",
            category=CATEGORIES[i % len(CATEGORIES)],
            quantity=1 + i % 3,
            amount=(1 + i % 3) * (1_990 + 750 * i),
        )
        for i in range(lines)
    ]
    return EvaluationContext(
        total=sum(line.amount for line in items),
        lines=items,
        occurred_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        channel="pos",
        store="s1",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop timing after this")
    args = parser.parse_args()
    info = machine()
    program = compile_program(settings(args.rules))
    context = basket(args.lines)
    result = evaluate(program, context)
    fired = len(result.effects)

    for _ in range(min(args.warmup, 100_000)):
        evaluate(program, context)
    timings: list[int] = []
    clock = time.perf_counter_ns
    deadline = time.monotonic() + args.max_seconds
    for i in range(min(args.iterations, 10_000_000)):
        started = clock()
        evaluate(program, context)
        timings.append(clock() - started)
        if i % 1000 == 0 and time.monotonic() > deadline:
            break
    gc.collect()

    us = sorted(t / 1000 for t in timings)
    median = statistics.median(us)
    figures = {
        "iterations": len(us),
        "median_us": round(median, 2),
        "p90_us": round(percentile(us, 90), 2),
        "p99_us": round(percentile(us, 99), 2),
        "mean_us": round(statistics.fmean(us), 2),
        "min_us": round(us[0], 2),
        "per_rule_median_ns": round(1000 * median / len(program.rules)),
    }
    print_table(
        "Rule evaluation (pure)",
        [
            ("date / machine", f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}"),
            (
                "program / basket",
                f"{len(program.rules)} rules ({fired} fire), {len(context.lines)} lines",
            ),
            ("timed calls", figures["iterations"]),
            (
                "median µs (target < 50)",
                f"{figures['median_us']} {'OK' if median < TARGET_US else 'MISSED'}",
            ),
            ("p90 / p99 µs", f"{figures['p90_us']} / {figures['p99_us']}"),
            ("mean / min µs", f"{figures['mean_us']} / {figures['min_us']}"),
            ("median per rule ns", figures["per_rule_median_ns"]),
        ],
    )
    print_json(
        {
            "benchmark": "rules_eval",
            **info,
            "rules": len(program.rules),
            "lines": len(context.lines),
            "fired": fired,
            **figures,
            "target_median_us": TARGET_US,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
