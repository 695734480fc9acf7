"""Members brought over from another loyalty system, with everything they hold: profile,
identifiers, consents with their dates, tags, attributes, opening balances with their
original expiry, and their tier. From a CSV file in batches, or from the API.

A record names a member already in the program (matched on external id, else card, else
phone, else e-mail) or a new one. A new member is registered as of their original
registration, with the channel ``import``; an existing one is left as it is (reported as
already imported), except that opening lots not granted before are granted. Each lot is
granted once: its idempotency key is the member, the currency and the expiry. So running
the same file again changes nothing.

Never commits: a batch is one transaction of the caller's (``import_file`` owns those of
a file).
"""

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as default
from datetime import datetime
from functools import lru_cache
from itertools import chain, islice
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.idempotency.service import StoredAnswer, idempotency_store, replay, request_hash
from kopilka.imports.member_batch import SOURCE, Batch, BatchBuilder, Outcome, Prepared, prepare
from kopilka.imports.member_rows import MemberRow, MemberRowError, column_of
from kopilka.imports.schemas import (
    MemberImportAnswer,
    MemberImportBatch,
    MemberImportRecord,
    MemberImportResult,
    RecordError,
)
from kopilka.kit.clock import clock
from kopilka.kit.sql import plan_for_batch
from kopilka.kit.types import error_location
from kopilka.ledger.service import OpeningLot, ledger_service
from kopilka.members.service import member_service
from kopilka.messaging.consents import DatedChange, consent_service
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.tiers.imports import seed_imported

DEFAULT_BATCH = 1000
CONFLICT_RETRIES = 3
IN_FLIGHT = 2  # batches written at once on PostgreSQL
PREPARE_STEP = 25  # records checked (a few ms) between two turns of the batches being written


@dataclass
class MemberImportReport:
    created: int = 0
    already_imported: int = 0
    failed: list[MemberRowError] = default(default_factory=list)
    credited: dict[str, int] = default(default_factory=dict)
    expired: dict[str, int] = default(default_factory=dict)  # points left out, per currency
    expired_lots: int = 0
    consents: int = 0
    tiers: int = 0
    retried: int = 0
    notes: list[str] = default(default_factory=list)

    def add(self, label: int, outcome: Outcome) -> None:
        if outcome.status == "error":
            self.failed.append(
                MemberRowError(label, outcome.field or "row", outcome.reason or "refused")
            )
            return
        if outcome.status == "created":
            self.created += 1
        else:
            self.already_imported += 1
        for currency, amount in outcome.credited.items():
            self.credited[currency] = self.credited.get(currency, 0) + amount
        for currency, amount in outcome.expired.items():
            self.expired[currency] = self.expired.get(currency, 0) + amount
        self.expired_lots += sum(1 for n in outcome.notes if "had expired" in n)
        self.consents += outcome.consents
        self.tiers += int(outcome.tier)
        self.notes += [f"line {label}: {note}" for note in outcome.notes]


def lot_key(member_id: UUID, currency: str, expires_at: datetime | None) -> str:
    """The idempotency key of an opening lot: one grant per member, currency and expiry."""
    expiry = expires_at.isoformat() if expires_at is not None else "never"
    return f"member-import:{member_id}:{currency}:{expiry}"


