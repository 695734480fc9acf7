"""Purchases over HTTP on PostgreSQL, side by side with pgbench TPC-B on the same machine.

  1. pgbench: ``pgbench -i -s SCALE`` on a scratch database, then
     ``pgbench -c C -j 2 -T SECONDS`` (the default TPC-B script) → TPS.
  2. ``kopilka serve`` (one process per core) on a fresh migrated database with a program
     (1 point per 100 minor units, a three-tier ladder on 12 months of spend or visits and
     the tier rate; ``--without-tiers``: base earning only) and an admin key; MEMBERS
     members registered over the API; then POST /v1/purchases from C keep-alive
     connections (closed loop) for SECONDS → purchases/s, latency percentiles, errors.
     The load generator is a separate process (benchmarks/loadgen.py) and its CPU use is
     reported.
  3. The same at half the measured rate, open loop → p50/p99 latency from the due time.
  4. ``kopilka ledger verify`` on that database, and a row count check.

Targets (DESIGN.md, "Performance targets"): purchases/s ≥ 0.3 × pgbench TPS;
p99 < 25 ms at half that load.

  .venv/bin/python benchmarks/http_purchases.py [--seconds 20] [--connections 16]

``--profile`` adds a short run with the server under py-spy (``--gil``; or cProfile if
py-spy is not installed) and prints where the server's time goes.
Scratch databases are named kopilka_bench_* and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    CpuMeter,
    Server,
    create_admin_key,
    install_sigterm_handler,
    ledger_verify,
    log,
    machine,
    pg_url,
    prepare_database,
    print_json,
    print_table,
    psql,
    rss_kib,
    scratch_pg_database,
)

HERE = Path(__file__).resolve().parent
SLUG = "bench"

# The full path of DESIGN.md: rules, ledger, a tier ladder (every purchase is measured
# against the member's last 12 months and may upgrade them) and the tier rate.
TIERED_SETTINGS = """\
money_currency: RUB
earning:
  - {id: base, type: per_amount, points: 1, per: 100}
rules:
  - id: tier-rate
    effects: [{type: tier_multiplier, of: [base]}]
tiers:
  levels:
    - {id: base, name: Base}
    - id: silver
      name: Silver
      qualify: {spend: 500000, visits: 10}
      benefits: {earn_rate_percent: 125}
    - {id: gold, name: Gold, qualify: {spend: 2000000}, benefits: {earn_rate_percent: 150}}
