"""The rewards catalog: create and change rewards, load them from a file, list them (for a
member: what they can see, at their price, and whether they can take it now), fill code
pools. Redeeming is in :mod:`kopilka.rewards.redemptions`. Never commits."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits.service import benefit_service
from kopilka.errors import Conflict, InvalidInput, KopilkaError, NotFound
from kopilka.kit.ids import new_id
from kopilka.kit.pagination import decode_key_cursor, encode_cursor
from kopilka.ledger.domain import Balance
from kopilka.ledger.service import ledger_service
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.rewards import domain
from kopilka.rewards.judging import (
    Affordable,
    Judged,
    MemberView,
    judge_rows,
    ladder_ids,
    reward_out,
)
from kopilka.rewards.repository import RewardRepository, reward_repository
from kopilka.rewards.schemas import (
    REQUIRED_ON_UPDATE,
    CodesAdd,
    CodesAdded,
    Reward,
    RewardCreate,
    RewardPage,
    RewardUpdate,
)
from kopilka.tiers.service import tier_service

# The columns a definition sets (everything but ids, stock-keeping and timestamps).
DEFINITION_FIELDS = tuple(name for name in RewardCreate.model_fields if name != "key")
CHUNK = 200  # rewards read at a time while filtering a member's catalog


def invalid(exc: ValidationError, prefix: str = "") -> InvalidInput:
    """A Pydantic error as the one-field error the API and the CLI report."""
    first = exc.errors()[0]
    where = prefix + ".".join(str(part) for part in first["loc"])
    return InvalidInput(f"{where}: {first['msg']}" if where else first["msg"], field=where or None)


CATALOG_NUMBERS = ("price", "stock", "per_member_limit", "gift_amount", "early_access_days")


def catalog_numbers(raw: dict[str, Any]) -> dict[str, Any]:
    """A catalog row with its numbers read from text: a CSV cell is text, and the API's
    schemas take numbers strictly. Anything but digits is left for the schema to refuse."""

    def number(value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
            return int(value)
        return value

    fields = {k: number(v) if k in CATALOG_NUMBERS else v for k, v in raw.items()}
    if isinstance(fields.get("tier_prices"), dict):
        fields["tier_prices"] = {k: number(v) for k, v in fields["tier_prices"].items()}
    return fields


@dataclass
class LoadReport:
    """What ``load`` did, or, with ``errors`` (line, message), why it did nothing."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


