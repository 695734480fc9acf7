"""Coupon codes: how fast they are made, stored, checked at the till and redeemed.

  .venv/bin/python benchmarks/coupons.py [--backends sqlite,postgresql] [--codes 100000]
                                          [--connections 16] [--seconds 15]

1. Generation alone (in this process): ``--codes`` codes of ``SPR-####-####`` from the
   unambiguous charset, best of three runs.
2. For each backend, against ``kopilka serve`` on a fresh database:
   * ``POST /v1/coupon-campaigns/{key}/codes`` with ``count = --codes``: generation, the
     check against codes already stored, and the insert (COPY on PostgreSQL), as one call;
   * ``POST /v1/coupons/validate`` in a closed loop from ``--connections`` keep-alive
     connections for ``--seconds``: a 3-line basket with one random code of the batch;
   * ``POST /v1/purchases`` redeeming one single-use code each, same loop: the full
     purchase path plus the code's conditional update and its use row.
   Figures: requests/s, p50/p99 latency, server and PostgreSQL CPU per request.

The client runs in this process (asyncio, raw sockets) and shares the machine: compare
figures of one run side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    CpuMeter,
    Server,
    create_admin_key,
    http_get,
    http_post,
    install_sigterm_handler,
    log,
    machine,
    percentile,
    pg_url,
    prepare_database,
    print_json,
    print_table,
    scratch_pg_database,
)
from loadgen import Connection, _post

sys.path.insert(0, str(REPO / "src"))
from kopilka.kit.codes import generate_codes

SLUG = "coupons"
PATTERN = "SPR-####-####"
LINES = [
    {"sku": "COF", "category": "coffee", "quantity": 2, "unit_price": 25_000},
    {"sku": "CAKE", "category": "bakery", "quantity": 1, "unit_price": 30_000},
    {"sku": "TEA", "category": "tea", "quantity": 1, "unit_price": 12_000},
]
TOTAL = sum(line["quantity"] * line["unit_price"] for line in LINES)


def generation_alone(count: int) -> dict[str, Any]:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        codes = generate_codes(PATTERN, count)
        best = min(best, time.perf_counter() - started)
        assert len(set(codes)) == count
    return {"codes": count, "seconds": round(best, 3), "codes_per_s": round(count / best)}


def _call(port: int, key: str, path: str, body: dict[str, Any], expect: int = 201) -> Any:
    status, raw = http_post(port, path, body, key, timeout=600)
    if status != expect:
        raise RuntimeError(f"POST {path}: {status} {raw[:500]!r}")
    return json.loads(raw)


async def closed_loop(
    port: int, make: Any, connections: int, seconds: float, warmup: float = 2.0
) -> dict[str, Any]:
    """``connections`` clients each sending ``make(worker, seq)`` as soon as the last answer
    came; latencies and statuses counted after ``warmup``."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.monotonic()
    counting_from = start + warmup
    deadline = counting_from + seconds

    async def client(worker: int) -> None:
        conn = Connection(port)
        seq = 0
        while time.monotonic() < deadline:
            request = make(worker, seq)
            seq += 1
            sent = time.monotonic()
            status, _ = await conn.request(request)
            done = time.monotonic()
            if sent >= counting_from and done <= deadline:
                latencies.append(done - sent)
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    await asyncio.gather(*(client(w) for w in range(connections)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / seconds),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "statuses": statuses,
    }


def _all_codes(port: int, key: str, campaign: str, count: int) -> list[str]:
    """``count`` unused single-use codes of a campaign made for the redemption loop."""
    single = f"{campaign}-single"
    _call(
        port,
        key,
        "/v1/coupon-campaigns",
        {"key": single, "name": "Single use", "discount": {"kind": "fixed", "value": 5_000}},
    )
    _call(port, key, f"/v1/coupon-campaigns/{single}/codes", {"count": count})
    codes: list[str] = []
    cursor = ""
    while len(codes) < count:
        path = f"/v1/coupon-campaigns/{single}/codes?limit=1000" + (
            f"&cursor={cursor}" if cursor else ""
        )
        status, raw = http_get(port, path, key, timeout=60)
        page = json.loads(raw)
        assert status == 200, raw[:300]
        codes += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return codes


