"""Every query of support: interactions, tickets and their messages, support settings,
surveys, their versions, invitations and answers.

Locking: a change of a ticket reads its row ``FOR UPDATE`` (PostgreSQL; SQLite has one
writer), so two agents moving one ticket at once take turns and the second sees the
first's status. The breach job takes due tickets with ``SKIP LOCKED``: a ticket an agent
is changing right now is looked at on the next run. An invitation is answered once: its
row is locked while the answer is written, and the answer's unique ``invitation_id``
settles any race that gets past it.
"""

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import (
    Interaction,
    Purchase,
    SupportSetting,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    SurveyVersion,
    Ticket,
    TicketMessage,
)
from kopilka.models.base import table
from kopilka.support.domain import QueueOrder

interactions_t = table(Interaction)
settings_t = table(SupportSetting)
tickets_t = table(Ticket)
messages_t = table(TicketMessage)
surveys_t = table(Survey)
versions_t = table(SurveyVersion)
invitations_t = table(SurveyInvitation)
responses_t = table(SurveyResponse)
purchases_t = table(Purchase)

Key = tuple[datetime, UUID]


def _stores(conn: AsyncConnection, column: Any, stores: Collection[str] | None) -> Any:
    """Rows of these stores only (None: every row, with a store or not)."""
    return None if stores is None else one_of(conn, column, stores)


def _where_stores(query: Select[Any], conn: AsyncConnection, column: Any, stores: Any) -> Any:
    clause = _stores(conn, column, stores)
    return query if clause is None else query.where(clause)


