"""Every query of messaging.

Locking: the sender leases due messages by moving their ``due_at`` past the time a send
may take, in a short transaction that locks them ``FOR UPDATE SKIP LOCKED`` (as the webhook
sender does): two senders never take one message, and a sender that dies leaves it due
again when the lease ends. The send itself runs outside any transaction.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import WriteBatch, insert_rows
from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres, one_of
from kopilka.messaging.records import BroadcastRow, MessageRow, StatusRow, TemplateRow
from kopilka.models import (
    Broadcast,
    BroadcastRecipient,
    ConsentRecord,
    Member,
    MemberConsent,
    Message,
    MessageStatus,
    MessageTemplate,
    MessagingSetting,
    PushSubscriptionRow,
    Suppression,
)
from kopilka.models.base import table

settings_t = table(MessagingSetting)
templates_t = table(MessageTemplate)
consents_t = table(MemberConsent)
records_t = table(ConsentRecord)
messages_t = table(Message)
statuses_t = table(MessageStatus)
subscriptions_t = table(PushSubscriptionRow)
suppressions_t = table(Suppression)
broadcasts_t = table(Broadcast)
recipients_t = table(BroadcastRecipient)
members_t = table(Member)

QUEUED = "queued"


def _at(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _message(r: Any) -> MessageRow:
    return MessageRow(
        id=r.id,
        program_id=r.program_id,
        member_id=r.member_id,
        kind=r.kind,
        purpose=r.purpose,
        channel=r.channel,
        dedupe_key=r.dedupe_key,
        language=r.language,
        to_address=r.to_address,
        subject=r.subject,
        body=r.body,
        html=r.html,
        link=r.link,
        extra=dict(r.extra or {}),
        status=r.status,
        error=r.error,
        attempts=r.attempts,
        due_at=_at(r.due_at),
        broadcast_id=r.broadcast_id,
        provider_id=r.provider_id,
        created_at=as_utc(r.created_at),
        sent_at=_at(r.sent_at),
        read_at=_at(r.read_at),
        clicked_at=_at(r.clicked_at),
    )


def broadcast_row(r: Any) -> BroadcastRow:
    return BroadcastRow(
        id=r.id,
        program_id=r.program_id,
        name=r.name,
        kind=r.kind,
        variables=dict(r.variables or {}),
        channels=list(r.channels or []),
        status=r.status,
        scheduled_at=as_utc(r.scheduled_at),
        total=r.total,
        created_at=as_utc(r.created_at),
        finished_at=_at(r.finished_at),
        holdout_percent=r.holdout_percent,
    )


def insert_ignoring(conn: AsyncConnection, t: Any) -> Any:
    dialect = postgresql if is_postgres(conn) else sqlite
    return dialect.insert(t).on_conflict_do_nothing()


def newest_first(query: Any, t: Any, before: tuple[datetime, UUID] | None) -> Any:
    query = query.order_by(t.c.created_at.desc(), t.c.id.desc())
    if before is not None:
        query = query.where(
            or_(t.c.created_at < before[0], and_(t.c.created_at == before[0], t.c.id < before[1]))
        )
    return query


class MessagingRepository:
    # --- settings ------------------------------------------------------------------------

    async def settings(
        self, conn: AsyncConnection, program_id: UUID
    ) -> tuple[dict[str, Any], str] | None:
        row = (
            await conn.execute(
                select(settings_t.c.document, settings_t.c.link_secret).where(
                    settings_t.c.program_id == program_id
                )
            )
        ).first()
        return (dict(row.document), row.link_secret) if row is not None else None

    async def create_settings(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        document: dict[str, Any],
        secret: str,
        now: datetime,
    ) -> None:
        """The program's settings row, unless another transaction made it first."""
        await conn.execute(
            insert_ignoring(conn, settings_t).values(
                program_id=program_id, document=document, link_secret=secret, updated_at=now
            )
        )

    async def save_settings(
        self, conn: AsyncConnection, program_id: UUID, document: dict[str, Any], now: datetime
    ) -> None:
        await conn.execute(
            update(settings_t)
            .where(settings_t.c.program_id == program_id)
            .values(document=document, updated_at=now)
        )

    # --- templates -----------------------------------------------------------------------

    async def templates(
        self, conn: AsyncConnection, program_id: UUID, kind: str | None = None
    ) -> list[TemplateRow]:
        """The newest version of each (kind, language) the program saved."""
        t = templates_t
        newest = (
            select(t.c.kind, t.c.language, func.max(t.c.version).label("version"))
            .where(t.c.program_id == program_id)
            .group_by(t.c.kind, t.c.language)
        )
        if kind is not None:
            newest = newest.where(t.c.kind == kind)
        sub = newest.subquery()
        rows = await conn.execute(
            select(t)
            .join(
                sub,
                and_(
                    t.c.kind == sub.c.kind,
                    t.c.language == sub.c.language,
                    t.c.version == sub.c.version,
                ),
            )
            .where(t.c.program_id == program_id)
        )
        return [
            TemplateRow(r.kind, r.language, r.version, dict(r.parts), as_utc(r.created_at))
            for r in rows
        ]

    async def template_versions(
        self, conn: AsyncConnection, program_id: UUID, kind: str, language: str
    ) -> list[TemplateRow]:
        t = templates_t
        rows = await conn.execute(
            select(t)
            .where(t.c.program_id == program_id, t.c.kind == kind, t.c.language == language)
            .order_by(t.c.version.desc())
        )
        return [
            TemplateRow(r.kind, r.language, r.version, dict(r.parts), as_utc(r.created_at))
            for r in rows
        ]

    async def add_template(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        await conn.execute(templates_t.insert().values(**row))

    # --- messages ------------------------------------------------------------------------

    async def add_messages(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[UUID]:
        """Insert ``rows``; one whose (program, member, channel, dedupe key) exists is left
        out.
        The ids of those inserted."""
        if not rows:
            return set()
        await conn.execute(insert_ignoring(conn, messages_t), rows)
        ids = [r["id"] for r in rows]
        found = await conn.execute(
            select(messages_t.c.id).where(one_of(conn, messages_t.c.id, ids))
        )
        return {r[0] for r in found}

    async def add_status(
        self,
        conn: AsyncConnection,
        message_id: UUID,
        status: str,
        detail: str | None,
        at: datetime,
    ) -> None:
        """One line of a message's history."""
        await conn.execute(
            statuses_t.insert().values(message_id=message_id, status=status, detail=detail, at=at)
        )

    async def add_statuses(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if rows:
            await insert_rows(conn, statuses_t, rows)

    async def message(
        self,
        conn: AsyncConnection,
        program_id: UUID | None,
        message_id: UUID,
        *,
        lock: bool = False,
    ) -> MessageRow | None:
        query = select(messages_t).where(messages_t.c.id == message_id)
        if program_id is not None:
            query = query.where(messages_t.c.program_id == program_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return _message(row) if row is not None else None

    async def by_dedupe(
        self, conn: AsyncConnection, program_id: UUID, member_id: UUID, dedupe_key: str
    ) -> list[MessageRow]:
        m = messages_t
        rows = await conn.execute(
            select(m)
            .where(
                m.c.program_id == program_id,
                m.c.member_id == member_id,
                or_(
                    m.c.dedupe_key == dedupe_key,
                    m.c.dedupe_key.startswith(dedupe_key + "#", autoescape=True),
                ),
            )
            .order_by(m.c.channel, m.c.id)
        )
        return [_message(r) for r in rows]

    async def by_provider_id(
        self, conn: AsyncConnection, program_id: UUID, channel: str, provider_id: str
    ) -> MessageRow | None:
        m = messages_t
        row = (
            await conn.execute(
                select(m).where(
                    m.c.channel == channel,
                    m.c.provider_id == provider_id,
                    m.c.program_id == program_id,
                )
            )
        ).first()
        return _message(row) if row is not None else None

    async def history(self, conn: AsyncConnection, message_id: UUID) -> list[StatusRow]:
        s = statuses_t
        rows = await conn.execute(
            select(s.c.status, s.c.detail, s.c.at)
            .where(s.c.message_id == message_id)
            .order_by(s.c.id)
        )
        return [StatusRow(r.status, r.detail, as_utc(r.at)) for r in rows]

    async def messages_page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
        member_id: UUID | None = None,
        channel: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        unread: bool = False,
    ) -> list[MessageRow]:
        m = messages_t
        query = select(m).where(m.c.program_id == program_id).limit(limit)
        if member_id is not None:
            query = query.where(m.c.member_id == member_id)
        if channel is not None:
            query = query.where(m.c.channel == channel)
        if status is not None:
            query = query.where(m.c.status == status)
        if kind is not None:
            query = query.where(m.c.kind == kind)
        if unread:
            query = query.where(m.c.read_at.is_(None))
        return [_message(r) for r in await conn.execute(newest_first(query, m, before))]

    async def unread(self, conn: AsyncConnection, program_id: UUID, member_id: UUID) -> int:
        m = messages_t
        return int(
            (
                await conn.execute(
                    select(func.count()).where(
                        m.c.program_id == program_id,
                        m.c.member_id == member_id,
                        m.c.channel == "inbox",
                        m.c.status == "delivered",
                        m.c.read_at.is_(None),
                    )
                )
            ).scalar_one()
        )

    async def marketing_sent(
        self, conn: AsyncConnection, member_ids: Sequence[UUID], channel: str, since: datetime
    ) -> dict[UUID, list[datetime]]:
        """When each member's marketing messages on ``channel`` since ``since`` went (or
        are due to go): what the caps count."""
        if not member_ids:
            return {}
        m = messages_t
        rows = await conn.execute(
            select(m.c.member_id, func.coalesce(m.c.sent_at, m.c.due_at, m.c.created_at)).where(
                one_of(conn, m.c.member_id, member_ids),
                m.c.channel == channel,
                m.c.purpose == "marketing",
                m.c.status.in_(("queued", "sent", "delivered", "clicked")),
                m.c.created_at >= since,
            )
        )
        found: dict[UUID, list[datetime]] = {}
        for member_id, at in rows:
            found.setdefault(member_id, []).append(as_utc(at))
        return found

    async def statuses_of(
        self, conn: AsyncConnection, message_ids: Sequence[UUID]
    ) -> dict[UUID, str]:
        if not message_ids:
            return {}
        m = messages_t
        rows = await conn.execute(
            select(m.c.id, m.c.status).where(one_of(conn, m.c.id, message_ids))
        )
        return {r[0]: r[1] for r in rows}

    async def update_message(self, conn: AsyncConnection, message_id: UUID, **values: Any) -> None:
        await conn.execute(update(messages_t).where(messages_t.c.id == message_id).values(**values))

    async def update_messages(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """Several messages' new state (dicts with ``id`` and the same columns)."""
        if not rows:
            return
        batch = WriteBatch()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            by_columns.setdefault(tuple(sorted(row)), []).append(row)
        for group in by_columns.values():
            batch.update(messages_t, ("id",), group)
        await batch.write(conn)

    async def lease_due(
        self,
        conn: AsyncConnection,
        now: datetime,
        until: datetime,
        limit: int,
        channels: Sequence[str],
    ) -> list[MessageRow]:
        """Take up to ``limit`` due queued messages of ``channels`` until ``until``: service
        messages first (a member's points go before a broadcast's backlog), then the rest,
        each oldest due first."""
        m = messages_t
        b = broadcasts_t
        paused = [r[0] for r in await conn.execute(select(b.c.id).where(b.c.status == "paused"))]
        rows: list[Any] = []
        for purpose in ("service", "marketing"):
            if len(rows) >= limit:
                break
            rows += (
                await conn.execute(
                    select(m)
                    .where(
                        m.c.status == QUEUED,
                        m.c.due_at <= now,
                        m.c.purpose == purpose,
                        m.c.channel.in_(channels),
                        or_(m.c.broadcast_id.is_(None), m.c.broadcast_id.not_in(paused))
                        if paused
                        else true(),
                    )
                    .order_by(m.c.due_at, m.c.id)
                    .limit(limit - len(rows))
                    .with_for_update(skip_locked=True)
                )
            ).all()
        if rows:
            await conn.execute(
                update(m).where(one_of(conn, m.c.id, [r.id for r in rows])).values(due_at=until)
            )
        return [_message(r) for r in rows]

    async def counts(
        self, conn: AsyncConnection, program_id: UUID, broadcast_id: UUID | None = None
    ) -> dict[str, int]:
        m = messages_t
        query = select(m.c.status, func.count()).group_by(m.c.status)
        if broadcast_id is not None:
            query = query.where(m.c.broadcast_id == broadcast_id)
        else:
            query = query.where(m.c.program_id == program_id)
        return {r[0]: int(r[1]) for r in await conn.execute(query)}

    async def counts_by_kind(
        self, conn: AsyncConnection, program_id: UUID
    ) -> dict[tuple[str, str, str], int]:
        """(kind, channel, status) → messages."""
        m = messages_t
        rows = await conn.execute(
            select(m.c.kind, m.c.channel, m.c.status, func.count())
            .where(m.c.program_id == program_id)
            .group_by(m.c.kind, m.c.channel, m.c.status)
        )
        return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


messaging_repository = MessagingRepository()
