"""A member as a person: the profiles one person has (likely duplicates, merging two), and
the person's data removed (erasure). Never commits; the caller holds the members' locks."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict
from kopilka.members import domain
from kopilka.members.repository import MemberRepository, member_repository
from kopilka.members.schemas import Consents, DuplicateGroup, DuplicateMember, Member
from kopilka.members.service import (
    DUPLICATE_KEYS,
    PROFILE_FIELDS,
    SINGLE_IDENTIFIERS,
    MemberService,
    member_service,
)
from kopilka.programs.service import ProgramContext


class PersonService:
    def __init__(
        self,
        members: MemberService = member_service,
        repository: MemberRepository = member_repository,
    ) -> None:
        self.members = members
        self.repository = repository

    async def merge_profile(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        survivor: UUID,
        merged: UUID,
        now: datetime,
    ) -> tuple[Member, Member]:
        """The profile part of merging ``merged`` into ``survivor`` (the caller holds both
        members' locks): the survivor takes the merged profile's identifiers (but a phone or
        e-mail it has of its own: the merged one's are freed), fills its empty fields from
        it, gains its tags and the attributes it lacks; the merged profile is left empty of
        identifiers and of the person's data (the survivor holds them now), with status
        ``merged`` and a pointer to the survivor. Returns both profiles as they were."""
        keep = await self.members.get(conn, program, survivor)
        gone = await self.members.get(conn, program, merged)
        own = {i.kind for i in keep.identifiers}
        dropped = [k for k in SINGLE_IDENTIFIERS if k in own]
        await self.repository.move_identifiers(conn, merged, survivor, dropped)
        values: dict[str, Any] = {"updated_at": now}
        for field in ("name", "birthday", "language", *PROFILE_FIELDS):
            if getattr(keep, field) is None and getattr(gone, field) is not None:
                values[field] = getattr(gone, field)
        for kind in SINGLE_IDENTIFIERS:
            if kind not in own and getattr(gone, kind) is not None:
                values[kind] = getattr(gone, kind)
        values["tags"] = sorted(set(keep.tags) | set(gone.tags))
        values["attributes"] = {**gone.attributes, **keep.attributes}
        values["match_name"] = domain.name_key(
            values.get("name", keep.name), values.get("birthday", keep.birthday)
        )
        values["match_email"] = domain.email_key(values.get("email", keep.email))
        await self.repository.update(conn, survivor, values)
        await self.repository.update(
            conn,
            merged,
            {
                **_no_person(),
                "attributes": {},
                "status": "merged",
                "status_reason": f"merged into {survivor}",
                "merged_into": survivor,
                "updated_at": now,
            },
        )
        return keep, gone

    async def erase_profile(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        now: datetime,
    ) -> tuple[Member, bool]:
        """The person's data removed from the profile (the right to erasure): name,
        contacts, birthday, address, city, gender, the referral code, custom attributes
        the program marks personal (every one but ``timezone`` when it declares none), and
        every identifier — freed, so nothing finds the profile again. What remains (the
        id, language, tags, preferences) identifies no one. Status ``erased``. Returns the
        profile as it was, and whether anything was erased (an erased profile is left as
        it is). The caller holds the member lock."""
        before = await self.members.get(conn, program, member_id)
        if before.status == "erased":
            return before, False
        if before.status == "merged":
            raise Conflict(
                f"member {member_id} was merged into {before.merged_into}: erase that profile "
                "(the profiles merged into it go with it)",
                field="member_id",
            )
        schema = program.settings.member_attributes
        kept = {
            name: value
            for name, value in before.attributes.items()
            if name in domain.BUILT_IN_ATTRIBUTES
            or (schema and name in schema and not schema[name].personal)
        }
        await self.repository.delete_identifiers(conn, member_id)
        await self.repository.update(
            conn,
            member_id,
            {
                **_no_person(),
                "attributes": kept,
                "status": "erased",
                "status_reason": "personal data erased",
                "updated_at": now,
            },
        )
        return before, True

    async def merged_profiles(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> list[UUID]:
        """Every profile merged into the member, directly or through a chain of merges."""
        found: list[UUID] = []
        frontier = [member_id]
        while frontier:
            frontier = await self.repository.merged_into(conn, program.id, frontier)
            found.extend(frontier)
        return found

    async def duplicates(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        reason: str,
        *,
        after: str | None,
        limit: int,
    ) -> list[DuplicateGroup]:
        """Groups of profiles that likely belong to one person, by ``reason``:
        ``name_birthday`` (the same name, however written, and birthday) or ``email`` (one
        mailbox under two spellings, such as dots and ``+tags`` at Gmail)."""
        column = DUPLICATE_KEYS[reason]
        keys = await self.repository.duplicate_keys(
            conn, program.id, column, after=after, limit=limit
        )
        groups: dict[str, list[DuplicateMember]] = {k: [] for k in keys}
        for row in await self.repository.sharing(conn, program.id, column, keys):
            groups[row.key].append(
                DuplicateMember(
                    id=row.id,
                    name=row.name,
                    email=row.email,
                    phone=row.phone,
                    birthday=row.birthday,
                    created_at=row.created_at,
                )
            )
        return [
            DuplicateGroup(reason=reason, key=key, members=members)
            for key, members in groups.items()
        ]


def _no_person() -> dict[str, Any]:
    """A profile's fields with nothing of the person left in them."""
    return {
        "name": None,
        "phone": None,
        "email": None,
        "birthday": None,
        "gender": None,
        "city": None,
        "address": None,
        "referral_code": None,
        "consents": Consents().model_dump(),
        "match_name": None,
        "match_email": None,
    }


person_service = PersonService()
