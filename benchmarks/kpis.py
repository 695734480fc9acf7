"""The program's KPIs over a large program: each KPI answer (as a whole, by tier, store,
month and channel; retention by cohort), median of several runs; the rebuild of the
aggregates; and the consumer's work on a batch of purchase events.

    .venv/bin/python benchmarks/kpis.py --members 1000000 --purchases 10000000
    .venv/bin/python benchmarks/kpis.py --keep        # keep the database, then:
    .venv/bin/python benchmarks/kpis.py --reuse kopilka_bench_kpis_… [--rebuild]

PostgreSQL only (a scratch database ``kopilka_bench_kpis_…``, dropped at the end). Data is
generated straight into the core's tables with INSERT … SELECT over generate_series: members
(a fifth silver, a twentieth gold), purchases over two years (one in ten without a member,
50 stores, two channels, the tier after each in its answer), a return for one purchase in
fifty, and an earn entry for one member purchase in ten (the points aggregate is one row per
day whatever the ledger's size). The member facts are derived set-wise the same way; then
the KPI aggregates are built by the same batched rebuild as ``kopilka analytics
rebuild-kpis``, the tables vacuumed and analysed, and each answer timed. Prints its figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import log, pg_url, print_table, psql, scratch_pg_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.kpi_report_service import kpi_report_service
from kopilka.analytics.kpi_service import kpi_service
from kopilka.analytics.kpi_tasks import rebuild_program
from kopilka.analytics.liability_service import liability_service
from kopilka.analytics.tasks import snapshot_program
from kopilka.db import make_engine, reading, transaction
from kopilka.kit.clock import clock
from kopilka.migrations.runner import upgrade
from kopilka.outbox import events as ev
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import ProgramContext, program_service

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAYS = 730
RUNS = 5
CONSUMER_BATCHES = (100, 500)
SETTINGS = {
    "money_currency": "RUB",
    "timezone": "Europe/Moscow",
    "currencies": [{"code": "points"}],
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
    "tiers": {
        "levels": [
            {"id": "base", "name": "Base"},
            {"id": "silver", "name": "Silver", "qualify": {"spend": 1_000_000}},
            {"id": "gold", "name": "Gold", "invitation_only": True},
        ]
    },
}
MEMBER = "('00000001-0000-0000-0000-' || lpad(to_hex({}), 12, '0'))::uuid"
TIER = "CASE WHEN {0} % 20 = 0 THEN 'gold' WHEN {0} % 5 = 0 THEN 'silver' ELSE 'base' END"
STATEMENTS = [
    (
        "members",
        "INSERT INTO members (id, program_id, name, consents, status, tags, attributes,"
        f" created_at, updated_at) SELECT {MEMBER.format('i')}, :p, 'Member ' || i,"
        " '{}'::jsonb, CASE WHEN i % 100 = 0 THEN 'blocked' ELSE 'active' END, '[]'::jsonb,"
        " '{}'::jsonb, CAST(:now AS timestamptz) - (i % 1000) * interval '1 day', :now"
        " FROM generate_series(1, :n) i",
    ),
    (
        "member tiers",
        "INSERT INTO member_tiers (member_id, program_id, tier, earned, updated_at)"
        f" SELECT {MEMBER.format('i')}, :p, {TIER.format('i')}, {TIER.format('i')}, :now"
        " FROM generate_series(1, :n) i WHERE i % 5 = 0",
    ),
    # Each purchase goes to a member by a hash of its number (about ten each, unevenly;
    # one in ten to nobody), in member order, as years of trading would have filled them.
    (
        "purchases",
        "INSERT INTO purchases (id, program_id, member_id, external_id, occurred_at,"
        " store, channel, currency, total, returned_amount, earned, reversed,"
        " request_hash, answer, created_at)"
        " SELECT (lpad(to_hex(k), 16, '0') || lpad(to_hex(i), 16, '0'))::uuid, :p,"
        f" CASE WHEN i % 10 = 0 THEN NULL ELSE {MEMBER.format('k')} END,"
        " 'b' || lpad(k::text, 10, '0') || lpad(i::text, 10, '0'),"
        " CAST(:now AS timestamptz) - (random() * :days) * interval '1 day',"
        " 's' || (i % 50), CASE WHEN i % 4 = 0 THEN 'web' ELSE 'pos' END, 'RUB',"
        " 1000 + (i::bigint * 7919) % 200000, 0, '{}'::jsonb, '{}'::jsonb, '',"
        " CASE WHEN i % 10 = 0 THEN '{}'::jsonb ELSE jsonb_build_object('tier',"
        f" jsonb_build_object('tier', {TIER.format('k')})) END, :now"
        " FROM (SELECT i, 1 + abs(hashint4(i)::bigint) % :n AS k"
        " FROM generate_series(1, :m) i ORDER BY k, i) g",
    ),
    (
        "returns",
        "INSERT INTO purchase_returns (id, program_id, member_id, purchase_id, external_id,"
        " occurred_at, amount, reversed, not_clawed_back, created_at)"
        " SELECT md5('r' || id::text)::uuid, program_id, member_id, id, 'r' || external_id,"
        " occurred_at + interval '3 days', total / 2, '{}'::jsonb, '{}'::jsonb, :now"
        " FROM purchases WHERE program_id = :p AND abs(hashtext(external_id)) % 50 = 0",
    ),
    (
        "journal entries",
        "INSERT INTO journal_entries (id, program_id, member_id, kind, reference_type,"
        " reference_id, occurred_at, created_at) SELECT md5('e' || id::text)::uuid,"
        " program_id, member_id, 'earn', 'purchase', id::text, occurred_at, :now"
        " FROM purchases WHERE program_id = :p AND member_id IS NOT NULL"
        " AND abs(hashtext(external_id)) % 10 = 1",
    ),
    (
        "postings",
        "INSERT INTO postings (entry_id, program_id, member_id, account, currency, amount)"
        " SELECT md5('e' || id::text)::uuid, program_id, member_id, a.account, 'points',"
        " a.sign * (total / 100) FROM purchases, (VALUES ('issued', -1), ('available', 1))"
        " AS a(account, sign) WHERE program_id = :p AND member_id IS NOT NULL"
        " AND abs(hashtext(external_id)) % 10 = 1",
    ),
    # A lot per earn entry: a third spent, one in ten expired, the rest open until a year
    # after earning (what the liability report and its daily snapshot read).
    (
        "lots",
        "INSERT INTO lots (id, program_id, member_id, currency, entry_id, source_id, amount,"
        " remaining, expired, status, earned_at, available_at, expires_at)"
        " SELECT md5('l' || id::text)::uuid, program_id, member_id, 'points',"
        " md5('e' || id::text)::uuid, id::text, total / 100,"
        " CASE WHEN i % 10 = 0 OR i % 3 = 0 THEN 0 ELSE total / 100 END,"
        " CASE WHEN i % 10 = 0 THEN total / 100 ELSE 0 END, 'available',"
        " occurred_at, occurred_at, occurred_at + interval '1 year'"
        " FROM (SELECT *, row_number() OVER () AS i FROM purchases WHERE program_id = :p"
        " AND member_id IS NOT NULL AND abs(hashtext(external_id)) % 10 = 1) p",
    ),
    (
        "member facts",
        "INSERT INTO member_facts (member_id, program_id, first_purchase_at, last_purchase_at,"
        " purchases, spend, returns, returned, purchases_30d, spend_30d, purchases_90d,"
        " spend_90d, purchases_12m, spend_12m, windows_on, categories, stores, updated_at)"
        " SELECT member_id, :p, min(occurred_at), max(occurred_at), count(*), sum(total),"
        " 0, 0, 0, 0, 0, 0, 0, 0, CAST(:now AS date), '[]'::jsonb, '[]'::jsonb, :now"
        " FROM purchases WHERE program_id = :p AND member_id IS NOT NULL GROUP BY member_id",
    ),
]


async def generate(engine: AsyncEngine, program: ProgramContext, members: int, n: int) -> None:
    params = {"p": str(program.id), "now": NOW, "n": members, "m": n, "days": DAYS}
    for name, statement in STATEMENTS:
        started = time.perf_counter()
        async with transaction(engine) as conn:
            await conn.execute(text("SET LOCAL work_mem = '512MB'"))
            await conn.execute(text(statement), params)
        log(f"{name}: {time.perf_counter() - started:.1f} s")


async def vacuum(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        for name in (
            "members",
            "member_tiers",
            "member_facts",
            "purchases",
            "purchase_returns",
            "kpi_days",
            "kpi_point_days",
            "kpi_member_months",
            "kpi_members",
            "kpi_tier_days",
            "kpi_buyer_months",
        ):
            await conn.execute(text(f"VACUUM ANALYZE {name}"))


async def median_ms(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(first run, median of ``RUNS`` more) in milliseconds."""
    times = []
    for _ in range(RUNS + 1):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times[1:])


