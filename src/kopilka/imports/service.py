"""Bulk import of purchases through the same engine path as the API, in batches.

Each batch is one transaction, so memory stays constant and an interrupted import can be
run again: purchases already recorded are recognised by their external id and skipped.
"""

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.errors import InvalidInput
from kopilka.imports.domain import ParsedPurchase, RowError
from kopilka.kit.clock import clock
from kopilka.members.domain import normalise_identifier
from kopilka.programs.service import ProgramContext
from kopilka.purchases.batches import Outcome
from kopilka.purchases.schemas import PurchaseCreate
from kopilka.purchases.service import purchase_service

DEFAULT_BATCH = 2000
IN_FLIGHT = 2
CONFLICT_RETRIES = 3


@dataclass
class ImportReport:
    imported: int = 0
    already_there: int = 0
    failed: list[RowError] = field(default_factory=list)
    earned: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # batches run again after another writer recorded the same thing first


def _validated(
    rows: Iterable[ParsedPurchase | RowError], report: ImportReport
) -> Iterator[tuple[int, PurchaseCreate]]:
    for row in rows:
        if isinstance(row, RowError):
            report.failed.append(row)
            continue
        try:
            yield row.line_no, PurchaseCreate.model_validate(row.data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            report.failed.append(
                RowError(row.line_no, f"line {row.line_no}: {where}: {first['msg']}")
            )


def member_key(purchase: PurchaseCreate) -> tuple[str, str]:
    """The member a purchase names, spelled as the registry keeps it (``Anna@Example.com``
    and ``anna@example.com`` are one member)."""
    if purchase.member is None:  # the file parsers require a member on every row
        raise ValueError("an imported purchase names its member")
    kind, value = purchase.member.kind_and_value()
    if kind == "id":
        return kind, value
    try:
        return kind, normalise_identifier(kind, value)
    except InvalidInput:
        return kind, value  # refused later, with the row's line number


def _without_busy_members(
    rows: list[tuple[int, PurchaseCreate]],
    in_flight: dict[asyncio.Task[None], set[tuple[str, str]]],
) -> tuple[list[tuple[int, PurchaseCreate]], list[tuple[int, PurchaseCreate]]]:
    """Rows whose member no batch in flight has, and the rest, held for the next batch.

    A batch that shares a member with the one in flight would wait for that batch's commit
    at its first statement (the member's lock), and the two would take turns instead of
    overlapping. Holding back every row of such a member keeps each member's purchases in
    file order: they all go, later, in one batch.
    """
    busy = set().union(*in_flight.values())
    if not busy:
        return rows, []
    ready: list[tuple[int, PurchaseCreate]] = []
    held: list[tuple[int, PurchaseCreate]] = []
    for row in rows:
        (held if member_key(row[1]) in busy else ready).append(row)
    return ready, held


class ImportService:
    async def import_purchases(
        self,
        engine: AsyncEngine,
        program: ProgramContext,
        rows: Iterable[ParsedPurchase | RowError],
        *,
        create_members: bool = True,
        batch_size: int = DEFAULT_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        report = ImportReport()
        stream = _validated(rows, report)
        in_flight: dict[asyncio.Task[None], set[tuple[str, str]]] = {}
        pending: list[tuple[int, PurchaseCreate]] = []
        more = True
        try:
            while True:
                if more:
                    fresh = list(islice(stream, batch_size))
                    more = len(fresh) == batch_size
                    pending += fresh
                if not pending:
                    break
                # Two batches at a time: while the database writes one, Python prepares the
                # next.
                if len(in_flight) >= IN_FLIGHT:
                    await self._wait_for_one(in_flight)
                batch, pending = _without_busy_members(pending, in_flight)
                if not batch:
                    await self._wait_for_one(in_flight)
                    continue
                if create_members:
                    await self._enrol(engine, program, batch)
                task = asyncio.create_task(
                    self._one_batch(engine, program, batch, report, create_members, progress)
                )
                in_flight[task] = {member_key(p) for _, p in batch}
            if in_flight:
                await asyncio.gather(*in_flight)
        except BaseException:
            # A failed batch stops the import: the other one in flight is not left running.
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            raise
        return report

    async def _wait_for_one(
        self, in_flight: dict[asyncio.Task[None], set[tuple[str, str]]]
    ) -> None:
        done, _ = await asyncio.wait(in_flight, return_when=FIRST_COMPLETED)
        for task in done:
            del in_flight[task]
            task.result()

    async def _enrol(
        self, engine: AsyncEngine, program: ProgramContext, batch: list[tuple[int, PurchaseCreate]]
    ) -> None:
        """Register this batch's new members before it goes in flight, while the batch
        before it may still be running: batches in flight then never register the same
        member, which would make one of them fail and start again."""
        purchases = [p for _, p in batch]
        await run_in_transaction(
            engine,
            lambda conn: purchase_service.enrol_members(conn, program, purchases, clock.now()),
        )

    async def _one_batch(
        self,
        engine: AsyncEngine,
        program: ProgramContext,
        batch: list[tuple[int, PurchaseCreate]],
        report: ImportReport,
        create_members: bool,
        progress: Callable[[int], None] | None,
    ) -> None:
        purchases = [p for _, p in batch]

        async def work(conn: AsyncConnection) -> list[Outcome]:
            return await purchase_service.ingest(
                conn, program, purchases, clock.now(), create_members=create_members
            )

        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                outcomes = await run_in_transaction(engine, work)
                break
            except IntegrityError:
                # Another writer (a second import, the API) recorded the same purchase or
                # registered the same member first; run again and answer those from what it
                # wrote.
                if attempt == CONFLICT_RETRIES:
                    raise
                report.retried += 1
        # Tallied after the commit, so a retried transaction is not counted twice.
        self._tally(report, batch, outcomes)
        if progress is not None:
            progress(len(batch))

    def _tally(
        self, report: ImportReport, batch: list[tuple[int, PurchaseCreate]], outcomes: list[Outcome]
    ) -> None:
        for (line_no, _), outcome in zip(batch, outcomes, strict=True):
            if outcome.error is not None:
                report.failed.append(RowError(line_no, f"line {line_no}: {outcome.error.detail}"))
            elif outcome.replayed:
                report.already_there += 1
            else:
                report.imported += 1
                for earned in (outcome.result or {}).get("earned", []):
                    currency = earned["currency"]
                    report.earned[currency] = report.earned.get(currency, 0) + earned["amount"]


import_service = ImportService()
