"""Member registration, look-up, profile changes, block and unblock. Never commits."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.bulk import WriteBatch
from kopilka.kit.ids import new_id
from kopilka.kit.sql import is_postgres
from kopilka.ledger.domain import Balance
from kopilka.ledger.repository import BalanceKey, ledger_repository
from kopilka.members import domain
from kopilka.members.repository import MemberRepository, member_repository
from kopilka.members.schemas import (
    Consents,
    Identifier,
    Member,
    MemberCreate,
    MemberRef,
    MemberUpdate,
)
from kopilka.programs.service import ProgramContext


def _identifier_pairs(data: MemberCreate, card: str) -> list[tuple[str, str]]:
    pairs = [("card", card)]
    if data.phone:
        pairs.append(("phone", domain.normalise_phone(data.phone)))
    if data.email:
        pairs.append(("email", domain.normalise_email(data.email)))
    if data.external_id:
        pairs.append(("external_id", data.external_id.strip()))
    return pairs


class MemberService:
    def __init__(self, repository: MemberRepository = member_repository) -> None:
        self.repository = repository

    def build(
        self, program: ProgramContext, data: MemberCreate, now: datetime
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Validate and normalise a registration into rows, without touching storage."""
        card = domain.normalise_card(data.card) if data.card else domain.generate_card_number()
        pairs = _identifier_pairs(data, card)
        member_id = new_id()
        values = dict(pairs)
        row = {
            "id": member_id,
            "program_id": program.id,
            "name": data.name,
            "phone": values.get("phone"),
            "email": values.get("email"),
            "birthday": data.birthday,
            "language": data.language,
            "consents": data.consents.model_dump(),
            "status": "active",
            "status_reason": None,
            "referral_code": data.referral_code,
            "tags": sorted(set(data.tags)),
            "attributes": data.attributes,
            "created_at": now,
            "updated_at": now,
        }
        identifiers = [
            {"program_id": program.id, "member_id": member_id, "kind": kind, "value": value}
            for kind, value in pairs
        ]
        return row, identifiers

    async def register(
        self, conn: AsyncConnection, program: ProgramContext, data: MemberCreate, now: datetime
    ) -> Member:
        row, identifiers = self.build(program, data, now)
        await self._ensure_free(conn, program.id, [(i["kind"], i["value"]) for i in identifiers])
        try:
            async with conn.begin_nested():
                await self._write(conn, program, [(row, identifiers)], now)
        except IntegrityError as exc:
            # A concurrent registration took one of the identifiers after our check.
            raise Conflict("one of the member's identifiers is already registered") from exc
        return await self.get(conn, program, row["id"])

    async def register_many(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        rows: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]],
        now: datetime,
    ) -> None:
        """Insert pre-built registrations with one statement per table (imports, the demo)."""
        await self._write(conn, program, rows, now)

    async def _write(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        rows: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]],
        now: datetime,
    ) -> None:
        """Members, their identifiers and their opening balances, written together."""
        if not rows:
            return
        batch = WriteBatch()
        self.repository.stage(batch, [r for r, _ in rows], [i for _, ids in rows for i in ids])
        ledger_repository.stage_opening_balances(
            batch, program.id, [r["id"] for r, _ in rows], program.settings.currency_codes(), now
        )
        await batch.write(conn)

    async def _ensure_free(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        pairs: Sequence[tuple[str, str]],
        exclude_member: UUID | None = None,
    ) -> None:
        taken = await self.repository.taken_identifiers(conn, program_id, pairs, exclude_member)
        if taken:
            kind, value = taken[0]
            raise Conflict(f"{kind} {value!r} is already registered to another member", field=kind)

    async def get(self, conn: AsyncConnection, program: ProgramContext, member_id: UUID) -> Member:
        row = await self.repository.get(conn, program.id, member_id)
        if row is None:
            raise NotFound(f"member {member_id} not found", field="member")
        identifiers = await self.repository.identifiers(conn, member_id)
        return Member(
            id=row.id,
            name=row.name,
            phone=row.phone,
            email=row.email,
            birthday=row.birthday,
            language=row.language,
            consents=Consents.model_validate(row.consents),
            status=row.status,
            status_reason=row.status_reason,
            referral_code=row.referral_code,
            tags=list(row.tags or []),
            attributes=dict(row.attributes or {}),
            identifiers=[
                Identifier.model_validate({"kind": k, "value": v}) for k, v in identifiers
            ],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[Member]:
        ids = await self.repository.page(conn, program.id, limit=limit, before=before)
        return [await self.get(conn, program, member_id) for member_id in ids]

    async def resolve(
        self, conn: AsyncConnection, program: ProgramContext, ref: MemberRef
    ) -> tuple[UUID, str]:
        """(member id, status) of the member named by ``ref``; 404 if there is none."""
        found = await self.resolve_many(conn, program, [ref])
        result = found[0]
        if result is None:
            kind, value = ref.kind_and_value()
            raise NotFound(f"no member with {kind} {value!r}", field=f"member.{kind}")
        return result

    async def resolve_many(
        self, conn: AsyncConnection, program: ProgramContext, refs: Sequence[MemberRef]
    ) -> list[tuple[UUID, str] | None]:
        """Resolve many references with one query per identifier kind."""
        by_kind: dict[str, list[str]] = {}
        normalised: list[tuple[str, str] | None] = []
        for ref in refs:
            kind, value = ref.kind_and_value()
            try:
                value = value if kind == "id" else domain.normalise_identifier(kind, value)
            except InvalidInput:
                normalised.append(None)
                continue
            normalised.append((kind, value))
            by_kind.setdefault(kind, []).append(value)
        found: dict[tuple[str, str], tuple[UUID, str]] = {}
        for kind, values in by_kind.items():
            if kind == "id":
                statuses = await self.repository.statuses(
                    conn, program.id, [UUID(v) for v in values]
                )
                found.update({("id", str(k)): (k, s) for k, s in statuses.items()})
            else:
                hits = await self.repository.find_ids(conn, program.id, kind, values)
                found.update({(kind, v): hit for v, hit in hits.items()})
        return [found.get(key) if key else None for key in normalised]

    async def resolve_and_lock(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        refs: Sequence[MemberRef],
        now: datetime,
    ) -> tuple[list[tuple[UUID, str] | None], dict[BalanceKey, Balance]]:
        """Resolve references and lock the members' balance rows (the purchase path's first
        step). On PostgreSQL, references of one identifier kind (a till's single purchase)
        take one round trip instead of two."""
        currencies = program.settings.currency_codes()
        kinds = {ref.kind_and_value()[0] for ref in refs}
        if not is_postgres(conn) or len(kinds) != 1 or "id" in kinds:
            members = await self.resolve_many(conn, program, refs)
            ids = {m[0] for m in members if m is not None}
            return members, await ledger_repository.lock_balances(
                conn, program.id, ids, currencies, now
            )
        kind = kinds.pop()
        values: list[str | None] = []
        for ref in refs:
            try:
                values.append(domain.normalise_identifier(kind, ref.kind_and_value()[1]))
            except InvalidInput:
                values.append(None)
        wanted = [v for v in values if v is not None]
        found, balances = await self.repository.find_and_lock_pg(conn, program.id, kind, wanted)
        complete = {
            value: hit
            for value, hit in found.items()
            if all((hit[0], currency) in balances for currency in currencies)
        }
        rest = [v for v in wanted if v not in complete]
        if rest:
            # Members whose balance rows are missing (a currency added later) or unknown ones.
            more = await self.repository.find_ids(conn, program.id, kind, rest)
            if more:
                balances.update(
                    await ledger_repository.lock_balances(
                        conn, program.id, {hit[0] for hit in more.values()}, currencies, now
                    )
                )
            complete.update(more)
        return [complete.get(v) if v is not None else None for v in values], balances

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        data: MemberUpdate,
        now: datetime,
    ) -> Member:
        await self.get(conn, program, member_id)
        changes = data.model_dump(exclude_unset=True)
        values: dict[str, Any] = {"updated_at": now}
        for kind in ("phone", "email"):
            if kind in changes:
                raw = changes.pop(kind)
                value = domain.normalise_identifier(kind, raw) if raw else None
                if value is not None:
                    await self._ensure_free(conn, program.id, [(kind, value)], member_id)
                await self.repository.replace_identifier(conn, program.id, member_id, kind, value)
                values[kind] = value
        if "consents" in changes and changes["consents"] is not None:
            values["consents"] = changes.pop("consents")
        for key in ("tags", "attributes"):  # null means "leave as they are"
            if key in changes and changes[key] is None:
                del changes[key]
        if "tags" in changes or "attributes" in changes:
            # Rules tag members under the member's ledger lock; so does this update.
            await ledger_repository.lock_balances(
                conn, program.id, [member_id], program.settings.currency_codes(), now
            )
            if "tags" in changes:
                changes["tags"] = sorted(set(changes["tags"]))
        values.update({k: v for k, v in changes.items() if k != "consents"})
        await self.repository.update(conn, member_id, values)
        return await self.get(conn, program, member_id)

    async def set_status(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        status: str,
        reason: str,
        now: datetime,
    ) -> Member:
        await self.get(conn, program, member_id)
        # Under the member's ledger lock, so a block and a redemption never interleave.
        await ledger_repository.lock_balances(
            conn, program.id, [member_id], program.settings.currency_codes(), now
        )
        await self.repository.update(
            conn, member_id, {"status": status, "status_reason": reason, "updated_at": now}
        )
        return await self.get(conn, program, member_id)


member_service = MemberService()