async def run(url: str, members: int, purchases: int, reuse: bool, rebuild: bool) -> None:
    engine = make_engine(url, pool_size=4)
    rows: list[tuple[str, Any]] = [("members", f"{members:,}"), ("purchases", f"{purchases:,}")]
    with clock.frozen(NOW):
        if reuse:
            async with reading(engine) as conn:
                program = await program_service.get_by_slug(conn, "bench")
            rows = [("data and aggregates", "kept from an earlier run (--keep)")]
            if rebuild:
                await aggregate(engine, program, rows)
        else:
            program = await build(engine, rows, members, purchases)
        await measure(engine, program, rows)
        await consumer(engine, program, members, rows)
    await engine.dispose()
    print_table(f"KPIs (PostgreSQL; median of {RUNS} runs after a first)", rows)


async def build(
    engine: AsyncEngine, rows: list[tuple[str, Any]], members: int, purchases: int
) -> ProgramContext:
    """The program, its data, and its aggregates rebuilt; tables vacuumed and analysed."""
    async with transaction(engine) as conn:
        program = await program_service.create(
            conn, slug="bench", name="Bench", settings=ProgramSettings.model_validate(SETTINGS)
        )
    started = time.perf_counter()
    await generate(engine, program, members, purchases)
    rows.append(("generate data", f"{time.perf_counter() - started:.0f} s"))
    await aggregate(engine, program, rows)
    return program


