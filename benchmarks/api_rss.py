"""Resident memory of an idle API process.

  .venv/bin/python benchmarks/api_rss.py [--requests 20]

Starts ``kopilka serve`` on a fresh SQLite file (program with default settings, admin key),
waits until GET /v1/health answers, makes a few requests (health, register members, record
purchases, read a member), sleeps 2 s and reads VmRSS from /proc/<pid>/status.

Target (DESIGN.md, "Performance targets"): the API process idles under 150 MB RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    Server,
    create_admin_key,
    http_get,
    http_post,
    install_sigterm_handler,
    log,
    machine,
    prepare_database,
    print_json,
    print_table,
    rss_kib,
)

SLUG = "rss"
TARGET_MB = 150


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="purchases to record")
    args = parser.parse_args()
    args.requests = max(1, min(args.requests, 10_000))
    install_sigterm_handler()
    info = machine()
    statuses: dict[str, int] = {}

    def count(status: int) -> None:
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    with tempfile.TemporaryDirectory(prefix="kopilka-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'rss.db'}"
        prepare_database(url, SLUG)
        key = create_admin_key(url, SLUG)
        with Server(url) as server:
            time.sleep(1)
            rss_started = rss_kib(server.pid)
            log(f"server pid {server.pid}: {rss_started // 1024} MB after start")
            count(http_get(server.port, "/v1/health")[0])
            occurred = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            members = max(1, args.requests // 4)
            for i in range(members):
                count(
                    http_post(
                        server.port,
                        "/v1/members",
                        {"external_id": f"rss-{i}", "name": f"Member {i}"},
                        key,
                    )[0]
                )
            for i in range(args.requests):
                body = {
                    "member": {"external_id": f"rss-{i % members}"},
                    "external_id": f"rss-p-{i}",
                    "occurred_at": occurred,
                    "store": "s1",
                    "channel": "pos",
                    "currency": "RUB",
                    "lines": [
                        {
                            "sku": "A",
                            "name": "A",
                            "category": "food",
                            "quantity": 2,
                            "unit_price": 15000,
                            "discount": 0,
                        }
                    ],
                    "total": 30000,
                }
                count(http_post(server.port, "/v1/purchases", body, key)[0])
            status, raw = http_post(server.port, "/v1/purchases/quote", body, key)
            count(status)
            member_id = json.loads(raw).get("member_id") if status == 200 else None
            if member_id:
                count(http_get(server.port, f"/v1/members/{member_id}", key)[0])
            count(http_get(server.port, "/v1/health")[0])
            time.sleep(2)
            rss = rss_kib(server.pid)
            peak = rss_kib(server.pid, "VmHWM")
    rss_mb, peak_mb, started_mb = rss / 1024, peak / 1024, rss_started / 1024
    print_table(
        "API process memory (SQLite, idle)",
        [
            ("date / machine", f"{info['date']}, {info['cpus']} cores, {info['cpu_model']}"),
            ("RSS after start MB", f"{started_mb:.1f}"),
            ("requests made (status: count)", ", ".join(f"{k}: {v}" for k, v in statuses.items())),
            (
                "RSS 2 s after the requests MB (target < 150)",
                f"{rss_mb:.1f} {'OK' if rss_mb < TARGET_MB else 'MISSED'}",
            ),
            ("peak RSS (VmHWM) MB", f"{peak_mb:.1f}"),
        ],
    )
    print_json(
        {
            "benchmark": "api_rss",
            **info,
            "rss_after_start_mb": round(started_mb, 1),
            "rss_idle_mb": round(rss_mb, 1),
            "vmhwm_mb": round(peak_mb, 1),
            "target_mb": TARGET_MB,
            "statuses": statuses,
        }
    )
    return 0 if rss_mb < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
