"""Finding members as a person searches for them: a page of the newest, a search box's text
(an identifier, else a part of a name), and a member's likely duplicates. Never commits."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import NotFound
from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres
from kopilka.members import domain
from kopilka.members.repository import MemberRepository, member_repository
from kopilka.members.schemas import DuplicateMember, MemberRef
from kopilka.members.service import DUPLICATE_KEYS, MemberService, member_service
from kopilka.programs.service import ProgramContext

# A search by name answers at most this many members (the newest who match).
NAME_SEARCH_LIMIT = 50


@dataclass(frozen=True)
class MemberListing:
    """A member as a list of members shows them (one query for a whole page)."""

    id: UUID
    name: str | None
    phone: str | None
    email: str | None
    card: str | None
    status: str
    created_at: datetime


def name_patterns(text: str, *, case_folds: bool) -> list[str]:
    """``LIKE`` patterns that find ``text`` anywhere in a name, its wildcards escaped.
    Where ``LIKE`` folds case (PostgreSQL's ``ILIKE``) one pattern does; where it folds
    only ASCII (SQLite), the usual spellings of a name too: as typed, lower, upper,
    capitalised (``анна`` finds ``Анна``)."""
    words = " ".join(text.split())
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    forms = [escaped]
    if not case_folds:
        forms += [escaped.lower(), escaped.upper(), escaped.title()]
    return [f"%{form}%" for form in dict.fromkeys(forms)]


class MemberSearch:
    def __init__(
        self,
        members: MemberService = member_service,
        repository: MemberRepository = member_repository,
    ) -> None:
        self.members = members
        self.repository = repository

    async def listing(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[MemberListing]:
        """A page of the program's members, newest first, in one query."""
        rows = await self.repository.listing(conn, program.id, limit=limit, before=before)
        return [_listing(row) for row in rows]

    async def search_by_name(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        text: str,
        *,
        limit: int = NAME_SEARCH_LIMIT,
    ) -> list[MemberListing]:
        """Members whose name contains ``text`` (case aside), newest first, at most
        ``limit`` (bounded by ``NAME_SEARCH_LIMIT``)."""
        if not text.strip():
            return []
        rows = await self.repository.listing(
            conn,
            program.id,
            limit=min(limit, NAME_SEARCH_LIMIT),
            name_patterns=name_patterns(text, case_folds=is_postgres(conn)),
        )
        return [_listing(row) for row in rows]

    async def search(
        self, conn: AsyncConnection, program: ProgramContext, text: str
    ) -> list[MemberListing]:
        """What a search box finds for ``text``: the member it names as an id, card,
        phone, e-mail or external id (as ``GET /v1/members?identifier=`` finds them, a
        merged id naming its survivor), then the members whose name contains it."""
        text = text.strip()
        if not text:
            return []
        refs = _search_refs(text)
        hits = [hit[0] for hit in await self.members.resolve_many(conn, program, refs) if hit]
        named = await self.search_by_name(conn, program, text)
        if not hits:
            return named
        exact = await self.repository.listing(conn, program.id, limit=len(refs), member_ids=hits)
        return [_listing(row) for row in exact] + [m for m in named if m.id not in hits]

    async def duplicates_of(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> list[tuple[str, DuplicateMember]]:
        """The other profiles that likely belong to the member's person, each with the
        reason (``name_birthday`` or ``email``, as ``GET /v1/members/duplicates`` groups
        them), oldest first; 404 for a member not of the program."""
        row = await self.repository.get(conn, program.id, member_id)
        if row is None:
            raise NotFound(f"member {member_id} not found", field="member")
        found: dict[UUID, tuple[str, DuplicateMember]] = {}
        for reason, column in DUPLICATE_KEYS.items():
            key = getattr(row, column)
            if key is None:
                continue
            for other in await self.repository.sharing(conn, program.id, column, [key]):
                if other.id != member_id and other.id not in found:
                    found[other.id] = (
                        reason,
                        DuplicateMember(
                            id=other.id,
                            name=other.name,
                            email=other.email,
                            phone=other.phone,
                            birthday=other.birthday,
                            created_at=other.created_at,
                        ),
                    )
        return sorted(found.values(), key=lambda hit: (hit[1].created_at, hit[1].id))


def _search_refs(text: str) -> list[MemberRef]:
    """What a search box's text may name: an id, else the identifier it looks like (as
    the API guesses), and a phone number however it was typed (``8 (916) 123-45-67``)."""
    try:
        return [MemberRef(id=UUID(text))]
    except ValueError:
        pass
    kind = domain.guess_identifier_kind(text)
    refs = [MemberRef.model_validate({kind: text})]
    dialled = "".join(c for c in text if c not in " -()")
    if kind != "phone" and dialled.lstrip("+").isdigit() and len(dialled) >= 7:
        refs.append(MemberRef(phone=text))
    return refs


def _listing(row: Any) -> MemberListing:
    return MemberListing(
        id=row.id,
        name=row.name,
        phone=row.phone,
        email=row.email,
        card=row.card,
        status=row.status,
        created_at=as_utc(row.created_at),
    )


member_search = MemberSearch()