async def aggregate(
    engine: AsyncEngine, program: ProgramContext, rows: list[tuple[str, Any]]
) -> None:
    """The aggregates rebuilt (timed), the tables vacuumed and analysed, their sizes."""
    started = time.perf_counter()
    report = await rebuild_program(
        engine, program, progress=lambda done: log(f"rebuild: {done:,} members")
    )
    rows.append(
        (
            f"rebuild-kpis ({report.batches} batches)",
            f"{time.perf_counter() - started:.0f} s",
        )
    )
    await vacuum(engine)
    async with reading(engine) as conn:
        sizes = await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM kpi_days), (SELECT count(*) FROM"
                " kpi_point_days), (SELECT count(*) FROM kpi_member_months),"
                " (SELECT count(*) FROM kpi_tier_days), (SELECT count(*) FROM kpi_buyer_months)"
            )
        )
        counts = sizes.one()
    rows.append(
        (
            "aggregate rows: days / point days / member months / tier days / buyer months",
            " / ".join(f"{n:,}" for n in counts),
        )
    )


async def consumer(
    engine: AsyncEngine, program: ProgramContext, members: int, rows: list[tuple[str, Any]]
) -> None:
    """The ``analytics.kpis`` consumer's work on batches of purchase events of random
    members (their rows worked out again, the difference added), each batch in a
    transaction rolled back so the data stays as it was."""
    rng = random.Random(7)
    for size in CONSUMER_BATCHES:
        batch = [
            ev.PurchaseRecorded(
                program_id=program.id,
                member_id=UUID(f"00000001-0000-0000-0000-{rng.randrange(1, members):012x}"),
                occurred_at=NOW,
                purchase_id=uuid4(),
                external_id=f"c{i}",
                total=10_000,
                currency="RUB",
                store="s1",
                channel="pos",
                lines=1,
                categories=[],
                earned={},
                tier="base",
            )
            for i in range(size)
        ]

        async def apply(batch: list[ev.PurchaseRecorded] = batch) -> None:
            async with engine.connect() as conn:
                await conn.begin()
                await kpi_service.apply(conn, batch)
                await conn.rollback()

        first, median = await median_ms(apply)
        rows.append(
            (
                f"consumer, a batch of {size} purchase events",
                f"{median:.0f} ms ({size / median * 1000:,.0f} events/s; first {first:.0f} ms)",
            )
        )