"""


def run_pgbench(clients: int, seconds: int, scale: int) -> dict[str, Any]:
    base = ["pgbench", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER]
    with scratch_pg_database("pgbench") as db:
        log(f"pgbench -i -s {scale} {db}")
        subprocess.run(
            [*base, "-i", "-q", "-s", str(scale), db], check=True, capture_output=True, timeout=600
        )
        log(f"pgbench -c {clients} -j 2 -T {seconds}")
        meter = CpuMeter({})
        meter.start()
        out = subprocess.run(
            [*base, "-c", str(clients), "-j", "2", "-T", str(seconds), db],
            check=True,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        cpu = meter.stop()
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    if tps is None:
        raise RuntimeError(f"cannot read pgbench output:\n{out.stdout}\n{out.stderr}")
    return {
        "tps": round(float(tps.group(1)), 1),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "machine_busy_pct": cpu["machine_busy_pct"],
    }


def loadgen(mode: str, server: Server, key: str, args: argparse.Namespace, **extra: Any) -> dict:
    command = [
        sys.executable,
        str(HERE / "loadgen.py"),
        mode,
        "--port",
        str(server.port),
        "--key",
        key,
        "--connections",
        str(args.connections),
        "--members",
        str(args.members),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
    ]
    for name, value in extra.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    # The load generator reports its own CPU use (it has exited when the meter stops).
    meter = CpuMeter({"server": server.pid})
    meter.start()
    try:
        stdout, _ = proc.communicate(timeout=args.seconds + args.warmup + 300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    cpu = meter.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    # Over the whole run including warm-up: the share of each process in the machine.
    result.update(cpu)
    return result


def _is_service_code(frame: str) -> bool:
    """A frame of kopilka below the HTTP route (not the CLI, the app factory, the metrics
    middleware that wraps every request)."""
    return "kopilka/" in frame and not any(
        part in frame
        for part in (
            "kopilka/cli/",
            "kopilka/__main__",
            "kopilka/app.py",
            "kopilka/system/metrics.py",
        )
    )


PROFILE_LAYERS = (
    # (label, test on one sampled stack); the first matching label takes the sample.
    (
        "SQLAlchemy: connection checkout, BEGIN, COMMIT, return",
        lambda fr, root: (
            (
                root
                and any(
                    k in f
                    for f in fr
                    for k in (
                        "Engine.connect",
                        "Connection.close",
                        "Connection.begin",
                        "_ConnectionFairy",
                        "commit",
                        "Connection.connection",
                    )
                )
            )
            or any(
                k in f
                for f in fr
                for k in (
                    "AsyncTransaction",
                    "AsyncConnection.start",
                    "AsyncConnection.close",
                    "AsyncEngine.begin",
                    "AsyncEngine.connect",
                )
            )
        ),
    ),
    (
        "SQLAlchemy: execute (cache key, compiled cache, params, result)",
        lambda fr, root: root and any("sqlalchemy/" in f for f in fr),
    ),
    (
        "SQLAlchemy: AsyncConnection.execute + asyncpg driver",
        lambda fr, root: any(
            "AsyncConnection.execute (sqlalchemy" in f or "asyncpg/" in f for f in fr
        ),
    ),
    (
        "SQLAlchemy: building select()/insert() objects per call",
        lambda fr, root: (
            any(_is_service_code(f) for f in fr) and any("sqlalchemy/sql/" in f for f in fr)
        ),
    ),
    (
        "kopilka: service code, rules, ledger maths, response models",
        lambda fr, root: any(_is_service_code(f) for f in fr),
    ),
    (
        "FastAPI/Starlette: routing, dependencies, body validation, threadpool hop",
        lambda fr, root: any("fastapi/" in f or "starlette/" in f or "anyio/" in f for f in fr),
    ),
    ("uvicorn, h11, asyncio event loop, other", lambda fr, root: True),
)


def _py_spy_layers(raw: Path) -> list[tuple[str, float]]:
    stacks = []
    for line in raw.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if "(" in frames:
            stacks.append((frames.split(";"), int(count)))
    total = sum(c for _, c in stacks) or 1
    shares: dict[str, int] = {label: 0 for label, _ in PROFILE_LAYERS}
    for frames, count in stacks:
        # SQLAlchemy runs its synchronous execution path in a greenlet: those samples have
        # their own root frame instead of the server's main stack.
        greenlet_root = not frames[0].startswith("<module>")
        for label, test in PROFILE_LAYERS:
            if test(frames, greenlet_root):
                shares[label] += count
                break
    return [(label, 100 * n / total) for label, n in shares.items()]


def profile_with_py_spy(
    py_spy: str, server: Server, key: str, args: argparse.Namespace
) -> tuple[list[str], int]:
    """py-spy (--gil: samples only while a thread holds the GIL) during a closed-loop run.
    ``--subprocesses``: with several workers, ``server.pid`` is uvicorn's supervisor, which
    only watches; the purchases are served by its children."""
    seconds = min(args.seconds, 10)
    raw = Path(tempfile.mkdtemp(prefix="kopilka-bench-")) / "serve.txt"
    command = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "closed",
        "--port",
        str(server.port),
        "--key",
        key,
        "--connections",
        str(args.connections),
        "--members",
        str(args.members),
        "--seconds",
        str(seconds + 2),
        "--warmup",
        "1",
        "--tag",
        f"prof{int(time.time())}",
    ]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        spy = subprocess.run(
            [
                py_spy,
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(seconds),
                "--rate",
                "200",
                "--gil",
                "--subprocesses",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        stdout, _ = load.communicate(timeout=seconds + 60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    created = json.loads(stdout.strip().splitlines()[-1])["created_total"]
    if spy.returncode != 0 or not raw.exists():
        return [f"py-spy failed: {spy.stderr.strip()[:300]}"], created
    lines = [
        f"profile (py-spy --gil, {seconds} s under the same closed-loop load), "
        "share of the server's GIL-holding samples:"
    ]
    lines += [f"  {share:5.1f}%  {label}" for label, share in _py_spy_layers(raw)]
    raw.unlink(missing_ok=True)
    raw.parent.rmdir()
    return lines, created


def profile_with_cprofile(database_url: str, key: str, args: argparse.Namespace) -> list[str]:
    """A short closed-loop run with the server under cProfile; own time by package."""
    out = Path(tempfile.mkdtemp(prefix="kopilka-bench-")) / "serve.pstats"
    wrapper = [sys.executable, "-m", "cProfile", "-o", str(out)]
    seconds = min(args.seconds, 10)
    with Server(database_url, wrapper=wrapper) as server:
        short = argparse.Namespace(**{**vars(args), "seconds": seconds, "warmup": 1})
        loadgen("closed", server, key, short, tag=f"prof{int(time.time())}")
    for _ in range(50):
        if out.exists():
            break
        time.sleep(0.1)
    stats = pstats.Stats(str(out))
    total = stats.total_tt  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (file, _, _), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        name = "builtins and C calls (sockets, epoll, greenlet)"
        for marker in (
            "kopilka",
            "sqlalchemy",
            "asyncpg",
            "pydantic",
            "fastapi",
            "starlette",
            "uvicorn",
            "h11",
            "asyncio",
            "json",
            "anyio",
        ):
            if f"/{marker}/" in file or f"/{marker}_" in file:
                name = marker
                break
        groups[name] = groups.get(name, 0.0) + tt
    lines = [
        f"profile (cProfile, {seconds} s of closed-loop load, startup included; "
        "py-spy not found): own time by package"
    ]
    for name, tt in sorted(groups.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {100 * tt / total:5.1f}%  {name}")
    out.unlink(missing_ok=True)
    out.parent.rmdir()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of each measured run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16, help="C, also pgbench -c")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--scale", type=int, default=10, help="pgbench -s")
    parser.add_argument("--skip-pgbench", action="store_true")
    parser.add_argument(
        "--without-tiers",
        action="store_true",
        help="the bare program (base earning only) instead of one with a tier ladder",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes (kopilka serve --workers); default: one per core",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the server (py-spy if found, else cProfile)",
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy binary")
    args = parser.parse_args()
    args.seconds = max(1, min(args.seconds, 300))
    install_sigterm_handler()
    info = machine()
    result: dict[str, Any] = {
        "benchmark": "http_purchases",
        **info,
        "connections": args.connections,
        "seconds": args.seconds,
    }

    result["tiers"] = not args.without_tiers
    with scratch_pg_database("http") as db:
        url = pg_url(db)
        log(f"kopilka db upgrade / program create on {db}")
        settings = None
        if not args.without_tiers:
            settings = Path(tempfile.mkdtemp(prefix="kopilka-bench-")) / "settings.yaml"
            settings.write_text(TIERED_SETTINGS)
        prepare_database(url, SLUG, settings)
        key = create_admin_key(url, SLUG)
        with Server(url, workers=args.workers) as server:
            log(f"server pid {server.pid} on port {server.port}; registering {args.members}")
            members = loadgen("members", server, key, args)
            if members["ok"] != args.members:
                raise RuntimeError(f"member registration failed: {members}")
            log(f"closed loop: {args.connections} connections, {args.seconds} s")
            closed = loadgen("closed", server, key, args, tag=f"c{int(time.time())}")
            half = max(1.0, round(closed["ok_rate"] / 2, 1))
            log(f"open loop at {half}/s for {args.seconds} s")
            paced = loadgen("open", server, key, args, rate=half, tag=f"o{int(time.time())}")
            server_rss_mb = rss_kib(server.pid) // 1024
            sent_ok = closed["created_total"] + paced["created_total"]
            profile: list[str] = []
            if args.profile and args.py_spy:
                log("profiling the server with py-spy")
                profile, created = profile_with_py_spy(args.py_spy, server, key, args)
                sent_ok += created
        log("kopilka ledger verify")
        verified, verify_output = ledger_verify(url, SLUG)
        stored = int(psql("SELECT count(*) FROM purchases", db))
        if args.profile and not args.py_spy:
            log("profiling the server with cProfile")
            profile = profile_with_cprofile(url, key, args)
    # pgbench last: its updates leave autovacuum work behind, which would otherwise run during
    # the purchases and be counted against them.
    pgbench = None if args.skip_pgbench else run_pgbench(args.connections, args.seconds, args.scale)

    ratio = round(closed["ok_rate"] / pgbench["tps"], 3) if pgbench else None
    per = max(closed["ok_rate"], 1e-9) / 1000  # CPU % ÷ this = CPU ms per purchase
    server_ms = round(closed["server_cpu_pct"] / 100 / per, 2)
    server_sys_ms = round(closed["server_sys_cpu_pct"] / 100 / per, 2)
    postgres_ms = round(closed["postgres_cpu_pct"] / 100 / per, 2)
    # Everything else on the (shared) machine, in % of one core.
    others = round(
        closed["machine_busy_pct"] * (info["cpus"] or 1)
        - closed["server_cpu_pct"]
        - closed["postgres_cpu_pct"]
        - closed["loadgen_cpu_pct"],
        1,
    )
    result.update(
        {
            "pgbench_tps": pgbench["tps"] if pgbench else None,
            "pgbench_latency_avg_ms": pgbench["latency_avg_ms"] if pgbench else None,
            "purchases_per_s": closed["ok_rate"],
            "ratio_to_pgbench": ratio,
            "ratio_target": 0.3,
            "closed_p50_ms": closed["p50_ms"],
            "closed_p90_ms": closed["p90_ms"],
            "closed_p99_ms": closed["p99_ms"],
            "closed_errors": closed["errors"],
            "closed_first_error": closed["first_error"],
            "server_cpu_pct": closed["server_cpu_pct"],
            "postgres_cpu_pct": closed["postgres_cpu_pct"],
            "server_cpu_ms_per_purchase": server_ms,
            "server_sys_cpu_ms_per_purchase": server_sys_ms,
            "postgres_cpu_ms_per_purchase": postgres_ms,
            "loadgen_cpu_pct": closed["loadgen_cpu_pct"],
            "machine_busy_pct": closed["machine_busy_pct"],
            "other_processes_cpu_pct": others,
            "pgbench_machine_busy_pct": pgbench["machine_busy_pct"] if pgbench else None,
            "paced_target_rate": half,
            "paced_rate": paced["ok_rate"],
            "paced_p50_ms": paced["p50_ms"],
            "paced_p99_ms": paced["p99_ms"],
            "paced_service_p99_ms": paced.get("service_p99_ms"),
            "paced_errors": paced["errors"],
            "p99_target_ms": 25,
            "member_registration_per_s": members["ok_rate"],
            "server_rss_mb_after": server_rss_mb,
            "ledger_verify_ok": verified,
            "purchases_stored": stored,
            "purchases_answered_201": sent_ok,
        }
    )

    rows = [
        ("date / machine", f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}"),
        ("program", "base earning only" if args.without_tiers else "base earning, tier ladder"),
        (
            f"pgbench TPC-B (-c {args.connections} -j 2 -T {args.seconds} -s {args.scale})",
            f"{result['pgbench_tps']} TPS (machine {pgbench['machine_busy_pct']} % busy)"
            if pgbench
            else "skipped",
        ),
        (f"purchases/s (closed loop, C={args.connections})", closed["ok_rate"]),
        (
            "ratio purchases/s ÷ pgbench TPS (target ≥ 0.3)",
            f"{ratio} {'OK' if ratio and ratio >= 0.3 else 'MISSED'}" if ratio else "n/a",
        ),
        (
            "closed loop latency p50 / p90 / p99 ms",
            f"{closed['p50_ms']} / {closed['p90_ms']} / {closed['p99_ms']}",
        ),
        ("closed loop errors", f"{closed['errors']} of {closed['requests']}"),
        (
            "CPU % of a core: server / postgres / loadgen / others",
            f"{closed['server_cpu_pct']} / {closed['postgres_cpu_pct']} / "
            f"{closed['loadgen_cpu_pct']} / {others} "
            f"(machine {closed['machine_busy_pct']} % busy of {info['cpus']} cores)",
        ),
        (
            "CPU ms per purchase: server (of it kernel) / postgres",
            f"{server_ms} ({server_sys_ms}) / {postgres_ms}",
        ),
        ("paced at half rate: target / achieved /s", f"{half} / {paced['ok_rate']}"),
        (
            "paced latency p50 / p99 ms (target p99 < 25)",
            f"{paced['p50_ms']} / {paced['p99_ms']} {'OK' if paced['p99_ms'] < 25 else 'MISSED'}",
        ),
        ("paced errors", f"{paced['errors']} of {paced['requests']}"),
        ("member registration /s", members["ok_rate"]),
        ("server RSS after the runs MB", server_rss_mb),
        ("kopilka ledger verify", "ok" if verified else "FAILED"),
        ("purchases stored / answered 201", f"{stored} / {sent_ok}"),
    ]
    print_table("HTTP purchases on PostgreSQL", rows)
    if not verified:
        print(verify_output)
    for line in profile:
        print(line)
    print_json(result)
    return 0 if verified and stored == sent_ok else 1


if __name__ == "__main__":
    sys.exit(main())