class SupportRepository:
    # --- settings ----------------------------------------------------------------------------

    async def settings(self, conn: AsyncConnection, program_id: UUID) -> dict[str, Any] | None:
        query = select(settings_t.c.document).where(settings_t.c.program_id == program_id)
        found: dict[str, Any] | None = (await conn.execute(query)).scalar_one_or_none()
        return found

    async def save_settings(
        self, conn: AsyncConnection, program_id: UUID, document: dict[str, Any], now: datetime
    ) -> None:
        changed = await conn.execute(
            update(settings_t)
            .where(settings_t.c.program_id == program_id)
            .values(document=document, updated_at=now)
        )
        if changed.rowcount == 0:
            await conn.execute(
                insert(settings_t).values(program_id=program_id, document=document, updated_at=now)
            )

    # --- purchases a ticket or an answer refers to -------------------------------------------

    async def purchase(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        purchase_id: UUID | None = None,
        external_id: str | None = None,
    ) -> Any:
        """A purchase's id, member, external id and store (its row belongs to the purchase
        path; only these columns are read)."""
        c = purchases_t.c
        query = select(c.id, c.member_id, c.external_id, c.store).where(c.program_id == program_id)
        if purchase_id is not None:
            query = query.where(c.id == purchase_id)
        else:
            query = query.where(c.external_id == external_id)
        return (await conn.execute(query)).one_or_none()

    # --- interactions ------------------------------------------------------------------------

    async def insert_interaction(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(interactions_t).values(**row))

    async def interactions(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: Key | None,
        limit: int,
        stores: Collection[str] | None,
    ) -> list[Any]:
        """The member's interactions, newest first (by when they happened)."""
        c = interactions_t.c
        query = select(interactions_t).where(c.program_id == program_id, c.member_id == member_id)
        query = _where_stores(query, conn, c.store, stores)
        if before is not None:
            query = query.where(tuple_(c.occurred_at, c.id) < tuple_(*before))
        query = query.order_by(c.occurred_at.desc(), c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())

    # --- tickets -----------------------------------------------------------------------------

    async def insert_ticket(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(tickets_t).values(**row))

    async def ticket(
        self, conn: AsyncConnection, program_id: UUID, ticket_id: UUID, *, lock: bool = False
    ) -> Any:
        query = select(tickets_t).where(
            tickets_t.c.program_id == program_id, tickets_t.c.id == ticket_id
        )
        if lock and is_postgres(conn):
            query = query.with_for_update()
        return (await conn.execute(query)).one_or_none()

    async def update_ticket(
        self, conn: AsyncConnection, ticket_id: UUID, values: dict[str, Any]
    ) -> None:
        await conn.execute(update(tickets_t).where(tickets_t.c.id == ticket_id).values(**values))

    async def queue(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        statuses: Collection[str] | None,
        assignee_id: UUID | None,
        unassigned: bool,
        priority: str | None,
        category: str | None,
        store: str | None,
        member_id: UUID | None,
        breached_at: datetime | None,
        stores: Collection[str] | None,
        after: Key | None,
        limit: int,
        channel: str | None = None,
        order: QueueOrder = QueueOrder.DEADLINE,
    ) -> list[Any]:
        """Tickets by their next deadline, the oldest first (or by their opening, the
        newest or the oldest first); ``after`` is the last one's key in that order.
        ``breached_at``: only those past a deadline at that instant (flagged by the job,
        or due and not yet flagged)."""
        c = tickets_t.c
        query = select(tickets_t).where(c.program_id == program_id)
        if statuses is not None:
            query = query.where(one_of(conn, c.status, statuses))
        if assignee_id is not None:
            query = query.where(c.assignee_id == assignee_id)
        if unassigned:
            query = query.where(c.assignee_id.is_(None))
        if priority is not None:
            query = query.where(c.priority == priority)
        if category is not None:
            query = query.where(c.category == category)
        if store is not None:
            query = query.where(c.store == store)
        if member_id is not None:
            query = query.where(c.member_id == member_id)
        if channel is not None:
            query = query.where(c.channel == channel)
        if breached_at is not None:
            running = c.paused_at.is_(None) & c.status.in_(("new", "open"))
            query = query.where(
                or_(
                    c.first_response_breached,
                    c.resolution_breached,
                    running
                    & (
                        (c.first_responded_at.is_(None) & (c.first_response_due_at < breached_at))
                        | (c.resolution_due_at < breached_at)
                    ),
                )
            )
        query = _where_stores(query, conn, c.store, stores)
        if order is QueueOrder.NEWEST:
            if after is not None:
                query = query.where(tuple_(c.created_at, c.id) < tuple_(*after))
            query = query.order_by(c.created_at.desc(), c.id.desc())
        elif order is QueueOrder.OLDEST:
            if after is not None:
                query = query.where(tuple_(c.created_at, c.id) > tuple_(*after))
            query = query.order_by(c.created_at, c.id)
        else:
            if after is not None:
                query = query.where(tuple_(c.due_at, c.id) > tuple_(*after))
            query = query.order_by(c.due_at, c.id)
        return list((await conn.execute(query.limit(limit))).all())

    async def member_tickets(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: Key | None,
        limit: int,
        stores: Collection[str] | None = None,
    ) -> list[Any]:
        """The member's tickets, newest first."""
        c = tickets_t.c
        query = select(tickets_t).where(c.program_id == program_id, c.member_id == member_id)
        query = _where_stores(query, conn, c.store, stores)
        if before is not None:
            query = query.where(tuple_(c.created_at, c.id) < tuple_(*before))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())

    async def due_for_breach(
        self, conn: AsyncConnection, program_id: UUID, now: datetime, limit: int
    ) -> list[Any]:
        """Running tickets with a deadline passed and not yet flagged, oldest first; on
        PostgreSQL locked, skipping those another transaction holds."""
        c = tickets_t.c
        query = (
            select(tickets_t)
            .where(
                c.program_id == program_id,
                c.status.in_(("new", "open")),
                c.paused_at.is_(None),
                or_(
                    c.first_responded_at.is_(None)
                    & (c.first_response_due_at < now)
                    & ~c.first_response_breached,
                    (c.resolution_due_at < now) & ~c.resolution_breached,
                ),
            )
            .order_by(c.due_at, c.id)
            .limit(limit)
        )
        if is_postgres(conn):
            query = query.with_for_update(skip_locked=True)
        return list((await conn.execute(query)).all())

    # --- ticket messages ---------------------------------------------------------------------

    async def insert_message(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(messages_t).values(**row))

    async def messages(
        self, conn: AsyncConnection, ticket_ids: Sequence[UUID], *, public_only: bool
    ) -> list[Any]:
        """The messages of these tickets, oldest first."""
        if not ticket_ids:
            return []
        c = messages_t.c
        query = select(messages_t).where(one_of(conn, c.ticket_id, set(ticket_ids)))
        if public_only:
            query = query.where(c.public)
        query = query.order_by(c.created_at, c.id)
        return list((await conn.execute(query)).all())

    async def message(self, conn: AsyncConnection, program_id: UUID, message_id: UUID) -> Any:
        query = select(messages_t).where(
            messages_t.c.program_id == program_id, messages_t.c.id == message_id
        )
        return (await conn.execute(query)).one_or_none()

    # --- surveys -----------------------------------------------------------------------------

    async def insert_survey(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(surveys_t).values(**row))

    async def survey(
        self, conn: AsyncConnection, program_id: UUID, key: str, *, lock: bool = False
    ) -> Any:
        query = select(surveys_t).where(
            surveys_t.c.program_id == program_id, surveys_t.c.key == key
        )
        if lock and is_postgres(conn):
            query = query.with_for_update()
        return (await conn.execute(query)).one_or_none()

    async def survey_by_id(self, conn: AsyncConnection, survey_id: UUID) -> Any:
        query = select(surveys_t).where(surveys_t.c.id == survey_id)
        return (await conn.execute(query)).one_or_none()

    async def surveys(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        after: str | None,
        limit: int,
        status: str | None = None,
        trigger: str | None = None,
    ) -> list[Any]:
        c = surveys_t.c
        query = select(surveys_t).where(c.program_id == program_id)
        if after is not None:
            query = query.where(c.key > after)
        if status is not None:
            query = query.where(c.status == status)
        if trigger is not None:
            query = query.where(c.trigger == trigger)
        return list((await conn.execute(query.order_by(c.key).limit(limit))).all())

    async def update_survey(
        self, conn: AsyncConnection, survey_id: UUID, values: dict[str, Any]
    ) -> None:
        await conn.execute(update(surveys_t).where(surveys_t.c.id == survey_id).values(**values))

    async def insert_version(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(versions_t).values(**row))

    async def questions(self, conn: AsyncConnection, survey_id: UUID, version: int) -> Any:
        query = select(versions_t.c.questions).where(
            versions_t.c.survey_id == survey_id, versions_t.c.version == version
        )
        return (await conn.execute(query)).scalar_one()

    async def replace_questions(
        self, conn: AsyncConnection, survey_id: UUID, version: int, questions: list[Any]
    ) -> None:
        await conn.execute(
            update(versions_t)
            .where(versions_t.c.survey_id == survey_id, versions_t.c.version == version)
            .values(questions=questions)
        )

    async def response_counts(
        self,
        conn: AsyncConnection,
        survey_ids: Sequence[UUID],
        version: int | None = None,
        *,
        stores: Collection[str] | None = None,
    ) -> dict[UUID, int]:
        """Answers per survey (of one ``version``; at ``stores`` only, if given)."""
        if not survey_ids:
            return {}
        c = responses_t.c
        query = select(c.survey_id, func.count()).where(one_of(conn, c.survey_id, set(survey_ids)))
        if version is not None:
            query = query.where(c.version == version)
        query = _where_stores(query, conn, c.store, stores)
        rows = (await conn.execute(query.group_by(c.survey_id))).all()
        return {row[0]: int(row[1]) for row in rows}

    # --- invitations -------------------------------------------------------------------------

    async def last_invited(
        self, conn: AsyncConnection, program_id: UUID, member_id: UUID
    ) -> datetime | None:
        c = invitations_t.c
        query = select(func.max(c.created_at)).where(
            c.program_id == program_id, c.member_id == member_id
        )
        found: datetime | None = (await conn.execute(query)).scalar_one_or_none()
        return found

    async def invitation_for(self, conn: AsyncConnection, survey_id: UUID, occasion: str) -> Any:
        c = invitations_t.c
        query = select(invitations_t).where(c.survey_id == survey_id, c.occasion == occasion)
        return (await conn.execute(query)).one_or_none()

    async def insert_invitation(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(invitations_t).values(**row))

    async def invitation(
        self, conn: AsyncConnection, program_id: UUID, invitation_id: UUID, *, lock: bool = False
    ) -> Any:
        c = invitations_t.c
        query = select(invitations_t).where(c.program_id == program_id, c.id == invitation_id)
        if lock and is_postgres(conn):
            query = query.with_for_update()
        return (await conn.execute(query)).one_or_none()

    async def mark_answered(self, conn: AsyncConnection, invitation_id: UUID, at: datetime) -> None:
        await conn.execute(
            update(invitations_t).where(invitations_t.c.id == invitation_id).values(answered_at=at)
        )

    # --- answers -----------------------------------------------------------------------------

    async def insert_response(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(insert(responses_t).values(**row))

    async def response_of_invitation(self, conn: AsyncConnection, invitation_id: UUID) -> Any:
        query = select(responses_t).where(responses_t.c.invitation_id == invitation_id)
        return (await conn.execute(query)).one_or_none()

    async def responses(
        self,
        conn: AsyncConnection,
        survey_id: UUID,
        *,
        member_id: UUID | None,
        store: str | None,
        stores: Collection[str] | None,
        since: datetime | None,
        until: datetime | None,
        before: Key | None,
        limit: int,
    ) -> list[Any]:
        """A survey's answers, newest first."""
        c = responses_t.c
        query = select(responses_t).where(c.survey_id == survey_id)
        if member_id is not None:
            query = query.where(c.member_id == member_id)
        if store is not None:
            query = query.where(c.store == store)
        if since is not None:
            query = query.where(c.answered_at >= since)
        if until is not None:
            query = query.where(c.answered_at < until)
        query = _where_stores(query, conn, c.store, stores)
        if before is not None:
            query = query.where(tuple_(c.answered_at, c.id) < tuple_(*before))
        query = query.order_by(c.answered_at.desc(), c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())

    async def scored(
        self,
        conn: AsyncConnection,
        survey_id: UUID,
        *,
        since: datetime | None,
        until: datetime | None,
        stores: Collection[str] | None,
    ) -> list[Any]:
        """(answered_at, store, staff_id, score) of the scored answers in the period."""
        c = responses_t.c
        query = select(c.answered_at, c.store, c.staff_id, c.score).where(
            c.survey_id == survey_id, c.score.is_not(None)
        )
        if since is not None:
            query = query.where(c.answered_at >= since)
        if until is not None:
            query = query.where(c.answered_at < until)
        query = _where_stores(query, conn, c.store, stores)
        return list((await conn.execute(query)).all())

    async def score_counts(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        keys: Collection[str],
        *,
        stores: Collection[str] | None,
    ) -> dict[str, dict[int, int]]:
        """survey key → score → how many scored answers gave it, for these surveys."""
        if not keys:
            return {}
        c = responses_t.c
        query = (
            select(surveys_t.c.key, c.score, func.count())
            .join(surveys_t, surveys_t.c.id == c.survey_id)
            .where(
                surveys_t.c.program_id == program_id,
                one_of(conn, surveys_t.c.key, set(keys)),
                c.score.is_not(None),
            )
        )
        query = _where_stores(query, conn, c.store, stores)
        counts: dict[str, dict[int, int]] = {}
        for key, score, times in (
            await conn.execute(query.group_by(surveys_t.c.key, c.score))
        ).all():
            counts.setdefault(key, {})[int(score)] = int(times)
        return counts

    async def member_responses(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        before: Key | None,
        limit: int,
        stores: Collection[str] | None = None,
    ) -> list[Any]:
        """The member's answers to every survey with the survey's key and name, newest
        first."""
        c = responses_t.c
        query = (
            select(responses_t, surveys_t.c.key.label("survey_key"), surveys_t.c.name)
            .join(surveys_t, surveys_t.c.id == c.survey_id)
            .where(c.program_id == program_id, c.member_id == member_id)
        )
        query = _where_stores(query, conn, c.store, stores)
        if before is not None:
            query = query.where(tuple_(c.answered_at, c.id) < tuple_(*before))
        query = query.order_by(c.answered_at.desc(), c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())


support_repository = SupportRepository()


async def reassign_member(
    conn: AsyncConnection, program_id: UUID, source: UUID, target: UUID
) -> int:
    """``source``'s interactions, tickets (and their messages), survey invitations and
    answers become ``target``'s (two profiles of one person merged); how many rows moved."""
    moved = 0
    for t in (interactions_t, tickets_t, messages_t, invitations_t, responses_t):
        statement = update(t).where(t.c.member_id == source)
        if "program_id" in t.c:
            statement = statement.where(t.c.program_id == program_id)
        result = await conn.execute(statement.values(member_id=target))
        moved += int(result.rowcount or 0)
    return moved


ERASED = "[erased]"


async def erase_member(conn: AsyncConnection, program_id: UUID, member_id: UUID) -> int:
    """What the member said and what was written about them blanked: interactions'
    summaries, bodies and notes, tickets' subjects, the texts of their messages (and the
    member's name on them), the words of survey answers (scores stay, for the stores'
    figures). Returns the rows changed."""
    changed = 0
    for t, values in (
        (interactions_t, {"summary": ERASED, "body": None, "outcome_note": None}),
        (tickets_t, {"subject": ERASED}),
        (messages_t, {"body": ERASED}),
    ):
        statement = update(t).where(t.c.member_id == member_id)
        if "program_id" in t.c:
            statement = statement.where(t.c.program_id == program_id)
        result = await conn.execute(statement.values(**values))
        changed += int(result.rowcount or 0)
    await conn.execute(
        update(messages_t)
        .where(messages_t.c.member_id == member_id, messages_t.c.author == "member")
        .values(author_name="member")
    )
    rows = (
        await conn.execute(
            select(responses_t.c.id, responses_t.c.answers).where(
                responses_t.c.program_id == program_id, responses_t.c.member_id == member_id
            )
        )
    ).all()
    for row in rows:
        numbers = [a for a in row.answers if isinstance(a.get("value"), int | float)]
        await conn.execute(
            update(responses_t).where(responses_t.c.id == row.id).values(answers=numbers)
        )
    return changed + len(rows)


async def purge_interactions_before(
    conn: AsyncConnection, program_id: UUID, before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` interactions that happened before ``before``."""
    t = interactions_t
    ids = [
        r[0]
        for r in (
            await conn.execute(
                select(t.c.id)
                .where(t.c.program_id == program_id, t.c.occurred_at < before)
                .limit(limit)
            )
        ).all()
    ]
    if ids:
        await conn.execute(delete(t).where(t.c.id.in_(ids)))
    return len(ids)
