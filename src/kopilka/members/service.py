"""Member registration, look-up, profile changes, block and unblock. Never commits."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.clock import as_utc
from kopilka.kit.ids import new_id
from kopilka.kit.sql import is_postgres
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
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.stores.service import store_service

MemberHit = tuple[UUID, str]  # (member id, status)
# The customer 360's fields, stored as given (validated by the schema).
PROFILE_FIELDS = ("gender", "city", "address", "preferred_store", "preferred_channel")
# Merged profiles point to their survivor; a chain longer than this is not followed.
MAX_MERGE_HOPS = 8
# A survivor keeps its own of these; the merged profile's are freed, not moved.
SINGLE_IDENTIFIERS = ("phone", "email")
DUPLICATE_KEYS = {"name_birthday": "match_name", "email": "match_email"}


@dataclass(frozen=True)
class MemberProfile:
    joined_at: datetime
    birthday: date | None
    tags: frozenset[str]
    attributes: dict[str, Any]
    status: str


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
            **{field: getattr(data, field) for field in PROFILE_FIELDS},
            "consents": data.consents.model_dump(),
            "status": "active",
            "status_reason": None,
            "referral_code": data.referral_code,
            "match_name": domain.name_key(data.name, data.birthday),
            "match_email": domain.email_key(values.get("email")),
            "merged_into": None,
            "tags": sorted(set(data.tags)),
            "attributes": domain.checked_attributes(
                data.attributes, program.settings.member_attributes
            ),
            "created_at": now,
            "updated_at": now,
        }
        identifiers = [
            {"program_id": program.id, "member_id": member_id, "kind": kind, "value": value}
            for kind, value in pairs
        ]
        return row, identifiers

    async def register(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        data: MemberCreate,
        now: datetime,
        *,
        channel: str = "api",
    ) -> Member:
        row, identifiers = self.build(program, data, now)
        await self._ensure_known_store(conn, program, data.preferred_store)
        await self._ensure_free(conn, program.id, [(i["kind"], i["value"]) for i in identifiers])
        try:
            async with conn.begin_nested():
                await self.register_many(conn, program, [(row, identifiers)], now, channel=channel)
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
        *,
        channel: str = "import",
        uow: UnitOfWork | None = None,
    ) -> None:
        """Members and their identifiers, one statement per table for any number of them
        (imports, the demo), each with its ``member.registered`` event. Balance rows are
        opened by the ledger when a member's points first move."""
        if not rows:
            return
        async with unit_of_work(conn, now, uow) as unit:
            self.repository.stage(unit, [r for r, _ in rows], [i for _, ids in rows for i in ids])
            unit.emit(*(_registered(program, row, ids, channel) for row, ids in rows))

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

    def ensure_writable(self, member: Member) -> None:
        """A merged profile takes no changes (its survivor does); an erased one takes none
        at all. A 409 that says which."""
        if member.status == "merged":
            raise Conflict(
                f"member {member.id} was merged into {member.merged_into}: use that id",
                field="member_id",
            )
        if member.status == "erased":
            raise Conflict(
                f"member {member.id}'s personal data was erased: it takes no more changes",
                field="member_id",
            )

    async def writable(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> Member:
        """The member, if changes may be made to them (404 if not of the program, 409 if
        merged or erased)."""
        member = await self.get(conn, program, member_id)
        self.ensure_writable(member)
        return member

    async def _ensure_known_store(
        self, conn: AsyncConnection, program: ProgramContext, code: str | None
    ) -> None:
        """A preferred store is one of the program's stores, once it keeps a list of them
        (as a purchase's store is)."""
        if code is not None and await store_service.unknown_stores(conn, program, {code}):
            raise InvalidInput(
                f"store {code!r} is not one of the program's stores", field="preferred_store"
            )

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
            **{field: getattr(row, field) for field in PROFILE_FIELDS},
            consents=Consents.model_validate(row.consents),
            status=row.status,
            status_reason=row.status_reason,
            merged_into=row.merged_into,
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
                statuses = await self._follow_merges(
                    conn,
                    program,
                    await self.repository.statuses(conn, program.id, [UUID(v) for v in values]),
                )
                found.update({("id", str(k)): hit for k, hit in statuses.items()})
            else:
                hits = await self.repository.find_ids(conn, program.id, kind, values)
                found.update({(kind, v): hit for v, hit in hits.items()})
        # An erased member names no one: nothing finds them, not even by their id.
        return [
            hit if (hit := found.get(key) if key else None) and hit[1] != "erased" else None
            for key in normalised
        ]

    async def find_stored(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        identifiers: Sequence[tuple[str, str]],
    ) -> dict[tuple[str, str], MemberHit]:
        """(kind, value) → (member id, status) for those of ``identifiers`` a member of the
        program has, one query per kind. The values must already be in their stored form
        (as :meth:`build` makes them): a bulk caller that normalised them once does not pay
        for it again, as it would through :meth:`resolve_many`."""
        by_kind: dict[str, set[str]] = {}
        for kind, value in identifiers:
            by_kind.setdefault(kind, set()).add(value)
        found: dict[tuple[str, str], MemberHit] = {}
        for kind, values in by_kind.items():
            hits = await self.repository.find_ids(conn, program.id, kind, sorted(values))
            found.update({(kind, value): hit for value, hit in hits.items()})
        return found

    async def _follow_merges(
        self, conn: AsyncConnection, program: ProgramContext, statuses: dict[UUID, str]
    ) -> dict[UUID, MemberHit]:
        """Each id as the member it names now: a merged profile's id names its survivor
        (followed through later merges), so a till holding an old id still finds the
        person."""
        hits = {member_id: (member_id, status) for member_id, status in statuses.items()}
        for _ in range(MAX_MERGE_HOPS):
            merged = [k for k, (_, status) in hits.items() if status == "merged"]
            if not merged:
                break
            survivors = await self.repository.survivors(
                conn, program.id, [hits[k][0] for k in merged]
            )
            for k in merged:
                hits[k] = survivors.get(hits[k][0], hits[k])
        return hits

    async def profiles(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> dict[UUID, MemberProfile]:
        """Every member of the program as the rules see their profile."""
        return {
            r.id: MemberProfile(
                as_utc(r.created_at),
                r.birthday,
                frozenset(r.tags or ()),
                dict(r.attributes or {}),
                r.status,
            )
            for r in await self.repository.profiles(conn, program.id)
        }

    async def batch_end(
        self, conn: AsyncConnection, program_id: UUID, after: UUID | None, size: int
    ) -> UUID | None:
        """Where the next batch of ``size`` members after ``after`` ends (in id order), for
        jobs that walk a whole program a batch per transaction; None when none are left."""
        return await self.repository.batch_end(conn, program_id, after, size)

    async def active_ids(
        self, conn: AsyncConnection, program: ProgramContext, joined_before: datetime
    ) -> list[UUID]:
        """Every active member of the program who joined before ``joined_before``, in id
        order (the list of a notice to all)."""
        return await self.repository.active_ids(conn, program.id, joined_before)

    async def born_on(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        days: Sequence[tuple[int, int]],
        *,
        after: UUID | None,
        limit: int,
        joined_by: datetime | None = None,
    ) -> list[UUID]:
        """Active members whose birthday is one of ``days`` (month, day), in id order after
        ``after`` (and, given ``joined_by``, members by then): a chunk of a birthday job."""
        return await self.repository.born_on(
            conn, program.id, days, after=after, limit=limit, joined_by=joined_by
        )

    async def joined_on(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        days: Sequence[tuple[int, int]],
        *,
        before: date,
        after: UUID | None,
        limit: int,
    ) -> list[UUID]:
        """Active members who joined on one of ``days`` (month, day in the program's time
        zone) of an earlier year than ``before``'s — whose anniversary of joining it is —,
        in id order after ``after``: a chunk of a daily job."""
        spans = domain.local_day_spans(days, before, program.settings.timezone)
        return await self.repository.joined_within(
            conn, program.id, spans, after=after, limit=limit
        )

    async def statuses(
        self, conn: AsyncConnection, program: ProgramContext, member_ids: Sequence[UUID]
    ) -> dict[UUID, str]:
        """The status of each of these members found in the program (no lock)."""
        return await self.repository.statuses(conn, program.id, member_ids)

    async def lock(
        self, conn: AsyncConnection, program: ProgramContext, member_ids: Sequence[UUID]
    ) -> dict[UUID, str]:
        """The member lock, taken first by every change of a member's value or state (points,
        tiers, tags, status): the members' rows, in id order, so that two transactions never
        wait on each other in a cycle. Held to the end of the transaction. Returns the
        statuses of the members found in the program."""
        return await self.repository.lock(conn, program.id, member_ids)

    async def resolve_and_lock(
        self, conn: AsyncConnection, program: ProgramContext, refs: Sequence[MemberRef]
    ) -> list[MemberHit | None]:
        """Resolve references and take the member lock of those found (the purchase path's
        first step). On PostgreSQL, references of one identifier kind (a till's batch) take
        one round trip."""
        kinds = {ref.kind_and_value()[0] for ref in refs}
        if not is_postgres(conn) or len(kinds) != 1 or "id" in kinds:
            members = await self.resolve_many(conn, program, refs)
            statuses = await self.lock(conn, program, [m[0] for m in members if m is not None])
            return [(m[0], statuses[m[0]]) if m and m[0] in statuses else None for m in members]
        kind = kinds.pop()
        values: list[str | None] = []
        for ref in refs:
            try:
                values.append(domain.normalise_identifier(kind, ref.kind_and_value()[1]))
            except InvalidInput:
                values.append(None)
        wanted = [v for v in values if v is not None]
        found = await self.repository.find_and_lock_pg(conn, program.id, kind, wanted)
        return [found.get(v) if v is not None else None for v in values]

    def stage_tags(self, uow: UnitOfWork, member_id: UUID, tags: list[str]) -> None:
        """The member's tags as they stand after a rule added one (the member is locked)."""
        self.repository.stage_tags(uow, member_id, tags)

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        data: MemberUpdate,
        now: datetime,
    ) -> Member:
        before = (await self.writable(conn, program, member_id)).model_dump(mode="json")
        changes = data.model_dump(exclude_unset=True)
        await self._ensure_known_store(conn, program, changes.get("preferred_store"))
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
        if "attributes" in changes:
            changes["attributes"] = domain.checked_attributes(
                changes["attributes"], program.settings.member_attributes
            )
        if "tags" in changes or "attributes" in changes:
            # Rules tag members under the member lock; so does this update.
            await self.lock(conn, program, [member_id])
            if "tags" in changes:
                changes["tags"] = sorted(set(changes["tags"]))
        values.update({k: v for k, v in changes.items() if k != "consents"})
        if {"name", "birthday", "email"} & values.keys():
            current = await self.repository.get(conn, program.id, member_id)
            name = values.get("name", current.name)
            birthday = values.get("birthday", current.birthday)
            values["match_name"] = domain.name_key(name, birthday)
            values["match_email"] = domain.email_key(values.get("email", current.email))
        await self.repository.update(conn, member_id, values)
        after = (await self.get(conn, program, member_id)).model_dump(mode="json")
        # Only what really changed: a PATCH repeating the member's values is no event.
        changed = sorted(k for k in values if k != "updated_at" and before.get(k) != after.get(k))
        if not changed:
            audit_service.nothing_changed()
            return await self.get(conn, program, member_id)
        await audit_service.record(
            conn,
            program.id,
            "member.updated",
            subject_type="member",
            subject_id=member_id,
            now=now,
            before={k: before.get(k) for k in changed},
            after={k: after.get(k) for k in changed},
        )
        async with unit_of_work(conn, now) as unit:
            unit.emit(
                events.MemberUpdated(
                    program_id=program.id,
                    member_id=member_id,
                    occurred_at=now,
                    changed=changed,
                    values={k: values[k] for k in changed},
                )
            )
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
        # Under the member lock, so a block and a redemption never interleave.
        await self.lock(conn, program, [member_id])
        before = await self.writable(conn, program, member_id)
        await self.repository.update(
            conn, member_id, {"status": status, "status_reason": reason, "updated_at": now}
        )
        # Blocked again for another reason is a change of state too (the reason is shown).
        if (before.status, before.status_reason) != (status, reason):
            await audit_service.record(
                conn,
                program.id,
                "member.blocked" if status == "blocked" else "member.unblocked",
                subject_type="member",
                subject_id=member_id,
                now=now,
                before={"status": before.status, "reason": before.status_reason},
                after={"status": status, "reason": reason},
            )
            event_type = events.MemberBlocked if status == "blocked" else events.MemberUnblocked
            async with unit_of_work(conn, now) as unit:
                unit.emit(
                    event_type(
                        program_id=program.id, member_id=member_id, occurred_at=now, reason=reason
                    )
                )
        return await self.get(conn, program, member_id)


def _registered(
    program: ProgramContext, row: dict[str, Any], identifiers: list[dict[str, Any]], channel: str
) -> events.MemberRegistered:
    ids = {i["kind"]: i["value"] for i in identifiers}
    return events.MemberRegistered(
        program_id=program.id,
        member_id=row["id"],
        occurred_at=row["created_at"],
        card=ids.get("card"),
        phone=row["phone"],
        email=row["email"],
        external_id=ids.get("external_id"),
        language=row["language"],
        birthday=row["birthday"],
        channel=channel,
        referral_code=row["referral_code"],
    )


member_service = MemberService()
