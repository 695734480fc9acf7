"""Stores: create, change, import, read, find the nearest; which store codes a program
knows (the purchase path asks). Never commits."""

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.errors import Conflict, Forbidden, InvalidInput, NotFound
from kopilka.kit.clock import clock
from kopilka.kit.ids import new_id
from kopilka.kit.types import error_location
from kopilka.outbox.store_events import StoreCreated, StoreUpdated
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from kopilka.stores import domain, geo
from kopilka.stores.repository import StoreRepository, store_repository
from kopilka.stores.rows import RowError, parse_csv
from kopilka.stores.schemas import (
    ImportedRow,
    ImportResult,
    NearestResult,
    NearStore,
    Store,
    StoreCreate,
    StoreImportRow,
    StorePage,
    StoreUpdate,
)

# A program without stores accepts any store name; this process looks again this often
# whether it has one now (a program's first store, made by another process, takes effect
# here within this many seconds). Codes, once known, are never forgotten: they never change
# and stores are never deleted.
EMPTY_RECHECK_SECONDS = 5.0
MAX_REPORTED_ERRORS = 100
Numbering = Literal["index", "line", "body"]  # rows of a list, lines of a file, one store


class KnownStores:
    """Each program's store codes as this process has seen them, for the purchase path: a
    purchase at a known store costs no query, one at a code not seen yet costs one look-up
    by the unique key (so a store made by another process is accepted at once)."""

    def __init__(self, empty_recheck_seconds: float = EMPTY_RECHECK_SECONDS) -> None:
        self.empty_recheck_seconds = empty_recheck_seconds
        self._codes: dict[UUID, set[str]] = {}
        self._loaded_at: dict[UUID, float] = {}

    async def codes(
        self, conn: AsyncConnection, program_id: UUID, repository: StoreRepository
    ) -> set[str]:
        """The codes seen so far (all of them when first loaded)."""
        known = self._codes.get(program_id)
        stale = time.monotonic() - self._loaded_at.get(program_id, 0.0)
        if known is None or (not known and stale >= self.empty_recheck_seconds):
            known = await repository.codes(conn, program_id)
            self._codes[program_id] = known
            self._loaded_at[program_id] = time.monotonic()
        return known

    async def unknown(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        codes: Collection[str],
        repository: StoreRepository,
    ) -> set[str]:
        """Those of ``codes`` that are not stores of the program."""
        known = await self.codes(conn, program_id, repository)
        missing = set(codes) - known
        if missing:
            found = await repository.known_codes(conn, program_id, missing)
            known |= found
            missing -= found
        return missing

    def forget(self, program_id: UUID) -> None:
        """Load the program's codes afresh next time (it may have its first store now)."""
        self._codes.pop(program_id, None)
        self._loaded_at.pop(program_id, None)


@dataclass(frozen=True, slots=True)
class _Change:
    row: int
    code: str
    current: Any  # the stored row, None for a new store
    given: dict[str, Any]


