"""The RFM grid for the console: how many scored members sit in each recency × frequency
cell, and in each named group, with their spend. The scores themselves are crm's
(``docs/crm-facts.md``); this reads them, never commits."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.rfm_repository import RfmRepository, rfm_repository
from kopilka.crm.domain import RFM_GRID, RfmGroup, rfm_group
from kopilka.programs.service import ProgramContext

SCORES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class RfmCell:
    recency: int
    frequency: int
    group: RfmGroup
    members: int
    spend: int

    @property
    def average_spend(self) -> int | None:
        return self.spend // self.members if self.members else None


@dataclass(frozen=True)
class RfmGroupTotal:
    group: RfmGroup
    members: int
    spend: int
    share: float | None  # of the scored members

    @property
    def average_spend(self) -> int | None:
        return self.spend // self.members if self.members else None


@dataclass(frozen=True)
class RfmGrid:
    scored: int
    scored_at: datetime | None
    # rows by frequency from 5 down to 1, cells by recency 1 to 5: the usual layout, best
    # customers top right.
    rows: list[list[RfmCell]]
    groups: list[RfmGroupTotal]


class RfmService:
    def __init__(self, repository: RfmRepository = rfm_repository) -> None:
        self.repository = repository

    async def grid(self, conn: AsyncConnection, program: ProgramContext) -> RfmGrid:
        found = {(c.recency, c.frequency): c for c in await self.repository.cells(conn, program.id)}
        rows = [
            [
                RfmCell(
                    r,
                    f,
                    rfm_group(r, f),
                    found[(r, f)].members if (r, f) in found else 0,
                    found[(r, f)].spend if (r, f) in found else 0,
                )
                for r in SCORES
            ]
            for f in reversed(SCORES)
        ]
        scored = sum(c.members for c in found.values())
        groups = []
        for group, _, _ in RFM_GRID:
            cells = [c for row in rows for c in row if c.group is group]
            members = sum(c.members for c in cells)
            groups.append(
                RfmGroupTotal(
                    group,
                    members,
                    sum(c.spend for c in cells),
                    members / scored if scored else None,
                )
            )
        return RfmGrid(scored, await self.repository.scored_at(conn, program.id), rows, groups)


rfm_service = RfmService()
