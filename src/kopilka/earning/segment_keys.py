"""Where the rules' ``segment`` condition gets members' segments from.

The segments package sits above the core and may not be imported by it; it provides the
loader here instead (``kopilka.segments.service`` registers it when imported, and every
process that runs rules imports it: the application's routers, the worker's consumer
modules and the CLI's commands all include the segments package). A program whose rules
read segments fails loudly, not silently empty, if no loader was provided.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

# (conn, program id, member ids) → each member's segment keys (members in none left out)
SegmentLoader = Callable[
    [AsyncConnection, UUID, Sequence[UUID]], Awaitable[Mapping[UUID, frozenset[str]]]
]

_loader: list[SegmentLoader] = []


def provide(loader: SegmentLoader) -> None:
    """Register the loader (a second registration replaces the first)."""
    _loader[:] = [loader]


def provided() -> bool:
    return bool(_loader)


async def load(
    conn: AsyncConnection, program_id: UUID, member_ids: Sequence[UUID]
) -> Mapping[UUID, frozenset[str]]:
    if not _loader:
        raise RuntimeError(
            "the program's rules read segments, but no segment loader is registered "
            "(import kopilka.segments.service)"
        )
    return await _loader[0](conn, program_id, member_ids)