def _view(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        **{name: getattr(row, name) for name in domain.FIELDS},
        "closed_at": row.closed_at,
        "open_now": domain.open_at(row.status, row.timezone, row.hours, row.special_hours, now),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _current(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in domain.FIELDS}


def _where(numbering: Numbering, row: int, field: str | None) -> dict[str, Any]:
    if numbering == "line":
        return {"field": "csv", "line": row, "column": field}
    if numbering == "body":
        return {"field": field}
    return {"field": ".".join(p for p in ("stores", str(row), field) if p)}


class StoreService:
    def __init__(
        self, repository: StoreRepository = store_repository, known: KnownStores | None = None
    ) -> None:
        self.repository = repository
        self.known = known or KnownStores()

    # --- what other features ask -------------------------------------------------------------

    async def unknown_stores(
        self, conn: AsyncConnection, program: ProgramContext, codes: Collection[str]
    ) -> set[str]:
        """The codes a purchase may not name: those that are not the program's stores, once
        it has any (none while it has none, or with ``free_form_stores``)."""
        if not codes or program.settings.free_form_stores:
            return set()
        known = await self.known.codes(conn, program.id, self.repository)
        if not known:
            return set()
        if known.issuperset(codes):
            return set()
        return await self.known.unknown(conn, program.id, codes, self.repository)

    async def exists(self, conn: AsyncConnection, program: ProgramContext, code: str) -> bool:
        return not await self.known.unknown(conn, program.id, {code}, self.repository)

    async def codes(self, conn: AsyncConnection, program: ProgramContext) -> set[str]:
        """Every store code of the program."""
        return await self.repository.codes(conn, program.id)

    async def find(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        *,
        now: datetime | None = None,
        visible: frozenset[str] | None = None,
    ) -> Store | None:
        if visible is not None and code not in visible:
            return None
        row = await self.repository.get(conn, program.id, code)
        return Store.model_validate(_view(row, now or clock.now())) if row is not None else None

    async def get(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        *,
        now: datetime | None = None,
        visible: frozenset[str] | None = None,
    ) -> Store:
        """The store, or NotFound; ``visible``: the codes a caller limited to some stores
        may see (None: all)."""
        found = await self.find(conn, program, code, now=now, visible=visible)
        if found is None:
            raise NotFound(f"no store {code!r}", field="code")
        return found

    # --- lists and the nearest ----------------------------------------------------------------

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        *,
        limit: int,
        after: str | None = None,
        region: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        visible: frozenset[str] | None = None,
    ) -> StorePage:
        """Stores in code order, after the code ``after``."""
        rows = await self.repository.page(
            conn,
            program.id,
            limit=limit,
            after=after,
            region=region,
            tag=tag,
            status=status,
            only=visible,
        )
        items = [Store.model_validate(_view(r, now)) for r in rows]
        return StorePage(items=items, next_cursor=rows[-1].code if len(rows) == limit else None)

    async def nearest(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        latitude: float,
        longitude: float,
        now: datetime,
        *,
        limit: int = 10,
        radius_m: float | None = None,
        tag: str | None = None,
        open_now: bool = False,
        visible: frozenset[str] | None = None,
        trading_only: bool = False,
    ) -> NearestResult:
        """The ``limit`` stores nearest to the point (within ``radius_m``), nearest first;
        ``open_now``: only stores open at ``now`` by their hours; ``trading_only``: none
        that closed for good (the members' app).

        A circle is searched by the boxes that contain it (index ranges on the
        coordinates), the rows found are measured exactly, and the circle widens until it
        holds ``limit`` stores: stores within the circle are certainly nearer than any
        outside it, so the answer is exact whatever the boxes' corners brought in."""
        found: list[tuple[float, str]] = []
        radius: float | None = domain.first_radius(radius_m)
        searched = 0.0
        while radius is not None:
            searched = radius
            rows = await self.repository.in_boxes(
                conn,
                program.id,
                geo.boxes_around(latitude, longitude, radius),
                tag=tag,
                open_only=open_now,
                only=visible,
                trading_only=trading_only,
            )
            found = []
            for row in rows:
                distance = geo.distance_m(latitude, longitude, row.latitude, row.longitude)
                if distance > radius:
                    continue
                if open_now and not domain.open_at(
                    row.status, row.timezone, row.hours, row.special_hours, now
                ):
                    continue
                found.append((distance, row.code))
            radius = domain.next_radius(radius, len(found), limit, radius_m)
        found.sort()
        nearest = found[:limit]
        by_code = await self.repository.by_codes(conn, program.id, [c for _, c in nearest])
        items = [
            NearStore.model_validate({**_view(by_code[c], now), "distance_m": geo.whole_metres(d)})
            for d, c in nearest
        ]
        # Equal distances in code order: an answer does not depend on the rows' order.
        items.sort(key=lambda s: (s.distance_m, s.code))
        return NearestResult(items=items, searched_m=geo.whole_metres(searched))

    # --- the members' app --------------------------------------------------------------------

    async def by_place(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        *,
        limit: int = 100,
        after: str | None = None,
    ) -> StorePage:
        """Trading stores by place: by region (stores without one last), then name; after
        the store whose code is ``after`` (the cursor is a code)."""
        rows = await self.repository.trading_by_place(conn, program.id, limit=limit, after=after)
        items = [Store.model_validate(_view(r, now)) for r in rows]
        return StorePage(items=items, next_cursor=rows[-1].code if len(rows) == limit else None)

    async def search(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        text: str,
        now: datetime,
        *,
        limit: int = 50,
    ) -> list[Store]:
        """Trading stores whose name, address or region hold every word of ``text`` (a
        city, a street), case and ё/е aside, by place; at most ``limit``.

        The words are matched here rather than by ``LIKE``: SQLite folds the case of
        ASCII letters only, and a Cyrillic city must be found on both databases. One
        narrow read of the program's trading stores (thousands of rows at most)."""
        words = domain.search_words(text)
        if not words:
            return []
        rows = await self.repository.trading_texts(conn, program.id)
        found = (r for r in rows if domain.matches_words(words, r.name, r.address, r.region))
        codes = [r.code for r in found][:limit]
        by_code = await self.repository.by_codes(conn, program.id, codes)
        return [Store.model_validate(_view(by_code[c], now)) for c in codes if c in by_code]

    # --- changes ------------------------------------------------------------------------------

    async def create(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        body: StoreCreate,
        now: datetime,
        *,
        allowed: frozenset[str] | None = None,
    ) -> Store:
        """A new store; Conflict if the code is taken."""
        _check_allowed(allowed, [body.code])
        if await self.repository.get(conn, program.id, body.code) is not None:
            raise Conflict(f"there is already a store {body.code!r}", field="code")
        given = body.model_dump(exclude={"code"}, exclude_none=False)
        if given["timezone"] is None:
            del given["timezone"]
        written = await self._apply(
            conn, program, [_Change(0, body.code, None, given)], now, "api", "body"
        )
        return await self.get(conn, program, written[0].code, now=now)

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        code: str,
        body: StoreUpdate,
        now: datetime,
        *,
        visible: frozenset[str] | None = None,
    ) -> Store:
        """Change the given fields of a store (NotFound if it is not one the caller sees)."""
        if visible is not None and code not in visible:
            raise NotFound(f"no store {code!r}", field="code")
        current = await self.repository.get(conn, program.id, code)
        if current is None:
            raise NotFound(f"no store {code!r}", field="code")
        await self._apply(
            conn, program, [_Change(0, code, current, body.changes())], now, "api", "body"
        )
        return await self.get(conn, program, code, now=now)

    async def import_rows(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        rows: Sequence[tuple[int, dict[str, Any]]],
        now: datetime,
        *,
        numbering: Numbering = "index",
        dry_run: bool = False,
        allowed: frozenset[str] | None = None,
        earlier_errors: Sequence[RowError] = (),
    ) -> ImportResult:
        """Create or change stores by code, all or nothing: any bad row (and any of
        ``earlier_errors``, found while reading a file) refuses them all with every error
        named by its row (``numbering``: index in a list, or line of a file)."""
        errors = [(e.line, e.column, e.message) for e in earlier_errors]
        parsed: list[tuple[int, StoreImportRow]] = []
        first_row: dict[str, int] = {}
        for row, values in rows:
            try:
                item = StoreImportRow.model_validate(values)
            except ValidationError as exc:
                for error in exc.errors():
                    location = ".".join(str(p) for p in error_location(error))
                    errors.append((row, location or None, str(error["msg"])))
                continue
            if item.code in first_row:
                where = "line" if numbering == "line" else "row"
                again = f"{item.code!r} is also on {where} {first_row[item.code]}"
                errors.append((row, "code", again))
                continue
            first_row[item.code] = row
            parsed.append((row, item))
        _check_allowed(allowed, [item.code for _, item in parsed])
        current = await self.repository.by_codes(conn, program.id, first_row)
        changes: list[_Change] = []
        for row, item in parsed:
            given = item.changes()
            given.pop("code", None)
            existing = current.get(item.code)
            if existing is None and "name" not in given:
                errors.append((row, "name", "a new store needs a name"))
                continue
            changes.append(_Change(row, item.code, existing, given))
        outcome = await self._apply(
            conn, program, changes, now, "import", numbering, errors=errors, dry_run=dry_run
        )
        kinds = [r.outcome for r in outcome]
        return ImportResult(
            created=kinds.count("created"),
            updated=kinds.count("updated"),
            unchanged=kinds.count("unchanged"),
            dry_run=dry_run,
            rows=sorted(outcome, key=lambda r: r.row),
        )

    async def import_csv(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        text: str,
        now: datetime,
        *,
        dry_run: bool = False,
        allowed: frozenset[str] | None = None,
    ) -> ImportResult:
        """:meth:`import_rows` of the text of a CSV file (``kopilka.stores.rows``), every
        error named by its line."""
        found = parse_csv(text)
        return await self.import_rows(
            conn,
            program,
            [(r.line, r.values) for r in found.rows],
            now,
            numbering="line",
            dry_run=dry_run,
            allowed=allowed,
            earlier_errors=found.errors,
        )

    async def _apply(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        changes: Sequence[_Change],
        now: datetime,
        source: str,
        numbering: Numbering,
        *,
        errors: list[tuple[int, str | None, str]] | None = None,
        dry_run: bool = False,
    ) -> list[ImportedRow]:
        """Merge each change into its store (or a new one), check, then write every row and
        event in one unit of work; nothing is written if any change (or ``errors``) is
        bad."""
        errors = errors if errors is not None else []
        uow = UnitOfWork(now)
        new_rows: list[dict[str, Any]] = []
        changed_rows: list[dict[str, Any]] = []
        outcome: list[ImportedRow] = []
        for change in changes:
            base = (
                _current(change.current)
                if change.current is not None
                else domain.defaults(program.settings.timezone)
            )
            merged = domain.merge(base, change.given)
            fault = domain.coordinates_problem(merged.values)
            if fault is not None:
                errors.append((change.row, fault, "give latitude and longitude together"))
                continue
            values = merged.values
            if change.current is None:
                store_id = new_id()
                new_rows.append(
                    {
                        "id": store_id,
                        "program_id": program.id,
                        "code": change.code,
                        **values,
                        "closed_at": now if values["status"] == "closed" else None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                uow.emit(
                    StoreCreated(
                        program_id=program.id,
                        member_id=None,
                        occurred_at=now,
                        store_id=store_id,
                        code=change.code,
                        values=values,
                        source=source,
                    )
                )
                outcome.append(ImportedRow(row=change.row, code=change.code, outcome="created"))
                continue
            if not merged.changed:
                outcome.append(ImportedRow(row=change.row, code=change.code, outcome="unchanged"))
                continue
            closed_at = change.current.closed_at
            if "status" in merged.changed:
                closed_at = now if values["status"] == "closed" else None
            changed_rows.append(
                {"id": change.current.id, **values, "closed_at": closed_at, "updated_at": now}
            )
            previous = _current(change.current)
            uow.emit(
                StoreUpdated(
                    program_id=program.id,
                    member_id=None,
                    occurred_at=now,
                    store_id=change.current.id,
                    code=change.code,
                    changed=merged.changed,
                    values={n: values[n] for n in merged.changed},
                    previous={n: previous[n] for n in merged.changed},
                    source=source,
                )
            )
            outcome.append(ImportedRow(row=change.row, code=change.code, outcome="updated"))
        if errors:
            raise _refused(errors, numbering)
        if dry_run or not (new_rows or changed_rows):
            audit_service.nothing_changed()  # a check, or a file with nothing new
            if dry_run:
                return outcome
        self.repository.stage_new(uow, new_rows)
        self.repository.stage_changes(uow, changed_rows)
        await uow.flush(conn)
        if new_rows:
            # The program may have its first store: look again on the next purchase.
            self.known.forget(program.id)
        return outcome


def _check_allowed(allowed: frozenset[str] | None, codes: Sequence[str]) -> None:
    for code in codes:
        if allowed is not None and code not in allowed:
            raise Forbidden(f"you may not manage store {code!r}", field="code")


class StoreRefused(InvalidInput):
    """Rows refused, each named (``errors``); nothing was written."""


def _refused(errors: list[tuple[int, str | None, str]], numbering: Numbering) -> InvalidInput:
    errors.sort(key=lambda e: e[0])
    if numbering == "body":
        _, field, message = errors[0]
        return InvalidInput(f"{field}: {message}", field=field)
    listed = [
        {**_where(numbering, row, field), "message": message}
        for row, field, message in errors[:MAX_REPORTED_ERRORS]
    ]
    row, field, message = errors[0]
    noun = "line" if numbering == "line" else "row"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    where = f"{noun} {row}" + (f": {field}" if field else "")
    first_field = listed[0]["field"]
    return StoreRefused(
        f"{where}: {message}{more}; nothing was written",
        field=first_field,
        errors=listed,
        error_count=len(errors),
    )


store_service = StoreService()