class RewardService:
    def __init__(self, repository: RewardRepository = reward_repository) -> None:
        self.repository = repository

    # --- definitions -------------------------------------------------------------------------

    async def _check(
        self, conn: AsyncConnection, program: ProgramContext, definition: dict[str, Any]
    ) -> None:
        """Cross-checks of a whole definition: program currencies and ladder, the window,
        the fields of the kind, and that a coupon campaign exists."""
        domain.check_definition(
            kind=definition["kind"],
            currency=definition["currency"],
            price=definition["price"],
            tier_prices=definition.get("tier_prices"),
            min_tier=definition.get("min_tier"),
            available_from=definition.get("available_from"),
            available_until=definition.get("available_until"),
            coupon_campaign=definition.get("coupon_campaign"),
            gift_amount=definition.get("gift_amount"),
            code_source=definition.get("code_source"),
            code_pattern=definition.get("code_pattern"),
            currencies=program.settings.currency_codes(),
            ladder=ladder_ids(program) or None,
        )
        campaign = definition.get("coupon_campaign")
        if campaign:
            found = await self.repository.campaign_kinds(conn, program.id, [campaign])
            if campaign not in found:
                raise InvalidInput(
                    f"no coupon campaign {campaign!r} in the program", field="coupon_campaign"
                )
            domain.check_campaign(definition["kind"], campaign, found[campaign])

    @staticmethod
    def _normalised(definition: dict[str, Any]) -> dict[str, Any]:
        if definition["kind"] == "digital" and definition.get("code_source") is None:
            definition["code_source"] = "generated"
        return definition

    def _new_row(
        self, program: ProgramContext, data: RewardCreate, now: datetime
    ) -> dict[str, Any]:
        return {
            "id": new_id(),
            "program_id": program.id,
            **self._normalised(data.model_dump()),
            "created_at": now,
            "updated_at": now,
        }

    def _merged(self, row: Any, changes: dict[str, Any]) -> dict[str, Any]:
        """The definition ``row`` has after ``changes`` (a PATCH's fields)."""
        for name in REQUIRED_ON_UPDATE:
            if name in changes and changes[name] is None:
                raise InvalidInput(f"{name} cannot be cleared", field=name)
        current = {name: getattr(row, name) for name in DEFINITION_FIELDS}
        return self._normalised(current | changes)

    async def _checked_changes(
        self, conn: AsyncConnection, program: ProgramContext, row: Any, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """``changes`` to ``row`` once the whole definition they give is checked."""
        merged = self._merged(row, changes)
        await self._check(conn, program, merged)
        return {name: merged[name] for name in changes}

    async def create(
        self, conn: AsyncConnection, program: ProgramContext, data: RewardCreate, now: datetime
    ) -> Reward:
        if await self.repository.get_by_key(conn, program.id, data.key) is not None:
            raise Conflict(f"reward {data.key!r} already exists", field="key")
        row = self._new_row(program, data, now)
        await self._check(conn, program, row)
        await self.repository.insert(conn, [row])
        return await self.get(conn, program, data.key, None, now)

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        data: RewardUpdate,
        now: datetime,
    ) -> Reward:
        """Change the fields sent; ``status: archived`` takes the reward off the shop.
        ``stock`` sets what is left (a restock)."""
        row = await self._require(conn, program, key)
        changes = await self._checked_changes(
            conn, program, row, data.model_dump(exclude_unset=True)
        )
        if changes:
            await self.repository.update(conn, row.id, changes | {"updated_at": now})
        return await self.get(conn, program, key, None, now)

    async def set_total_stock(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        total: int | None,
        now: datetime,
    ) -> Reward:
        """Restock by the number of items in all (the console's "total"): what is left
        becomes ``total`` less the redemptions that were not cancelled; ``None`` makes the
        stock unlimited. A total below what has been redeemed is refused, naming
        ``stock_total``. The reward's row is locked first, so a redemption racing this
        either is counted or takes its item from the new stock, never neither."""
        row = await self._require(conn, program, key)
        if total is None:
            return await self.update(conn, program, key, RewardUpdate(stock=None), now)
        await self.repository.lock(conn, row.id)
        redeemed = (await self.repository.redeemed(conn, [row.id]))[row.id]
        if total < redeemed:
            raise InvalidInput(
                f"a total stock of {total} is below the {redeemed} already redeemed",
                field="stock_total",
                redeemed=redeemed,
            )
        await self.repository.update(conn, row.id, {"stock": total - redeemed, "updated_at": now})
        return await self.get(conn, program, key, None, now)

    async def redeemed(
        self, conn: AsyncConnection, program: ProgramContext, reward_ids: Sequence[UUID]
    ) -> dict[UUID, int]:
        """How many of each reward have been redeemed (redemptions not cancelled): with the
        stock left, what the console shows as the total."""
        return await self.repository.redeemed(conn, reward_ids)

    async def _require(self, conn: AsyncConnection, program: ProgramContext, key: str) -> Any:
        row = await self.repository.get_by_key(conn, program.id, key)
        if row is None:
            raise NotFound(f"no reward {key!r}", field="key")
        return row

    # --- loading a catalog file --------------------------------------------------------------

    async def load(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        rows: Sequence[tuple[int, dict[str, Any]]],
        now: datetime,
        *,
        write: bool = True,
    ) -> LoadReport:
        """Create or update (by key) the rewards of a file's rows, given as (line, fields).

        Every row is checked first; with any bad row nothing is written and the report
        lists each bad row with its line. Fields a row leaves out keep their value on an
        existing reward (a reload keeps the live stock unless the row gives one). With
        ``write`` false the rows are only checked (the caller found other bad rows).
        """
        report = LoadReport()
        keys = [str(raw.get("key")) for _, raw in rows if raw.get("key") is not None]
        existing = await self.repository.by_keys(conn, program.id, keys)
        seen: dict[str, int] = {}
        inserts: list[dict[str, Any]] = []
        updates: list[tuple[Any, dict[str, Any]]] = []
        for line, cells in rows:
            raw = catalog_numbers(cells)
            try:
                key = raw.get("key")
                if isinstance(key, str) and key in seen:
                    raise InvalidInput(f"key {key!r} is already on line {seen[key]}", field="key")
                found = existing.get(key) if isinstance(key, str) else None
                if found is None:
                    data = self._validated(RewardCreate, raw)
                    row = self._new_row(program, data, now)
                    await self._check(conn, program, row)
                    inserts.append(row)
                else:
                    changes = await self._checked_changes(
                        conn, program, found, self._changes_of(found, raw)
                    )
                    updates.append((found, changes))
                if isinstance(key, str):
                    seen[key] = line
            except KopilkaError as exc:
                report.errors.append((line, exc.detail))
        if report.errors or not write:
            return report
        await self.repository.insert(conn, inserts)
        for found, changes in updates:
            await self.repository.update(conn, found.id, changes | {"updated_at": now})
        report.created = [row["key"] for row in inserts]
        report.updated = [found.key for found, _ in updates]
        return report

    @staticmethod
    def _validated(model: type[Any], raw: dict[str, Any]) -> Any:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise invalid(exc) from None

    def _changes_of(self, found: Any, raw: dict[str, Any]) -> dict[str, Any]:
        fields = dict(raw)
        fields.pop("key")
        kind = fields.pop("kind", found.kind)
        if kind != found.kind:
            raise InvalidInput(
                f"kind cannot change (reward {found.key!r} is {found.kind}): use a new key",
                field="kind",
            )
        data = self._validated(RewardUpdate, fields)
        return dict(data.model_dump(exclude_unset=True))

    # --- reads -------------------------------------------------------------------------------

    async def _codes_left(self, conn: AsyncConnection, rows: Sequence[Any]) -> dict[UUID, int]:
        pooled = [row.id for row in rows if row.code_source == "pool"]
        return await self.repository.free_codes(conn, pooled)

    async def _member(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> MemberView:
        """What judging rewards needs of a member, read without a lock (a catalog is a
        snapshot; redeeming reads it all again under the member's lock)."""
        statuses = await member_service.statuses(conn, program, [member_id])
        if member_id not in statuses:
            raise NotFound(f"member {member_id} not found", field="member_id")
        tier = await tier_service.current_tier(conn, program, member_id, now)
        balances = await ledger_service.balances(conn, program, member_id)
        tags = frozenset((await member_service.get(conn, program, member_id)).tags)
        return MemberView(member_id, statuses[member_id], tier, balances, tags)

    async def _judged(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        rows: Sequence[Any],
        member: MemberView,
        now: datetime,
    ) -> list[Judged]:
        codes = await self._codes_left(conn, rows)
        taken = await self.repository.taken(conn, member.member_id, [row.id for row in rows])
        offers = await benefit_service.reward_offers(conn, program, member.member_id, now)
        return judge_rows(program, rows, member, codes, taken, offers, now)

    async def get(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        member_id: UUID | None,
        now: datetime,
    ) -> Reward:
        """A reward; for a member also their price and whether (or why not) they can take it."""
        row = await self._require(conn, program, key)
        if member_id is None:
            codes = await self._codes_left(conn, [row])
            return reward_out(row, codes.get(row.id))
        member = await self._member(conn, program, member_id, now)
        [judged] = await self._judged(conn, program, [row], member, now)
        return judged.out()

    async def catalog(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        member_id: UUID | None,
        affordable: bool,
        category: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
        now: datetime,
    ) -> RewardPage:
        """Rewards in key order. For a member: only those on offer to them (active, in their
        window, for their tier, in stock), each at their price with ``can_redeem``; with
        ``affordable`` only those their balance pays for now."""
        after = decode_key_cursor(cursor) if cursor else None
        if member_id is None:
            if affordable:
                raise InvalidInput("affordable needs member_id", field="affordable")
            rows = await self.repository.page(
                conn, program.id, after=after, limit=limit + 1, category=category, status=status
            )
            codes = await self._codes_left(conn, rows[:limit])
            items = [reward_out(row, codes.get(row.id)) for row in rows[:limit]]
            return RewardPage(items=items, next_cursor=self._next(items, len(rows) > limit))
        member = await self._member(conn, program, member_id, now)
        found: list[Reward] = []
        more = False
        while not more:
            # What SQL can tell (active, window, counted stock) is filtered there; the tier,
            # pools and the balance here, a chunk at a time, until the page is full.
            rows = await self.repository.page(
                conn, program.id, after=after, limit=CHUNK, category=category, on_offer_at=now
            )
            for judged in await self._judged(conn, program, rows, member, now):
                if not judged.verdict.visible or (affordable and not judged.affordable):
                    continue
                if len(found) == limit:
                    more = True
                    break
                found.append(judged.out())
            if len(rows) < CHUNK:
                break
            after = rows[-1].key
        return RewardPage(items=found, next_cursor=self._next(found, more))

    async def affordable(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: Sequence[UUID],
        now: datetime,
        limit: int,
    ) -> dict[UUID, list[Affordable]]:
        """For each member found, at most ``limit`` rewards priced in the program's points
        that they can take now with their available points, judged as a redemption judges
        them (:func:`judge_rows`: a reward exclusive to other tiers, not yet open to them —
        early access counts —, out of stock or past their limit is not among them); the
        dearest first (their price, then the key). A member who can take none is absent.

        No lock (a snapshot, for a message). The rewards, pools, statuses, balances and
        redemptions are read once for all the members; the tier and the personal offers,
        once per member."""
        points = program.settings.points_currency()
        rows = [row for row in await self._active(conn, program) if row.currency == points]
        if not rows or not member_ids:
            return {}
        statuses = await member_service.statuses(conn, program, member_ids)
        members = sorted(statuses)
        balances = await ledger_service.available_of(conn, program, members)
        codes = await self._codes_left(conn, rows)
        taken = await self.repository.taken_by_members(conn, members, [row.id for row in rows])
        found: dict[UUID, list[Affordable]] = {}
        for member_id in members:
            tier = await tier_service.current_tier(conn, program, member_id, now)
            offers = await benefit_service.reward_offers(conn, program, member_id, now)
            member = MemberView(
                member_id,
                statuses[member_id],
                tier,
                {points: Balance(available=balances.get(member_id, 0))},
                frozenset((await member_service.get(conn, program, member_id)).tags),
            )
            own = {row.id: taken.get((member_id, row.id), 0) for row in rows}
            judged = judge_rows(program, rows, member, codes, own, offers, now)
            takeable = sorted(
                (j for j in judged if j.verdict.can_redeem),
                key=lambda j: (-j.verdict.price, j.row.key),
            )
            if takeable:
                found[member_id] = [
                    Affordable(j.row.key, j.row.name, j.verdict.price) for j in takeable[:limit]
                ]
        return found

    async def _active(self, conn: AsyncConnection, program: ProgramContext) -> list[Any]:
        """Every active reward of the program, in key order. Not filtered by the window in
        SQL: a reward that opens later may already be open to a tier with early access,
        which only :func:`judge_rows` knows."""
        rows: list[Any] = []
        after: str | None = None
        while True:
            chunk = await self.repository.page(
                conn, program.id, after=after, limit=CHUNK, category=None, status="active"
            )
            rows.extend(chunk)
            if len(chunk) < CHUNK:
                return rows
            after = chunk[-1].key

    @staticmethod
    def _next(items: Sequence[Reward], more: bool) -> str | None:
        return encode_cursor(items[-1].key) if more and items else None

    async def names(
        self, conn: AsyncConnection, program: ProgramContext, keys: Sequence[str]
    ) -> dict[str, str]:
        """The names of the rewards of ``keys`` that exist (in one query): what a member's
        offer of a reward is called."""
        found = await self.repository.by_keys(conn, program.id, keys)
        return {key: row.name for key, row in found.items()}

    # --- code pools --------------------------------------------------------------------------

    async def add_codes(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        data: CodesAdd,
        now: datetime,
    ) -> CodesAdded:
        """Add codes to a pooled digital reward; codes the pool already has are skipped."""
        row = await self._require(conn, program, key)
        if row.kind != "digital" or row.code_source != "pool":
            raise InvalidInput(
                f"reward {key!r} has no code pool: only digital rewards with code_source "
                f"'pool' take codes",
                field="key",
            )
        codes = list(dict.fromkeys(code.strip() for code in data.codes))
        if "" in codes:
            raise InvalidInput("codes must not be blank", field="codes")
        known = await self.repository.existing_codes(conn, row.id, codes)
        new = [code for code in codes if code not in known]
        await self.repository.insert_codes(
            conn,
            [
                {
                    "id": new_id(),
                    "program_id": program.id,
                    "reward_id": row.id,
                    "code": code,
                    "redemption_id": None,
                    "created_at": now,
                }
                for code in new
            ],
        )
        available = (await self.repository.free_codes(conn, [row.id]))[row.id]
        return CodesAdded(
            added=len(new), duplicates=len(data.codes) - len(new), available=available
        )


reward_service = RewardService()
