"""Pure rule evaluation: a 50-rule program on a 10-line basket.

  .venv/bin/python benchmarks/rules_eval.py [--iterations 50000] [--max-seconds 30]

Two programs, each compiled once with kopilka.rules.registry.compile_program from
validated ProgramSettings, timed one ``evaluate`` call at a time with time.perf_counter_ns
on a 10-line basket (no I/O):

* ``mixed`` (the target's program): 50 rules as marketers write them — 5 base earning
  rules, 15 conditional earning rules (basket total, categories, weekday, happy hours,
  channel, store, history windows, all/any), 10 multipliers (some in an exclusive group),
  10 limited rules (weekly caps, per-event caps), 5 benefit rules (coupon, free delivery,
  sample, tag, event) and 5 scheduled rules; the member has 10 recent purchases.
* ``base``: 25 ``per_amount`` and 25 ``percent`` rules with a few excluded categories.

Target (DESIGN.md, "Performance targets"): < 50 µs median.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import machine, percentile, print_json, print_table

from kopilka.programs.schemas import ProgramSettings
from kopilka.rules.domain import (
    BasketLine,
    CompiledProgram,
    EvaluationContext,
    MemberFacts,
    evaluate,
)
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


def _conditional(i: int) -> dict[str, Any]:
    category = CATEGORIES[i % len(CATEGORIES)]
    conditions = [
        [{"type": "basket_total", "min": 1_000 * (i % 7)}],
        [{"type": "line_match", "lines": {"categories": [category]}, "min_quantity": 1}],
        [{"type": "weekday", "days": ["mon", "tue", "sat"]}],
        [{"type": "time_of_day", "start": "08:00", "end": "12:00"}],
        [{"type": "channel", "channels": ["pos", "app"]}, {"type": "store", "stores": ["s1"]}],
        [{"type": "purchases_in_window", "days": 30, "min": 2}],
        [
            {
                "type": "any",
                "conditions": [
                    {"type": "days_since_last_purchase", "min": 30},
                    {"type": "distinct_items", "min": 5},
                ],
            }
        ],
    ][i % 7]
    effects = [
        {"type": "points_per_amount", "points": 2, "per": 100, "lines": {"categories": [category]}},
        {"type": "points", "amount": 10 + i},
        {"type": "percent", "basis_points": 100 + i * 10, "exclude_categories": ["tobacco"]},
        {"type": "points_per_line", "points": 3, "per_unit": True},
    ][i % 4]
    return {"id": f"cond-{i}", "conditions": conditions, "effects": [effects]}


def mixed_settings() -> ProgramSettings:
    earning = [
        {"id": f"base-{i}", "type": "per_amount", "points": 1, "per": 100 * (i + 1)}
        for i in range(3)
    ] + [{"id": f"pct-{i}", "type": "percent", "basis_points": 50 * (i + 1)} for i in range(2)]
    rules = [_conditional(i) for i in range(15)]
    rules += [
        {
            "id": f"mult-{i}",
            "conditions": [{"type": "weekday", "days": ["mon", "sun"]}] if i % 2 else [],
            "effects": [{"type": "multiplier", "factor": f"1.{i + 1}", "of": ["base-0"]}],
            "group": "multipliers" if i < 5 else None,
        }
        for i in range(10)
    ]
    rules += [
        {
            "id": f"limited-{i}",
            "effects": [{"type": "points", "amount": 5 + i}],
            "limits": {
                "max_per_event": 8,
                "periods": [{"per": "member", "period": "week", "times": 2}],
            },
        }
        for i in range(10)
    ]
    benefits = [
        {"type": "coupon", "campaign": "next-visit"},
        {"type": "free_delivery"},
        {"type": "free_sample", "sku": "SAMPLE-1"},
        {"type": "tag", "tag": "big-spender"},
        {"type": "emit_event", "name": "basket.big"},
    ]
    rules += [
        {
            "id": f"benefit-{i}",
            "conditions": [{"type": "basket_total", "min": 5_000 * (i + 1)}],
            "effects": [effect],
        }
        for i, effect in enumerate(benefits)
    ]
    rules += [
        {
            "id": f"scheduled-{i}",
            "schedule": {"valid_from": "2025-12-01T00:00:00Z", "valid_to": "2026-02-01T00:00:00Z"},
            "effects": [{"type": "points", "amount": 20}],
        }
        for i in range(5)
    ]
    return ProgramSettings.model_validate(
        {"money_currency": "RUB", "earning": earning, "rules": rules}
    )


def member_facts() -> MemberFacts:
    now = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    facts = MemberFacts(purchase_count=40, lifetime_spend=400_000)
    for days in range(10, 0, -1):
        facts.recent.append((now - timedelta(days=3 * days), 10_000))
    facts.last_purchase_at = facts.recent[-1][0]
    return facts


def basket(lines: int, facts: MemberFacts | None = None) -> EvaluationContext:
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
        member=facts or MemberFacts(),
    )


def measure(program: CompiledProgram, context: EvaluationContext, args: Any) -> dict[str, Any]:
    """Time ``evaluate`` call by call; each call starts with an empty per-basket cache, as
    every purchase does."""
    fired = len(evaluate(program, context).effects)
    for _ in range(min(args.warmup, 100_000)):
        context.amount_cache.clear()
        evaluate(program, context)
    timings: list[int] = []
    clock = time.perf_counter_ns
    deadline = time.monotonic() + args.max_seconds
    for i in range(min(args.iterations, 10_000_000)):
        context.amount_cache.clear()
        started = clock()
        evaluate(program, context)
        timings.append(clock() - started)
        if i % 1000 == 0 and time.monotonic() > deadline:
            break
    gc.collect()
    us = sorted(t / 1000 for t in timings)
    median = statistics.median(us)
    return {
        "rules": len(program.rules),
        "fired_effects": fired,
        "iterations": len(us),
        "median_us": round(median, 2),
        "p90_us": round(percentile(us, 90), 2),
        "p99_us": round(percentile(us, 99), 2),
        "mean_us": round(statistics.fmean(us), 2),
        "min_us": round(us[0], 2),
        "per_rule_median_ns": round(1000 * median / len(program.rules)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=50, help="rules of the base program")
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="per program")
    args = parser.parse_args()
    info = machine()
    mixed = measure(compile_program(mixed_settings()), basket(args.lines, member_facts()), args)
    base = measure(compile_program(settings(args.rules)), basket(args.lines), args)
    median = mixed["median_us"]
    rows: list[tuple[str, Any]] = [
        ("date / machine", f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}"),
        ("basket", f"{args.lines} lines"),
    ]
    for name, figures in (("mixed", mixed), ("base", base)):
        rows += [
            (
                f"{name}: rules (effects produced)",
                f"{figures['rules']} ({figures['fired_effects']})",
            ),
            (f"{name}: median µs", figures["median_us"]),
            (f"{name}: p90 / p99 µs", f"{figures['p90_us']} / {figures['p99_us']}"),
            (f"{name}: median per rule ns", figures["per_rule_median_ns"]),
        ]
    rows.append(("mixed median (target < 50 µs)", "OK" if median < TARGET_US else "MISSED"))
    print_table("Rule evaluation (pure)", rows)
    print_json(
        {
            "benchmark": "rules_eval",
            **info,
            "lines": args.lines,
            "median_us": median,
            "mixed": mixed,
            "base": base,
            "target_median_us": TARGET_US,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
