"""Bulk import of purchases through the same engine path as the API, in batches.

Each batch is one transaction, so memory stays constant and an interrupted import can be
run again: purchases already recorded are recognised by their external id and skipped.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.events.schemas import PurchaseCreate
from kopilka.events.service import Outcome, purchase_service
from kopilka.imports.domain import ParsedPurchase, RowError
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext

DEFAULT_BATCH = 2000


@dataclass
class ImportReport:
    imported: int = 0
    already_there: int = 0
    failed: list[RowError] = field(default_factory=list)
    earned: dict[str, int] = field(default_factory=dict)

    @property
    def rows_seen(self) -> int:
        return self.imported + self.already_there + len(self.failed)


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
        while batch := list(islice(stream, batch_size)):
            purchases = [p for _, p in batch]

            async def work(
                conn: AsyncConnection, todo: list[PurchaseCreate] = purchases
            ) -> list[Outcome]:
                return await purchase_service.ingest(
                    conn, program, todo, clock.now(), create_members=create_members
                )

            outcomes = await run_in_transaction(engine, work)
            # Tallied after the commit, so a retried transaction is not counted twice.
            self._tally(report, batch, outcomes)
            if progress is not None:
                progress(len(batch))
        return report

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