class MemberImportService:
    # --- reading records -------------------------------------------------------------------

    def parse(
        self, data: Mapping[str, Any], *, csv: bool = False
    ) -> MemberImportRecord | RecordError:
        """A record from its dict; a refusal names the field (for ``csv``, the column)."""
        try:
            return MemberImportRecord.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            location = error_location(first)
            name = (
                column_of(location, data) if csv else ".".join(str(p) for p in location)
            ) or "row"
            return RecordError(field=name, reason=first["msg"])

    # --- one batch (the caller's transaction) ---------------------------------------------

    async def import_records(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        records: Sequence[MemberImportRecord | RecordError],
        now: datetime,
        *,
        labels: Sequence[str] | None = None,
        columns: bool = False,
    ) -> list[Outcome]:
        """Import ``records`` (as of ``now``): an outcome each, in order. A refused record
        writes nothing; the others are written whatever the refused ones. ``labels`` name
        the records in messages about duplicates ("line 7"); with ``columns`` a refusal
        names the CSV column rather than the record's field."""
        batch = prepare(program, records, now, labels=labels, columns=columns)
        await self.write(conn, program, batch)
        return batch.outcomes

    async def write(self, conn: AsyncConnection, program: ProgramContext, batch: Batch) -> None:
        """Write a prepared batch: match its records to members already in the program,
        register the others, grant the lots not granted before. One statement per table
        for the batch, whatever its size."""
        if not batch.prepared:
            return
        # Look-ups by a thousand keys into tables that grow as the import goes: planned
        # for their arguments, not with a plan made while the tables were empty.
        await plan_for_batch(conn, len(batch.prepared))
        await self._match(conn, program, batch.prepared)
        new = [p for p in batch.prepared if p.outcome.status == "created"]
        await self._register(conn, program, new, batch.now)
        await self._grant(conn, program, batch.prepared, batch.now)

    async def _match(
        self, conn: AsyncConnection, program: ProgramContext, prepared: list[Prepared]
    ) -> None:
        """Records naming a member already in the program become ``already_imported``:
        matched on external id, else card, else phone, else e-mail (one query per kind, on
        the identifiers as ``_prepare`` stored them: they are not normalised again)."""
        found = await member_service.find_stored(
            conn, program, [pair for item in prepared for pair in item.given]
        )
        for item in prepared:
            # ``given`` lists the record's identifiers in match order: the first hit wins.
            hit = next((found[pair] for pair in item.given if pair in found), None)
            if hit is not None:
                item.outcome.status = "already_imported"
                item.outcome.member_id = hit[0]

    async def _register(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        new: list[Prepared],
        now: datetime,
    ) -> None:
        """The new members with their profile's consent flags, their tiers and their
        consents (each as of its own date), in one unit of work: one statement per table
        for the batch, and nothing read, the members being new."""
        if not new:
            return
        tiers = {item.row["id"]: item.tier for item in new if item.tier is not None}
        async with unit_of_work(conn, now) as unit:
            await member_service.register_many(
                conn,
                program,
                [(item.row, item.identifiers) for item in new],
                now,
                channel=SOURCE,
                uow=unit,
            )
            if tiers:
                seed_imported(unit, program, tiers, now)
                ladder = program.settings.tiers
                entry = ladder.levels[0].id if ladder is not None else None
                for item in new:
                    item.outcome.tier = item.tier is not None and item.tier[0] != entry
            recorded = await consent_service.record_imported(
                conn,
                program,
                [
                    DatedChange(item.row["id"], at, change)
                    for item in new
                    for at, change in item.consents
                ],
                unit,
            )
        for item in new:
            item.outcome.consents = recorded.get(item.row["id"], 0)

    async def _grant(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        prepared: list[Prepared],
        now: datetime,
    ) -> None:
        """Opening lots not granted before, each once (a key per member and lot), in one
        unit of work. Only the keys of members found are looked up: a member registered by
        this batch has had no lot granted."""
        wanted: list[tuple[Prepared, str, str, OpeningLot]] = []
        for item in prepared:
            member_id = item.outcome.member_id
            assert member_id is not None
            for (currency, expires), amount in item.lots.items():
                key = lot_key(member_id, currency, expires)
                wanted.append(
                    (item, key, _amount_hash(amount), OpeningLot(currency, amount, expires, key))
                )
        if not wanted:
            return
        existing = {
            member_id
            for item, *_ in wanted
            if item.outcome.status == "already_imported"
            and (member_id := item.outcome.member_id) is not None
        }
        stored: dict[str, StoredAnswer] = {}
        if existing:
            # Under the members' lock, so an import running beside this one cannot grant
            # the same lot between the look-up and the write (the key's uniqueness stops
            # it anyway).
            await member_service.lock(conn, program, sorted(existing))
            stored = await idempotency_store.find_many(
                conn,
                program.id,
                [key for item, key, *_ in wanted if item.outcome.member_id in existing],
            )
        grants: dict[UUID, list[OpeningLot]] = {}
        keys: list[dict[str, Any]] = []
        for item, key, hash_, lot in wanted:
            before = stored.get(key)
            if before is not None:
                if before.request_hash != hash_:
                    item.outcome.notes.append(
                        f"{lot.amount} {lot.currency} expiring {_expiry(lot)} not granted: "
                        f"that lot was imported before as {before.response.get('amount')}"
                    )
                continue
            member_id = item.outcome.member_id
            assert member_id is not None
            grants.setdefault(member_id, []).append(lot)
            item.outcome.credited[lot.currency] = (
                item.outcome.credited.get(lot.currency, 0) + lot.amount
            )
            if item.outcome.status == "already_imported":
                item.outcome.notes.append(
                    f"{lot.amount} {lot.currency} expiring {_expiry(lot)} granted "
                    "(not imported before)"
                )
            keys.append(
                idempotency_store.row(
                    program.id,
                    key,
                    hash_,
                    201,
                    {"member_id": str(member_id), "amount": lot.amount},
                    now,
                )
            )
        if not grants:
            return
        async with unit_of_work(conn, now) as unit:
            await ledger_service.grant_opening_balances(
                conn,
                program,
                grants,
                now,
                uow=unit,
                new_members=[p.row["id"] for p in prepared if p.outcome.status == "created"],
            )
            idempotency_store.stage(unit, keys)

    # --- the API: a batch with an Idempotency-Key -----------------------------------------

    async def import_batch(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        body: MemberImportBatch,
        key: str | None,
        now: datetime,
    ) -> tuple[MemberImportAnswer, bool]:
        """Import a batch; with ``key``, a retry with the same body replays the first
        answer (same key, other body: 409). Returns (answer, replayed)."""
        hash_ = request_hash({"path": "members/import", "body": body.model_dump(mode="json")})
        stored_key = f"members-import:{key}" if key is not None else None
        if stored_key is not None:
            found = await idempotency_store.find(conn, program.id, stored_key)
            if found is not None:
                first = replay(found, hash_, key)  # type: ignore[arg-type]
                return MemberImportAnswer.model_validate(first.body), True
        records = [self.parse(item) for item in body.members]
        outcomes = await self.import_records(conn, program, records, now)
        results = [
            MemberImportResult(
                index=index,
                status=o.status,
                member_id=o.member_id,
                error=RecordError(field=o.field or "row", reason=o.reason or "refused")
                if o.status == "error"
                else None,
                notes=o.notes,
            )
            for index, o in enumerate(outcomes)
        ]
        answer = MemberImportAnswer(
            created=sum(1 for o in outcomes if o.status == "created"),
            already_imported=sum(1 for o in outcomes if o.status == "already_imported"),
            failed=sum(1 for o in outcomes if o.status == "error"),
            results=results,
        )
        if stored_key is not None:
            await idempotency_store.insert(
                conn,
                [
                    idempotency_store.row(
                        program.id, stored_key, hash_, 200, answer.model_dump(mode="json"), now
                    )
                ],
            )
        return answer, False

    # --- a file, in batches ---------------------------------------------------------------

    async def import_file(
        self,
        engine: AsyncEngine,
        program: ProgramContext,
        rows: Iterable[MemberRow | MemberRowError],
        *,
        batch_size: int = DEFAULT_BATCH,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> MemberImportReport:
        """Every row of a file, ``batch_size`` at a time, one transaction each (rolled back
        with ``dry_run``: everything is checked, nothing is written). The file is read as
        the batches go: memory does not grow with it.

        While batches are written, the next is read and prepared: the database works
        while Python checks rows. On PostgreSQL two batches are written at once; a row
        giving an identifier of a batch still being written waits for a later batch, so
        a member of two batches is found by the later one, as when batches are written
        one after the other (SQLite)."""
        report = MemberImportReport()
        stream = self._records(rows, report)
        # PostgreSQL writes two batches at once, so Python's share of one overlaps the
        # server's of the other; SQLite has one writer.
        limit = IN_FLIGHT if engine.dialect.name == "postgresql" else 1
        flights: deque[_Flight] = deque()
        held: list[tuple[int, MemberImportRecord | RecordError]] = []
        try:
            while True:
                lines, records, batch = await self._read_batch(stream, program, batch_size, held)
                if len(flights) >= limit:
                    await self._tally(report, flights.popleft(), progress)
                # A record naming an identifier of a batch still being written waits for
                # a later batch (in order): that one sees the member if it was registered.
                busy = set().union(*(flight.identifiers for flight in flights))
                batch, positions = batch.hold_back(busy)
                held = [(lines[i], records[i]) for i in positions]
                if positions:
                    drop = set(positions)
                    kept = [i for i in range(len(lines)) if i not in drop]
                    lines, records = [lines[i] for i in kept], [records[i] for i in kept]
                if lines:
                    task = asyncio.create_task(
                        self._one_batch(engine, program, records, lines, batch, dry_run, report)
                    )
                    flights.append(_Flight(task, lines, batch.identifiers()))
                elif flights:
                    await self._tally(report, flights.popleft(), progress)
                else:
                    break
        except BaseException:
            # A failed batch stops the import; none is left being written.
            for flight in flights:
                flight.task.cancel()
            await asyncio.gather(*(f.task for f in flights), return_exceptions=True)
            raise
        report.failed.sort(key=lambda e: e.line_no)
        return report

    def _records(
        self, rows: Iterable[MemberRow | MemberRowError], report: MemberImportReport
    ) -> Iterator[tuple[int, MemberImportRecord | RecordError]]:
        for row in rows:
            if isinstance(row, MemberRowError):
                yield row.line_no, RecordError(field=row.field, reason=row.reason)
                continue
            yield row.line_no, self.parse(row.data, csv=True)

    async def _read_batch(
        self,
        stream: Iterator[tuple[int, MemberImportRecord | RecordError]],
        program: ProgramContext,
        size: int,
        held: list[tuple[int, MemberImportRecord | RecordError]],
    ) -> tuple[list[int], list[MemberImportRecord | RecordError], Batch]:
        """The next ``size`` rows (the ``held`` ones first), read and prepared a few at a
        time: between two steps the batches being written go on (their statements are
        answered, their next ones sent)."""
        builder = BatchBuilder(program, clock.now(), columns=True)
        lines: list[int] = []
        records: list[MemberImportRecord | RecordError] = []
        rows = chain(held, stream)
        while len(lines) < size:
            step = list(islice(rows, min(PREPARE_STEP, size - len(lines))))
            lines += [line for line, _ in step]
            records += [record for _, record in step]
            builder.add([record for _, record in step])
            await asyncio.sleep(0)
            if not step:
                break
        return lines, records, builder.batch(_labels(lines))

    async def _tally(
        self,
        report: MemberImportReport,
        flight: "_Flight",
        progress: Callable[[int], None] | None,
    ) -> None:
        """Count a batch once it has committed (one run again after a conflict counts
        once). Batches are counted in the order they were read."""
        outcomes = await flight.task
        for line, outcome in zip(flight.lines, outcomes, strict=True):
            report.add(line, outcome)
        if progress is not None:
            progress(len(flight.lines))

    async def _one_batch(
        self,
        engine: AsyncEngine,
        program: ProgramContext,
        records: list[MemberImportRecord | RecordError],
        lines: list[int],
        batch: Batch,
        dry_run: bool,
        report: MemberImportReport,
    ) -> list[Outcome]:
        prepared = [batch]

        async def work(conn: AsyncConnection) -> list[Outcome]:
            if not prepared:
                # A run after a conflict starts from the records again: the first run's
                # outcomes and member ids belong to a rolled-back transaction.
                prepared.append(
                    prepare(program, records, clock.now(), labels=_labels(lines), columns=True)
                )
            current = prepared.pop()
            await self.write(conn, program, current)
            return current.outcomes

        if dry_run:
            async with engine.connect() as conn:
                transaction = await conn.begin()
                try:
                    return await work(conn)
                finally:
                    await transaction.rollback()
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                return await run_in_transaction(engine, work)
            except IntegrityError:
                # Another writer (an import of the same file beside this one, the API)
                # registered one of these members or granted one of these lots first: run
                # again, and those records are then already imported.
                if attempt == CONFLICT_RETRIES:
                    raise
                report.retried += 1
        raise AssertionError("unreachable")


@dataclass
class _Flight:
    """A batch being written: its task, its rows' lines, the identifiers it gives."""

    task: asyncio.Task[list[Outcome]]
    lines: list[int]
    identifiers: set[tuple[str, str]]


def _labels(lines: Sequence[int]) -> list[str]:
    return [f"line {line}" for line in lines]


@lru_cache(maxsize=4096)
def _amount_hash(amount: int) -> str:
    """The request hash of a lot's key: its amount (a later run with another amount for
    the same key is told apart). Amounts repeat, so each is hashed once."""
    return request_hash({"amount": amount})


def _expiry(lot: OpeningLot) -> str:
    return lot.expires_at.isoformat() if lot.expires_at is not None else "never"


member_import_service = MemberImportService()
