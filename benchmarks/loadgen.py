"""A small HTTP/1.1 load generator for the Kopilka API (raw asyncio sockets, keep-alive).

Runs in its own process so that its CPU use is separate from the server's and can be
reported. It only ever connects to 127.0.0.1. Every loop is bounded by a deadline and a
request count.

Modes:
  members  register --members members (external ids bench-m-0 … bench-m-N-1)
  closed   --connections connections, each sending the next purchase as soon as the last
           answer arrived, for --seconds (after --warmup seconds that are not counted)
  open     purchases at a fixed --rate (open loop: request i is due at start + i/rate);
           latency is measured from the due time, so a backlog shows up as latency

Prints one JSON line with the figures. Example:

  python benchmarks/loadgen.py closed --port 8000 --key kp_... --connections 16 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 10.0


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.find(b"\r\n", at + 2)
            body = await self.reader.readexactly(int(lower[at + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, body


def _post(port: int, path: str, key: str, body: str) -> bytes:
    payload = body.encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


# Baskets of 3 lines (the categories vary so that exclusions have something to do).
_BASKETS: list[tuple[str, int]] = []
for _n in range(16):
    _lines = [
        {
            "sku": f"SKU-{_n}-{i}",
            "name": f"Item {i}",
            "category": cat,
            "quantity": q,
            "unit_price": price,
            "discount": 0,
        }
        for i, (cat, q, price) in enumerate(
            [("food", 1 + _n % 3, 4_990 + 100 * _n), ("drinks", 1, 12_900), ("household", 2, 7_450)]
        )
    ]
    _total = sum(line["quantity"] * line["unit_price"] for line in _lines)
    _BASKETS.append((json.dumps(_lines, separators=(",", ":")), _total))


class PurchaseMaker:
    def __init__(self, port: int, key: str, members: int, tag: str, currency: str) -> None:
        self.port, self.key, self.members, self.tag = port, key, members, tag
        self.currency = currency
        self.occurred = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        self.random = random.Random(zlib.crc32(tag.encode()))

    def make(self, worker: int, seq: int) -> bytes:
        lines, total = _BASKETS[seq % len(_BASKETS)]
        member = self.random.randrange(self.members)
        body = (
            f'{{"member":{{"external_id":"bench-m-{member}"}},'
            f'"external_id":"{self.tag}-{worker}-{seq}","occurred_at":"{self.occurred}",'
            f'"store":"s{worker % 8}","channel":"pos","currency":"{self.currency}",'
            f'"lines":{lines},"total":{total}}}'
        )
        return _post(self.port, "/v1/purchases", self.key, body)


@dataclass
class Stats:
    started: float = 0.0
    finished: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, counted requests only
    service: list[float] = field(default_factory=list)  # open loop: from the actual send
    statuses: dict[str, int] = field(default_factory=dict)
    transport_errors: int = 0
    created_total: int = 0  # 201 answers, warm-up included
    first_error: str | None = None

    def status(self, code: int | str, body: bytes = b"") -> None:
        key = str(code)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if self.first_error is None and (not isinstance(code, int) or code >= 400):
            self.first_error = f"{code}: {body[:300]!r}"


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def _summary(stats: Stats, cpu: float) -> dict[str, Any]:
    seconds = max(stats.finished - stats.started, 1e-9)
    ok = sum(n for code, n in stats.statuses.items() if code.isdigit() and int(code) < 300)
    counted = len(stats.latencies)
    result: dict[str, Any] = {
        "requests": counted,
        "ok": ok,
        "errors": counted - ok,
        "transport_errors": stats.transport_errors,
        "created_total": stats.created_total,
        "statuses": stats.statuses,
        "seconds": round(seconds, 3),
        "rate": round(counted / seconds, 1),
        "ok_rate": round(ok / seconds, 1),
        "p50_ms": round(_pct(stats.latencies, 50) * 1000, 2),
        "p90_ms": round(_pct(stats.latencies, 90) * 1000, 2),
        "p99_ms": round(_pct(stats.latencies, 99) * 1000, 2),
        "max_ms": round(max(stats.latencies, default=0) * 1000, 2),
        "loadgen_cpu_pct": round(100 * cpu / seconds, 1),
        "first_error": stats.first_error,
    }
    if stats.service:
        result["service_p50_ms"] = round(_pct(stats.service, 50) * 1000, 2)
        result["service_p99_ms"] = round(_pct(stats.service, 99) * 1000, 2)
    return result


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _send(conn: Connection, data: bytes, stats: Stats | None) -> tuple[int, bytes] | None:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            return await conn.request(data)
    except (
        OSError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        TimeoutError,
        ValueError,
    ) as exc:
        conn.close()
        if stats is not None:
            stats.transport_errors += 1
            stats.status(type(exc).__name__)
        return None


async def register_members(args: argparse.Namespace) -> dict[str, Any]:
    todo = iter(range(args.members))
    stats = Stats()

    async def worker() -> None:
        conn = Connection(args.port)
        for i in todo:
            body = json.dumps({"external_id": f"bench-m-{i}", "name": f"Member {i}"})
            sent = time.perf_counter()
            answer = await _send(conn, _post(args.port, "/v1/members", args.key, body), stats)
            stats.latencies.append(time.perf_counter() - sent)
            if answer is not None:
                stats.status(answer[0], answer[1])
        conn.close()

    stats.started = time.perf_counter()
    cpu = _cpu()
    await asyncio.gather(*(worker() for _ in range(args.connections)))
    stats.finished = time.perf_counter()
    return _summary(stats, _cpu() - cpu)


async def closed_loop(args: argparse.Namespace) -> dict[str, Any]:
    maker = PurchaseMaker(args.port, args.key, args.members, args.tag, args.currency)
    stats = Stats()
    begin = time.perf_counter()
    counted_from = begin + args.warmup
    deadline = counted_from + args.seconds
    issued = itertools.count()
    cpu_at_start: list[float] = []

    async def worker(w: int) -> None:
        conn = Connection(args.port)
        for seq in itertools.count():
            now = time.perf_counter()
            if now >= deadline or next(issued) >= args.max_requests:
                break
            if now >= counted_from and not cpu_at_start:
                cpu_at_start.append(_cpu())
            data = maker.make(w, seq)
            sent = time.perf_counter()
            answer = await _send(conn, data, stats if sent >= counted_from else None)
            done = time.perf_counter()
            if answer is not None and answer[0] == 201:
                stats.created_total += 1
            if sent >= counted_from:
                stats.latencies.append(done - sent)
                if answer is not None:
                    stats.status(answer[0], answer[1])
        conn.close()

    await asyncio.gather(*(worker(w) for w in range(args.connections)))
    stats.started = counted_from
    stats.finished = time.perf_counter()
    return _summary(stats, _cpu() - (cpu_at_start[0] if cpu_at_start else _cpu()))


async def open_loop(args: argparse.Namespace) -> dict[str, Any]:
    maker = PurchaseMaker(args.port, args.key, args.members, args.tag, args.currency)
    stats = Stats()
    start = time.perf_counter() + 0.05
    total = int((args.warmup + args.seconds) * args.rate)
    first_counted = int(args.warmup * args.rate)
    slots = iter(range(min(total, args.max_requests)))
    cpu_at_start: list[float] = []

    async def worker(w: int) -> None:
        conn = Connection(args.port)
        for seq in slots:
            due = start + seq / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if seq == first_counted:
                cpu_at_start.append(_cpu())
            counted = seq >= first_counted
            sent = time.perf_counter()
            answer = await _send(conn, maker.make(w, seq), stats if counted else None)
            done = time.perf_counter()
            if answer is not None and answer[0] == 201:
                stats.created_total += 1
            if counted:
                stats.latencies.append(done - due)
                stats.service.append(done - sent)
                if answer is not None:
                    stats.status(answer[0], answer[1])
        conn.close()

    await asyncio.gather(*(worker(w) for w in range(args.connections)))
    stats.started = start + first_counted / args.rate
    stats.finished = time.perf_counter()
    result = _summary(stats, _cpu() - (cpu_at_start[0] if cpu_at_start else _cpu()))
    result["target_rate"] = args.rate
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["members", "closed", "open"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True, help="API key (Bearer)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=100.0, help="open loop: requests/s")
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--tag", default=f"p{int(time.time())}", help="external id prefix")
    parser.add_argument("--currency", default="RUB")
    args = parser.parse_args(argv)
    args.seconds = min(args.seconds, 600.0)
    args.warmup = min(args.warmup, 60.0)
    run = {"members": register_members, "closed": closed_loop, "open": open_loop}[args.mode]
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())
