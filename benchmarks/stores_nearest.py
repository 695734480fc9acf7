"""Stores: the nearest search over 10,000 stores, and what the store check costs purchases.

  .venv/bin/python benchmarks/stores_nearest.py [--backends sqlite,postgresql]
      [--stores 10000] [--queries 2000] [--http-queries 1000] [--purchase-seconds 10]

For each backend, on a fresh database:

1. ``--stores`` stores over a Russia-sized area (latitudes 43–70, longitudes 28 east to 170
   west, across the antimeridian): 60 % around twenty cities, 40 % spread evenly; every
   store with a weekly schedule, one in twenty tagged ``drive``. Written as a CSV file and
   imported with ``kopilka stores import`` (timed: stores/s).
2. The service call ``StoreService.nearest`` in this process, ``--queries`` random points
   of the same area each: ``limit=10``; ``limit=10, open_now=true``; ``limit=10,
   tag=drive``; ``limit=1``. p50 / p99 / max in milliseconds, and the circles' mean radius.
3. ``GET /v1/stores/nearest?lat=&lon=&limit=10`` against ``kopilka serve`` (one process),
   ``--http-queries`` requests one after another on a keep-alive connection: p50 / p99.
4. The check that a purchase names a known store, in this process: µs per call for a
   program with the 10,000 stores and for one without stores.
5. Purchases at those stores: ``benchmarks/loadgen.py closed`` (16 connections,
   ``--purchase-seconds``) on two programs of the same server, one without stores and one
   with the 10,000 (the load generator's stores ``s0`` … ``s7`` among them), ``--rounds``
   rounds in turn: purchases/s and p50 / p99, side by side.

The client shares the machine with the server: compare figures of one run side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import http.client
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    Server,
    create_admin_key,
    install_sigterm_handler,
    kopilka,
    log,
    machine,
    percentile,
    pg_url,
    prepare_database,
    print_json,
    print_table,
    scratch_pg_database,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from kopilka.db import make_engine, reading  # noqa: E402
from kopilka.kit.clock import clock  # noqa: E402
from kopilka.programs.service import program_service  # noqa: E402
from kopilka.stores.service import store_service  # noqa: E402

CITIES = [
    (55.75, 37.62),
    (59.94, 30.31),
    (55.03, 82.92),
    (56.84, 60.61),
    (55.79, 49.11),
    (56.33, 44.00),
    (55.16, 61.40),
    (53.20, 50.15),
    (54.99, 73.37),
    (47.23, 39.72),
    (54.74, 55.97),
    (56.01, 92.87),
    (51.67, 39.18),
    (58.01, 56.25),
    (48.71, 44.51),
    (43.12, 131.88),
    (52.29, 104.30),
    (48.48, 135.08),
    (62.03, 129.73),
    (64.73, 177.51),
]
SOUTH, NORTH = 43.0, 70.0
WEST, EAST = 28.0, 190.0  # 190° east is 170° west: the area crosses the antimeridian
WEEK = "Mo-Fr 08:00-22:00; Sa 10:00-23:00; Su 10:00-20:00"
NIGHT = "Mo-Su 20:00-08:00"


def wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def random_point(rng: random.Random) -> tuple[float, float]:
    # Evenly over the area of the sphere between the two latitudes.
    s, n = math.sin(math.radians(SOUTH)), math.sin(math.radians(NORTH))
    lat = math.degrees(math.asin(rng.uniform(s, n)))
    return lat, wrap(rng.uniform(WEST, EAST))


def zone_of(lon: float) -> str:
    east = lon % 360
    if east < 50:
        return "Europe/Moscow"
    if east < 75:
        return "Asia/Yekaterinburg"
    if east < 100:
        return "Asia/Novosibirsk"
    return "Asia/Vladivostok"


def write_stores(path: Path, count: int, rng: random.Random) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["code", "name", "region", "lat", "lon", "timezone", "hours", "tags"])
        for i in range(count):
            code = f"s{i}" if i < 8 else f"ST{i:06d}"  # s0 … s7: the load generator's
            if rng.random() < 0.6:
                lat0, lon0 = rng.choice(CITIES)
                lat, lon = lat0 + rng.gauss(0, 0.15), wrap(lon0 + rng.gauss(0, 0.25))
            else:
                lat, lon = random_point(rng)
            out.writerow(
                [
                    code,
                    f"Store {i}",
                    f"r{int(lon // 10)}",
                    f"{lat:.6f}",
                    f"{lon:.6f}",
                    zone_of(lon),
                    NIGHT if i % 7 == 0 else WEEK,
                    "drive" if i % 20 == 0 else "",
                ]
            )


def summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "p50_ms": round(percentile(ordered, 50), 3),
        "p99_ms": round(percentile(ordered, 99), 3),
        "max_ms": round(ordered[-1], 3) if ordered else 0.0,
    }


async def service_figures(url: str, slug: str, queries: int, seed: int) -> dict[str, Any]:
    engine = make_engine(url)
    rng = random.Random(seed)
    points = [random_point(rng) for _ in range(queries)]
    variants: dict[str, dict[str, Any]] = {
        "limit=10": {"limit": 10},
        "limit=10, open_now": {"limit": 10, "open_now": True},
        "limit=10, tag=drive": {"limit": 10, "tag": "drive"},
        "limit=1": {"limit": 1},
    }
    figures: dict[str, Any] = {}
    try:
        async with reading(engine) as conn:
            program = await program_service.get_by_slug(conn, slug)
            for name, options in variants.items():
                times: list[float] = []
                radii: list[int] = []
                for lat, lon in points[: max(50, queries // 10)]:  # warm-up
                    await store_service.nearest(conn, program, lat, lon, clock.now(), **options)
                for lat, lon in points:
                    started = time.perf_counter()
                    found = await store_service.nearest(
                        conn, program, lat, lon, clock.now(), **options
                    )
                    times.append((time.perf_counter() - started) * 1000)
                    radii.append(found.searched_m)
                    assert len(found.items) == options["limit"], (lat, lon, options)
                figures[name] = {
                    **summary(times),
                    "mean_radius_km": round(sum(radii) / len(radii) / 1000, 1),
                }
    finally:
        await engine.dispose()
    return figures


async def check_cost(url: str, calls: int = 20_000) -> dict[str, float]:
    """What ``StoreService.unknown_stores`` costs a purchase at a known store (10,000
    stores) and in a program without stores, in microseconds per call (after the first
    call has loaded the codes)."""
    engine = make_engine(url)
    figures: dict[str, float] = {}
    try:
        async with reading(engine) as conn:
            for slug, codes in (("stores", {"s3"}), ("plain", {"s3"})):
                program = await program_service.get_by_slug(conn, slug)
                await store_service.unknown_stores(conn, program, codes)
                started = time.perf_counter()
                for _ in range(calls):
                    assert not await store_service.unknown_stores(conn, program, codes)
                figures[slug] = round((time.perf_counter() - started) / calls * 1e6, 2)
    finally:
        await engine.dispose()
    return figures


def http_figures(port: int, key: str, queries: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed + 1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {key}"}
    times: list[float] = []
    try:
        for i in range(queries + 50):
            lat, lon = random_point(rng)
            started = time.perf_counter()
            conn.request(
                "GET", f"/v1/stores/nearest?lat={lat:.6f}&lon={lon:.6f}&limit=10", headers=headers
            )
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"nearest answered {response.status}: {body[:300]!r}")
            if i >= 50:
                times.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return summary(times)


LOADGEN = [sys.executable, str(HERE / "loadgen.py")]


def register(port: int, key: str) -> None:
    common = ["--port", str(port), "--key", key, "--members", "500"]
    out = subprocess.run(
        [*LOADGEN, "members", *common], check=True, capture_output=True, text=True, timeout=600
    )
    registered = json.loads(out.stdout.strip().splitlines()[-1])
    if registered["ok"] != 500:
        raise RuntimeError(f"member registration failed: {registered}")


def purchases(port: int, key: str, seconds: float, tag: str) -> dict[str, Any]:
    common = ["--port", str(port), "--key", key, "--members", "500"]
    loadgen = LOADGEN
    out = subprocess.run(
        [
            *loadgen,
            "closed",
            *common,
            "--connections",
            "16",
            "--seconds",
            str(seconds),
            "--warmup",
            "2",
            "--tag",
            tag,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 300,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: result[k] for k in ("ok_rate", "p50_ms", "p99_ms", "errors", "requests")}


def run_backend(backend: str, url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    log(f"{backend}: kopilka db upgrade, programs, {args.stores} stores")
    prepare_database(url, "stores")
    kopilka(url, "program", "create", "--slug", "plain", "--name", "No stores")
    stores_key = create_admin_key(url, "stores")
    plain_key = create_admin_key(url, "plain")
    path = work / f"stores-{backend}.csv"
    write_stores(path, args.stores, random.Random(args.seed))
    started = time.perf_counter()
    kopilka(url, "stores", "import", str(path), "--program", "stores")
    import_seconds = time.perf_counter() - started
    again = time.perf_counter()
    out = kopilka(url, "stores", "import", str(path), "--program", "stores")
    again_seconds = time.perf_counter() - again
    assert f"{args.stores} unchanged" in out, out
    log(f"{backend}: {args.queries} service calls per variant")
    service = asyncio.run(service_figures(url, "stores", args.queries, args.seed))
    check = asyncio.run(check_cost(url))
    with Server(url) as server:
        log(f"{backend}: {args.http_queries} HTTP requests")
        over_http = http_figures(server.port, stores_key, args.http_queries, args.seed)
        for key in (plain_key, stores_key):
            register(server.port, key)
        plain: list[dict[str, Any]] = []
        with_stores: list[dict[str, Any]] = []
        # Rounds in turn, so that both programs see the same load from the rest of the
        # machine.
        for round_ in range(args.rounds):
            log(f"{backend}: purchases round {round_ + 1}: without stores, with {args.stores}")
            tag = f"{backend[:2]}{round_}{int(time.time())}"
            plain.append(purchases(server.port, plain_key, args.purchase_seconds, f"a{tag}"))
            with_stores.append(purchases(server.port, stores_key, args.purchase_seconds, f"b{tag}"))
    return {
        "check_us": check,
        "import_stores_per_s": round(args.stores / import_seconds),
        "import_seconds": round(import_seconds, 2),
        "reimport_unchanged_seconds": round(again_seconds, 2),
        "service": service,
        "http_limit10": over_http,
        "purchases_without_stores": plain,
        "purchases_with_stores": with_stores,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--http-queries", type=int, default=1_000)
    parser.add_argument("--purchase-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="purchase runs per program")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    install_sigterm_handler()
    info = machine()
    result: dict[str, Any] = {"benchmark": "stores_nearest", **info, "stores": args.stores}
    work = Path(tempfile.mkdtemp(prefix="kopilka-bench-stores-"))
    for backend in args.backends.split(","):
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{work / 'stores.db'}"
            result[backend] = run_backend(backend, url, args, work)
        else:
            with scratch_pg_database("stores") as db:
                result[backend] = run_backend(backend, pg_url(db), args, work)
    backends = [b for b in args.backends.split(",")]
    rows: list[tuple[str, Any]] = [
        ("date / machine", f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}"),
        ("backends", " | ".join(backends)),
        (
            f"import {args.stores} stores (kopilka stores import, start-up included), stores/s",
            " | ".join(str(result[b]["import_stores_per_s"]) for b in backends),
        ),
        (
            "the same file again (all unchanged), s",
            " | ".join(str(result[b]["reimport_unchanged_seconds"]) for b in backends),
        ),
    ]
    for variant in result[backends[0]]["service"]:
        rows.append(
            (
                f"service nearest {variant}: p50 / p99 / max ms (mean radius km)",
                " | ".join(
                    "{p50_ms} / {p99_ms} / {max_ms} ({mean_radius_km})".format(
                        **result[b]["service"][variant]
                    )
                    for b in backends
                ),
            )
        )
    rows.append(
        (
            "HTTP GET /v1/stores/nearest limit=10: p50 / p99 ms",
            " | ".join("{p50_ms} / {p99_ms}".format(**result[b]["http_limit10"]) for b in backends),
        )
    )
    rows.append(
        (
            "store check per purchase, µs: 10,000 stores / no stores",
            " | ".join("{stores} / {plain}".format(**result[b]["check_us"]) for b in backends),
        )
    )
    for label, key in (
        ("no stores", "purchases_without_stores"),
        (f"{args.stores} stores", "purchases_with_stores"),
    ):
        rows.append(
            (
                f"purchases/s per round, p50 / p99 ms ({label}, 16 connections)",
                " | ".join(
                    ", ".join(
                        "{ok_rate}/s {p50_ms}/{p99_ms} ({errors} errors)".format(**r)
                        for r in result[b][key]
                    )
                    for b in backends
                ),
            )
        )
    print_table("Stores: the nearest search and the purchase check", rows)
    print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