def measured(server: Server, run: Any) -> dict[str, Any]:
    meter = CpuMeter({"server": server.pid})
    meter.start()
    figures: dict[str, Any] = asyncio.run(run)
    cpu = meter.stop()
    done = max(figures["requests"], 1) / cpu["wall_seconds"]
    figures["server_cpu_ms"] = round(cpu["server_cpu_pct"] / 100 / done * 1000, 3)
    figures["postgres_cpu_ms"] = round(cpu["postgres_cpu_pct"] / 100 / done * 1000, 3)
    return figures


def backend_run(url: str, args: argparse.Namespace, pg: bool) -> dict[str, Any]:
    prepare_database(url, SLUG)
    key = create_admin_key(url, SLUG)
    workers = (os.cpu_count() or 1) if pg else 1
    with Server(url, workers=workers) as server:
        port = server.port
        campaign = f"bench-{int(time.time())}"
        _call(
            port,
            key,
            "/v1/coupon-campaigns",
            {
                "key": campaign,
                "name": "Benchmark",
                "discount": {"kind": "percent", "value": 10},
                "code_pattern": PATTERN,
            },
        )
        started = time.perf_counter()
        made = _call(port, key, f"/v1/coupon-campaigns/{campaign}/codes", {"count": args.codes})
        stored_s = time.perf_counter() - started
        codes: list[str] = made["codes"]  # the first 1,000
        log(f"{made['created']} codes stored in {stored_s:.2f} s")
        lines = json.dumps(LINES, separators=(",", ":"))
        picker = random.Random(7)

        def validate(worker: int, seq: int) -> bytes:
            code = codes[picker.randrange(len(codes))]
            body = f'{{"codes":["{code}"],"total":{TOTAL},"lines":{lines}}}'
            return _post(port, "/v1/coupons/validate", key, body)

        validation = measured(server, closed_loop(port, validate, args.connections, args.seconds))
        log(f"validate: {validation['per_s']}/s, p99 {validation['p99_ms']} ms")

        members = [f"bench-c-{i}" for i in range(args.connections)]
        for member in members:
            _call(port, key, "/v1/members", {"external_id": member})
        single = _all_codes(port, key, campaign, 20_000)
        occurred = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        tag = f"r{int(time.time())}"
        pool = iter(single)

        def redeem(worker: int, seq: int) -> bytes:
            code = next(pool, None) or codes[0]
            body = (
                f'{{"member":{{"external_id":"{members[worker]}"}},'
                f'"external_id":"{tag}-{worker}-{seq}","occurred_at":"{occurred}",'
                f'"currency":"RUB","coupon_codes":["{code}"],"total":{TOTAL},"lines":{lines}}}'
            )
            return _post(port, "/v1/purchases", key, body)

        redemption = measured(server, closed_loop(port, redeem, args.connections, 8.0, 1.0))
        log(f"purchases with a code: {redemption['per_s']}/s, p99 {redemption['p99_ms']} ms")
    return {
        "codes_stored": made["created"],
        "store_seconds": round(stored_s, 2),
        "stored_codes_per_s": round(made["created"] / stored_s),
        "validate": validation,
        "purchase_with_code": redemption,
    }


def main() -> int:
    install_sigterm_handler()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(), "generation": generation_alone(args.codes)}
    log(f"generation alone: {result['generation']}")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="kopilka-bench-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'coupons.db'}"
                result["sqlite"] = backend_run(url, args, pg=False)
        else:
            with scratch_pg_database("coupons") as name:
                result["postgresql"] = backend_run(pg_url(name), args, pg=True)
    rows: list[tuple[str, Any]] = [
        ("generate (in process)", f"{result['generation']['codes_per_s']:,} codes/s"),
    ]
    for backend in ("sqlite", "postgresql"):
        if backend in result:
            r = result[backend]
            rows += [
                (f"{backend}: store {r['codes_stored']:,} codes", f"{r['store_seconds']} s"),
                (
                    f"{backend}: validate",
                    f"{r['validate']['per_s']:,}/s, p99 {r['validate']['p99_ms']} ms, "
                    f"server {r['validate']['server_cpu_ms']} ms CPU each",
                ),
                (
                    f"{backend}: purchase with a code",
                    f"{r['purchase_with_code']['per_s']:,}/s, "
                    f"p99 {r['purchase_with_code']['p99_ms']} ms",
                ),
            ]
    print_table("Coupon codes", rows)
    print_json(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