async def liability(
    engine: AsyncEngine, program: ProgramContext, rows: list[tuple[str, Any]]
) -> None:
    """The live liability report (what a KPI answer would read without a snapshot), and the
    daily snapshot job, after which the KPI answers read its row."""

    async def live() -> Any:
        async with reading(engine, snapshot=True) as conn:
            return await liability_service.totals(conn, program, NOW)

    first, median = await median_ms(live)
    rows.append(
        ("liability worked out live (every lot)", f"{median:.0f} ms (first {first:.0f} ms)")
    )
    started = time.perf_counter()
    await snapshot_program(engine, program.id, NOW)
    rows.append(("liability-snapshot job", f"{(time.perf_counter() - started) * 1000:.0f} ms"))


async def measure(
    engine: AsyncEngine, program: ProgramContext, rows: list[tuple[str, Any]]
) -> None:
    await liability(engine, program, rows)
    cases: list[tuple[str, dict[str, Any]]] = [
        ("last 30 days", {}),
        *[(f"last 30 days, by {by}", {"by": by}) for by in ("tier", "store", "month", "channel")],
        ("12 months to today", {"start": date(2025, 6, 2), "end": date(2026, 6, 1)}),
        (
            "12 months to today, by tier",
            {"start": date(2025, 6, 2), "end": date(2026, 6, 1), "by": "tier"},
        ),
        (
            "12 months to today, by month",
            {"start": date(2025, 6, 2), "end": date(2026, 6, 1), "by": "month"},
        ),
        (
            "a past month",
            {"start": date(2026, 1, 1), "end": date(2026, 1, 31)},
        ),
        (
            "a past month, by tier",
            {"start": date(2026, 1, 1), "end": date(2026, 1, 31), "by": "tier"},
        ),
    ]
    for label, params in cases:

        async def answer(params: dict[str, Any] = params) -> Any:
            async with reading(engine, snapshot=True) as conn:
                return await kpi_report_service.kpis(conn, program, NOW, **params)

        first, median = await median_ms(answer)
        rows.append((f"KPIs, {label}", f"{median:.0f} ms (first {first:.0f} ms)"))
        log(f"{label}: {median:.0f} ms")

    async def cohorts() -> Any:
        async with reading(engine, snapshot=True) as conn:
            return await kpi_report_service.cohorts(conn, program, NOW)

    first, median = await median_ms(cohorts)
    rows.append(("cohorts, 12 months", f"{median:.0f} ms (first {first:.0f} ms)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument(
        "--keep", action="store_true", help="Keep the database (its name is logged)."
    )
    parser.add_argument(
        "--reuse", metavar="DATABASE", help="Measure again on a database --keep left."
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="With --reuse: upgrade its schema and rebuild the aggregates first.",
    )
    args = parser.parse_args()
    if args.reuse:
        if args.rebuild:
            upgrade(pg_url(args.reuse))
        asyncio.run(run(pg_url(args.reuse), args.members, args.purchases, True, args.rebuild))
        return
    if args.keep:
        name = f"kopilka_bench_kpis_{secrets.token_hex(4)}"
        psql(f'CREATE DATABASE "{name}"')
        log(f"database {name} is kept: measure again with --reuse {name}")
        upgrade(pg_url(name))
        asyncio.run(run(pg_url(name), args.members, args.purchases, False, False))
        return
    with scratch_pg_database("kpis") as name:
        url = pg_url(name)
        upgrade(url)
        asyncio.run(run(url, args.members, args.purchases, False, False))


if __name__ == "__main__":
    main()
