"""Segments over a large program: count and first page of a three-predicate segment, a
full refresh, and what keeping membership current costs per purchase event.

    .venv/bin/python benchmarks/segments.py --members 1000000 --purchases 10000000
    .venv/bin/python benchmarks/segments.py --sqlite --members 50000 --purchases 500000

Data is generated straight into the real tables (PostgreSQL: one INSERT … SELECT over
generate_series per table, in key order so that every index is filled at its end; SQLite:
multi-row inserts), then facts are built by the same batched rebuild as ``kopilka crm
rebuild-facts``, and the tables are vacuumed and analysed (what autovacuum does after a
bulk load). Purchases have no lines (the benchmark's predicates do not read them). Prints
its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import log, pg_url, print_table, psql, scratch_pg_database
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.crm.tasks import daily_facts, rebuild_program
from kopilka.db import make_engine, reading, transaction
from kopilka.kit.clock import clock
from kopilka.migrations.runner import upgrade
from kopilka.models import Member, MemberConsent, MemberTier, Purchase
from kopilka.models.base import table
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import program_service
from kopilka.segments.domain import parse_definition
from kopilka.segments.repository import segment_repository
from kopilka.segments.schemas import SegmentCreate
from kopilka.segments.service import scope_of, segment_service

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAYS = 730  # purchases spread over two years
THREE = {
    "all": [
        {"type": "purchases", "measure": "spend", "last_days": 90, "min": 300_000},
        {"type": "tier", "tiers": ["gold"]},
        {"type": "consent", "channel": "email"},
    ]
}
# The same with a window that is not stored: the daily buckets are summed.
THREE_60 = {
    "all": [
        {"type": "purchases", "measure": "spend", "last_days": 60, "min": 200_000},
        {"type": "tier", "tiers": ["gold"]},
        {"type": "consent", "channel": "email"},
    ]
}
TEN = [
    THREE,
    {"type": "purchases", "measure": "count", "min": 20},
    {"type": "days_since_last_purchase", "min": 60},
    {"type": "tier", "tiers": ["gold"]},
    {"type": "consent", "channel": "email"},
    {"type": "purchases", "measure": "spend", "last_days": 30, "min": 100_000},
    {"type": "rfm_group", "groups": ["champions", "loyal"]},
    {"type": "tenure_days", "min": 365},
    {"type": "points_balance", "min": 1},
    {"type": "purchases", "measure": "average_check", "min": 150_000},
]
SETTINGS = {
    "money_currency": "RUB",
    "currencies": [{"code": "points"}],
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
    "tiers": {
        "levels": [
            {"id": "silver", "name": "Silver"},
            {"id": "gold", "name": "Gold", "invitation_only": True},
        ]
    },
}


def member_id(n: int) -> uuid.UUID:
    return uuid.UUID(int=(1 << 96) + n)


async def generate_pg(
    engine: AsyncEngine, program: uuid.UUID, members: int, purchases: int
) -> None:
    p = str(program)
    member = "('00000001-0000-0000-0000-' || lpad(to_hex({}), 12, '0'))::uuid"
    async with transaction(engine) as conn:
        # Sorting ten million keys in memory rather than on disk.
        await conn.execute(text("SET LOCAL work_mem = '512MB'"))
        await conn.execute(
            text(
                "INSERT INTO members (id, program_id, name, consents, status, tags, attributes,"
                f" created_at, updated_at) SELECT {member.format('i')}, :p, 'Member ' || i,"
                " '{}'::jsonb, 'active', '[]'::jsonb, '{}'::jsonb,"
                " CAST(:now AS timestamptz) - (i % 1000) * interval '1 day', :now"
                " FROM generate_series(1, :n) i"
            ),
            {"p": p, "now": NOW, "n": members},
        )
        await conn.execute(
            text(
                "INSERT INTO member_tiers (member_id, program_id, tier, earned, updated_at)"
                " SELECT id, program_id, 'gold', 'gold', :now FROM members"
                " WHERE program_id = :p AND random() < 0.2 ORDER BY id"
            ),
            {"p": p, "now": NOW},
        )
        await conn.execute(
            text(
                "INSERT INTO member_consents (member_id, channel, purpose, program_id, status,"
                " source, updated_at) SELECT id, 'email', 'marketing', program_id, 'granted',"
                " 'bench', :now FROM members WHERE program_id = :p AND random() < 0.5"
                " ORDER BY id"
            ),
            {"p": p, "now": NOW},
        )
        # Each purchase goes to a member by a hash of its number (about ten each, unevenly),
        # and rows arrive in member order with ids and external ids that sort the same way:
        # every index of purchases grows at its end, as it would over years of trading.
        await conn.execute(
            text(
                "INSERT INTO purchases (id, program_id, member_id, external_id, occurred_at,"
                " store, channel, currency, total, returned_amount, earned, reversed,"
                " request_hash, answer, created_at)"
                " SELECT (lpad(to_hex(k), 16, '0') || lpad(to_hex(i), 16, '0'))::uuid, :p,"
                f" {member.format('k')}, 'b' || lpad(k::text, 10, '0') || lpad(i::text, 10, '0'),"
                " CAST(:now AS timestamptz) - (random() * :days) * interval '1 day',"
                " 'store-' || (i % 50), 'pos', 'RUB', 1000 + (i::bigint * 7919) % 200000, 0,"
                " '{}'::jsonb, '{}'::jsonb, '', '{}'::jsonb, :now"
                " FROM (SELECT i, 1 + abs(hashint4(i)::bigint) % :n AS k"
                " FROM generate_series(1, :m) i ORDER BY k, i) g"
            ),
            {"p": p, "now": NOW, "n": members, "m": purchases, "days": DAYS},
        )


async def vacuum(engine: AsyncEngine) -> None:
    """VACUUM ANALYZE (outside a transaction): fresh statistics, and the visibility map
    that lets index-only scans skip the table."""
    async with engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        for name in ("members", "member_tiers", "member_consents", "purchases"):
            await conn.execute(text(f"VACUUM ANALYZE {name}"))
        for name in ("member_days", "member_facts", "segment_members"):
            await conn.execute(text(f"VACUUM ANALYZE {name}"))


async def generate_sqlite(
    engine: AsyncEngine, program: uuid.UUID, members: int, purchases: int
) -> None:
    rng = random.Random(7)
    m, pt, tiers, consents = table(Member), table(Purchase), table(MemberTier), table(MemberConsent)
    async with transaction(engine) as conn:
        for start in range(1, members + 1, 5000):
            rows: list[dict[str, Any]] = [
                {
                    "id": member_id(i),
                    "program_id": program,
                    "name": f"Member {i}",
                    "consents": {},
                    "status": "active",
                    "tags": [],
                    "attributes": {},
                    "created_at": NOW - timedelta(days=i % 1000),
                    "updated_at": NOW,
                }
                for i in range(start, min(members + 1, start + 5000))
            ]
            await conn.execute(insert(m), rows)
            gold = [r["id"] for r in rows if rng.random() < 0.2]
            if gold:
                await conn.execute(
                    insert(tiers),
                    [
                        {
                            "member_id": g,
                            "program_id": program,
                            "tier": "gold",
                            "earned": "gold",
                            "updated_at": NOW,
                        }
                        for g in gold
                    ],
                )
            await conn.execute(
                insert(consents),
                [
                    {
                        "member_id": r["id"],
                        "channel": "email",
                        "purpose": "marketing",
                        "program_id": program,
                        "status": "granted",
                        "source": "bench",
                        "text_version": None,
                        "updated_at": NOW,
                    }
                    for r in rows
                    if rng.random() < 0.5
                ],
            )
        for start in range(0, purchases, 5000):
            await conn.execute(
                insert(pt),
                [
                    {
                        "id": uuid.uuid4(),
                        "program_id": program,
                        "member_id": member_id(1 + rng.randrange(members)),
                        "external_id": f"b{i}",
                        "occurred_at": NOW - timedelta(days=rng.random() * DAYS),
                        "store": f"store-{i % 50}",
                        "channel": "pos",
                        "currency": "RUB",
                        "total": 1000 + (i * 7919) % 200000,
                        "returned_amount": 0,
                        "context": None,
                        "payments": None,
                        "earned": {},
                        "reversed": {},
                        "request_hash": "",
                        "answer": {},
                        "created_at": NOW,
                    }
                    for i in range(start, min(purchases, start + 5000))
                ],
            )


async def timed(label: str, rows: list[tuple[str, Any]], work: Any) -> Any:
    started = time.perf_counter()
    result = await work
    seconds = time.perf_counter() - started
    rows.append((label, f"{seconds * 1000:.0f} ms"))
    log(f"{label}: {seconds:.2f} s")
    return result


async def run(url: str, members: int, purchases: int, sqlite: bool, reuse: bool) -> None:
    engine = make_engine(url, pool_size=4)
    rows: list[tuple[str, Any]] = [("members", members), ("purchases", purchases)]
    with clock.frozen(NOW):
        if reuse:
            async with reading(engine) as conn:
                program = await program_service.get_by_slug(conn, "bench")
            rows = [("data and facts", "kept from an earlier run (--keep)")]
        else:
            async with transaction(engine) as conn:
                program = await program_service.create(
                    conn,
                    slug="bench",
                    name="Bench",
                    settings=ProgramSettings.model_validate(SETTINGS),
                )
            generate = generate_sqlite if sqlite else generate_pg
            await timed("generate data", rows, generate(engine, program.id, members, purchases))
            report = await timed(
                "rebuild facts (batches of 20,000 members: buckets, facts; then RFM)",
                rows,
                rebuild_program(engine, program.id, NOW),
            )
            rows.append(
                (
                    "  buckets / facts rows / scored",
                    f"{report.days} / {report.facts} / {report.scored}",
                )
            )
        if not sqlite:
            await timed("vacuum analyze", rows, vacuum(engine))
        scope = scope_of(program, NOW)
        for name, definition in (("3-predicate", THREE), ("3-predicate, 60-day window", THREE_60)):
            node = parse_definition(definition)
            for attempt in ("count (cold)", "count"):
                async with reading(engine) as conn:
                    found = await timed(
                        f"{name} {attempt}", rows, segment_repository.count(conn, scope, node)
                    )
            rows.append(("  members matched", found))
            for attempt in ("first page (100, cold)", "first page (100)"):
                async with reading(engine) as conn:
                    await timed(
                        f"{name} {attempt}",
                        rows,
                        segment_repository.page(conn, scope, node, None, 100),
                    )
        async with transaction(engine) as conn:
            # Nine more dynamic segments (the three-predicate one below is the tenth).
            for n, definition in enumerate(TEN[1:], start=1):
                await timed(
                    f"create segment s{n} (first full evaluation, its events)",
                    rows,
                    segment_service.create(
                        conn,
                        program,
                        SegmentCreate(key=f"s{n}", name=f"S{n}", definition=definition),
                        NOW,
                    ),
                )
            await timed(
                "create 3-predicate segment (first full evaluation)",
                rows,
                segment_service.create(
                    conn, program, SegmentCreate(key="three", name="3", definition=THREE), NOW
                ),
            )
        for attempt in ("full refresh of it (no changes)", "again"):
            async with transaction(engine) as conn:
                await timed(attempt, rows, segment_service.refresh(conn, program, "three", NOW))
        async with transaction(engine) as conn:
            await timed(
                "full refresh of all 10 (no changes)",
                rows,
                segment_service.refresh_all(conn, program, NOW),
            )
        for label, first in (("first", 1), ("second", 1001)):
            batch = [member_id(i) for i in range(first, first + 500)]

            async def consume(batch: list[uuid.UUID] = batch) -> int:
                async with transaction(engine) as conn:
                    return await segment_service.members_changed(
                        conn, program.id, batch, NOW, purchases=True
                    )

            started = time.perf_counter()
            await consume()
            per = (time.perf_counter() - started) / len(batch)
            rows.append(
                (
                    f"consumer, 500-member batch ({label}), 10 segments, per purchase event",
                    f"{per * 1000:.2f} ms",
                )
            )
    # The next day: the daily job moves on the windows a purchase day has left.
    later = NOW + timedelta(days=1)
    with clock.frozen(later):
        job = await timed(
            "daily facts job, next day (move windows, RFM)",
            rows,
            daily_facts(engine, program.id, later),
        )
        rows.append(("  windows moved / scored", f"{job.windows} / {job.scored}"))
    await engine.dispose()
    print_table(f"Segments ({'SQLite' if sqlite else 'PostgreSQL'})", rows)


@contextmanager
def database(keep: bool) -> Iterator[str]:
    """A scratch database, dropped at the end unless ``keep``."""
    if not keep:
        with scratch_pg_database("segments") as name:
            yield name
        return
    name = f"kopilka_bench_segments_{secrets.token_hex(4)}"
    psql(f'CREATE DATABASE "{name}"')
    log(f"database {name} is kept: measure again with --reuse {name}")
    yield name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument(
        "--keep", action="store_true", help="PostgreSQL: keep the database (its name is logged)."
    )
    parser.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="PostgreSQL: measure again on a database an earlier --keep run generated.",
    )
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{folder}/bench.db"
            upgrade(url)
            asyncio.run(run(url, args.members, args.purchases, True, False))
        return
    if args.reuse:
        url = pg_url(args.reuse)
        # Segments of the earlier run go: the run creates its own.
        psql("DELETE FROM segment_members; DELETE FROM segments", args.reuse)
        asyncio.run(run(url, args.members, args.purchases, False, True))
        return
    with database(args.keep) as name:
        url = pg_url(name)
        upgrade(url)
        asyncio.run(run(url, args.members, args.purchases, False, False))


if __name__ == "__main__":
    main()
