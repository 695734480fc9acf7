"""Journeys at scale on PostgreSQL: a daily birthday journey over a million members (about
2,700 birthdays a day), its dry run over the month before, and a segment-entry journey over
100,000 members; wall time and the process's peak memory for each part.

    .venv/bin/python benchmarks/journeys.py [--members 1000000] [--segment 100000]

Members are generated straight into the core's tables (INSERT … SELECT over generate_series,
birthdays spread over the year). The birthday journey (a branch on the tier, a points step,
a message) is entered by the daily ``journeys-entries`` job and its steps taken by the
frequent ``journeys-advance`` job, as the worker runs them. The segment journey is entered
the way production does it: a static segment's list is uploaded (one ``segment.entered``
event per member) and the ``journeys.runs`` consumer delivers them; then its steps run.
Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import log, pg_url, print_table, scratch_pg_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import make_engine, reading, transaction
from kopilka.journeys.dryrun_service import dry_run_service
from kopilka.journeys.service import journey_service
from kopilka.journeys.tasks import advance_program, enter_daily
from kopilka.kit.clock import clock
from kopilka.migrations.runner import upgrade
from kopilka.outbox.consumers import registry
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import ProgramContext, program_service
from kopilka.segments.schemas import ListUpload, SegmentCreate
from kopilka.segments.service import segment_service
from kopilka.worker.modules import import_consumers
from kopilka.worker.runner import Worker

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 07:00 in Moscow
TODAY = date(2026, 6, 1)
SETTINGS = {
    "money_currency": "RUB",
    "timezone": "Europe/Moscow",
    "currencies": [{"code": "points"}],
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
}
MEMBER = "('00000002-0000-0000-0000-' || lpad(to_hex(i), 12, '0'))::uuid"
MEMBERS = (
    "INSERT INTO members (id, program_id, name, consents, status, tags, attributes, birthday,"
    f" created_at, updated_at) SELECT {MEMBER}, :p, 'Member ' || i, '{{}}'::jsonb, 'active',"
    " '[]'::jsonb, '{}'::jsonb, DATE '1980-01-01' + (i % 365) + ((i % 40) * 365),"
    " CAST(:now AS timestamptz) - interval '400 days', :now FROM generate_series(1, :n) i"
)
BIRTHDAY = {
    "name": "Birthday",
    "entry": {"type": "date", "field": "birthday", "at": "10:00"},
    "reentry": {"policy": "always"},
    "steps": [
        {
            "id": "tier",
            "type": "branch",
            "condition": {"type": "tags", "tags": ["vip"]},
            "then": "vip",
        },
        {"id": "gift", "type": "points", "amount": 100, "reason": "birthday"},
        {"id": "greet", "type": "send", "kind": "birthday", "variables": {"bonus": 100}},
        {"id": "end", "type": "exit"},
        {"id": "vip", "type": "points", "amount": 500, "reason": "birthday"},
    ],
}
WELCOME_BACK = {
    "name": "Segment entry",
    "entry": {"type": "segment_entered", "segment": "bench-list"},
    "holdout_percent": 10,
    "steps": [
        {"id": "gift", "type": "points", "amount": 50},
        {"id": "mark", "type": "tag", "add": ["welcomed-back"]},
    ],
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed(rows: list[tuple[str, Any]], label: str, work: Any) -> Any:
    started = time.perf_counter()
    result = await work
    took = time.perf_counter() - started
    rows.append((label, f"{took:.1f} s (peak RSS {peak_mb():.0f} MB)"))
    log(f"{label}: {took:.1f} s")
    return result


async def publish(engine: AsyncEngine, program: ProgramContext, key: str, doc: Any) -> None:
    async with transaction(engine) as conn:
        await journey_service.create(conn, program, key, doc, NOW)
        await journey_service.publish(conn, program, key, NOW)


async def run(url: str, members: int, segment: int) -> None:
    engine = make_engine(url, pool_size=4)
    rows: list[tuple[str, Any]] = [("members", f"{members:,}")]
    with clock.frozen(NOW):
        async with transaction(engine) as conn:
            program = await program_service.create(
                conn, slug="bench", name="Bench", settings=ProgramSettings.model_validate(SETTINGS)
            )
            await conn.execute(text(MEMBERS), {"p": str(program.id), "now": NOW, "n": members})
        async with engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("VACUUM ANALYZE members"))
        await publish(engine, program, "birthday", BIRTHDAY)
        entered = await timed(
            rows,
            "birthday: journeys-entries (daily job)",
            enter_daily(engine, program.id, NOW, TODAY),
        )
        rows.append(("birthday: members entered", f"{entered.entered:,}"))
        at_ten = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
        with clock.frozen(at_ten):
            report = await timed(
                rows,
                "birthday: journeys-advance (steps)",
                advance_program(engine, program.id, at_ten),
            )
        rows.append(("birthday: runs / steps", f"{report.runs:,} / {report.steps:,}"))
        tried = await timed(rows, "birthday: dry run over May (31 days)", dry_run(engine, program))
        rows.append(
            (
                "birthday dry run: members / walked / entries",
                f"{tried.members:,} / {tried.walked:,} / {tried.entries:,}",
            )
        )
        await segment_journey(engine, program, segment, rows)
    await engine.dispose()
    print_table("Journeys (PostgreSQL)", rows)


async def dry_run(engine: AsyncEngine, program: ProgramContext) -> Any:
    """What the birthday journey would have done over the month before (nothing changes)."""
    async with reading(engine, snapshot=True) as conn:
        return await dry_run_service.of_journey(
            conn, program, "birthday", (date(2026, 5, 1), date(2026, 5, 31)), NOW
        )


async def segment_journey(
    engine: AsyncEngine, program: ProgramContext, size: int, rows: list[tuple[str, Any]]
) -> None:
    rows.append(("segment: members uploaded", f"{size:,}"))
    async with transaction(engine) as conn:
        await segment_service.create(
            conn,
            program,
            SegmentCreate.model_validate({"key": "bench-list", "name": "List", "kind": "static"}),
            NOW,
        )
    await publish(engine, program, "back", WELCOME_BACK)
    async with reading(engine) as conn:
        ids = (
            (
                await conn.execute(
                    text("SELECT id FROM members WHERE program_id = :p ORDER BY id LIMIT :n"),
                    {"p": str(program.id), "n": size},
                )
            )
            .scalars()
            .all()
        )

    async def upload() -> None:
        async with transaction(engine) as conn:
            body = ListUpload(members=[str(i) for i in ids], kind="id")
            await segment_service.upload(conn, program, "bench-list", body, NOW)

    await timed(rows, "segment: list uploaded (events written)", upload())
    import_consumers()
    consumer = registry.get("journeys.runs")
    assert consumer is not None
    worker = Worker(engine, [consumer])
    await timed(rows, "segment: journeys.runs consumer (entries)", worker.drain())
    report = await timed(
        rows, "segment: journeys-advance (steps)", advance_program(engine, program.id, NOW)
    )
    rows.append(("segment: runs / steps", f"{report.runs:,} / {report.steps:,}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--segment", type=int, default=100_000)
    args = parser.parse_args()
    with scratch_pg_database("journeys") as name:
        url = pg_url(name)
        upgrade(url)
        asyncio.run(run(url, args.members, args.segment))


if __name__ == "__main__":
    main()
