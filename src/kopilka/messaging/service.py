"""Messages: a program's messaging settings and templates, composing messages (consent,
suppression, quiet hours, caps, dedupe), their status as the sender and providers report
it, and the member's inbox. Never commits: the request, the CLI or the worker owns the
transaction.

Composing renders every part at once and stores the result: what a member was sent is what
the message row says, even after the template changes. One event, broadcast or API call
makes at most one message per channel (the dedupe key); a message that may not go out is
still recorded, as ``skipped`` with the reason ("no consent", "no e-mail address",
"cap per_day reached"), so that "why did she not get it" has an answer.
"""

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.ledger.service import ledger_service
from kopilka.messaging import links
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.batch import (
    AFFORDABLE,
    EXPIRING,
    RECOMMENDATIONS,
    Batch,
    affordable_for,
    asked_for,
    expiring_for,
    needed_by,
    nothing_to_tell,
    own_variables,
    recommended_for,
)
from kopilka.messaging.composition import (
    CLICKED,
    DELIVERED,
    FAILED,
    QUEUED,
    READ,
    SECRET_KINDS,
    SKIPPED,
    SYSTEM_KINDS,
    Localized,
    Outgoing,
    Setup,
    check_variables,
    deferred_note,
    known_kind,
    message_row,
    render_channel,
    render_message,
    shown,
    template_sources,
    tracked,
)
from kopilka.messaging.domain import LANGUAGES, Channel, TemplateProblem, language_of
from kopilka.messaging.gating import refusal, timing
from kopilka.messaging.notifications import KINDS, NotificationKind, Purpose
from kopilka.messaging.records import (
    MessageRow,
    Recipient,
    StatusRow,
    TemplateRow,
)
from kopilka.messaging.repository import MessagingRepository, messaging_repository
from kopilka.messaging.schemas import MessagingSettings
from kopilka.programs.service import ProgramContext


def _first_name(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None


class MessagingService:
    def __init__(
        self,
        repository: MessagingRepository = messaging_repository,
        audience: AudienceRepository = audience_repository,
    ) -> None:
        self.repository = repository
        self.audience = audience

    # --- settings ------------------------------------------------------------------------

    async def setup(self, conn: AsyncConnection, program: ProgramContext) -> Setup:
        """The program's settings (the defaults until it saves its own)."""
        found = await self.repository.settings(conn, program.id)
        if found is None:
            return Setup(MessagingSettings(), "")
        return Setup(MessagingSettings.model_validate(found[0], strict=False), found[1])

    async def ensure_setup(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> Setup:
        """As :meth:`setup`, making the program's row (and its link secret) if missing."""
        found = await self.repository.settings(conn, program.id)
        if found is None:
            await self.repository.create_settings(
                conn,
                program.id,
                MessagingSettings().model_dump(mode="json"),
                secrets.token_urlsafe(32),
                now,
            )
            found = await self.repository.settings(conn, program.id)
            assert found is not None
        return Setup(MessagingSettings.model_validate(found[0], strict=False), found[1])

    async def verified_link(
        self, conn: AsyncConnection, token: str, action: str
    ) -> links.LinkData | None:
        """What a signed link says, if its program signed it for ``action``; None if not."""
        try:
            program_id = links.program_of(token)
            found = await self.repository.settings(conn, program_id)
            if found is None:
                return None
            return links.verify(found[1], token, action)
        except links.BadLink:
            return None

    def callback_url(self, setup: Setup, program: ProgramContext) -> str:
        """The signed URL a provider posts its SMS delivery reports to."""
        data = links.LinkData("report", program.id, channel="sms")
        return f"{setup.settings.links_url}/m/reports/{links.sign(setup.secret, data)}"

    async def save_settings(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        settings: MessagingSettings,
        now: datetime,
    ) -> MessagingSettings:
        await self.ensure_setup(conn, program, now)
        await self.repository.save_settings(conn, program.id, settings.model_dump(mode="json"), now)
        return settings

    # --- templates -----------------------------------------------------------------------

    async def saved_templates(
        self, conn: AsyncConnection, program: ProgramContext, kind: str | None = None
    ) -> dict[tuple[str, str], TemplateRow]:
        rows = await self.repository.templates(conn, program.id, kind)
        return {(r.kind, r.language): r for r in rows}

    async def check_renders(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        kind: str,
        variables: Mapping[str, Any],
        channels: Sequence[Channel],
    ) -> None:
        """Refuse (422, ``variables``) what would fail for every member: each channel's parts
        of ``kind`` rendered in each language with ``variables`` and sample member data."""
        spec = known_kind(kind)
        check_variables(spec, variables)
        saved = await self.saved_templates(conn, program, kind)
        common = {k: v for k, v in spec.sample.items() if k not in spec.variables}
        for language in LANGUAGES:
            row = saved.get((kind, language))
            sources = template_sources(spec, language, row.parts if row else None)
            for channel in channels:
                try:
                    render_channel(channel, sources, language, common | dict(variables))
                except TemplateProblem as exc:
                    raise InvalidInput(f"{language}: {exc}", field="variables") from None

    # --- composing ---
    # --- composing -----------------------------------------------------------------------

    async def compose(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        items: Sequence[Outgoing],
        now: datetime,
        *,
        strict: bool = False,
    ) -> list[MessageRow]:
        """Messages for ``items``: one per channel each, skipped with the reason where one
        may not go. ``strict`` (an API call): a variable the kind does not have or a
        template that does not render is an error, not a failed message. Returns the
        messages made now (an item whose dedupe key was used makes none)."""
        if not items:
            return []
        setup = await self.ensure_setup(conn, program, now)
        for item in items:
            spec = known_kind(item.kind)
            if strict:
                if spec.purpose is not Purpose.SERVICE or spec.key in SYSTEM_KINDS:
                    raise InvalidInput(
                        f"{spec.key} is not sent one by one: marketing goes out in "
                        "broadcasts, and the program sends its own confirmations",
                        field="kind",
                    )
                check_variables(spec, item.variables)
        batch = await self.load_batch(
            conn,
            program,
            setup,
            [i.member_id for i in items],
            [i.kind for i in items],
            now,
            also=needed_by(items),
        )
        rows: list[dict[str, Any]] = []
        for item in items:
            rows.extend(self._rows_of(batch, item, now, strict=strict))
        inserted = await self.repository.add_messages(conn, rows)
        made = [r for r in rows if r["id"] in inserted]
        await self.repository.add_statuses(
            conn,
            [
                {
                    "message_id": r["id"],
                    "status": r["status"],
                    "detail": r["error"] or deferred_note(r, now),
                    "at": now,
                }
                for r in made
            ],
        )
        return [message_row(r) for r in made]

    async def load_batch(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        setup: Setup,
        member_ids: Sequence[UUID],
        kinds: Sequence[str],
        now: datetime,
        *,
        also: Collection[str] = (),
    ) -> Batch:
        """What composing messages of ``kinds`` to these members reads once; of the member
        variables (``batch.MEMBER_VARIABLES``) only those the texts in use of ``kinds`` read,
        and ``also``."""
        ids = sorted(set(member_ids))
        recipients = await self.audience.recipients(conn, program.id, ids)
        since = now - timedelta(days=8)
        marketing: dict[tuple[UUID, str], list[datetime]] = {}
        if any(KINDS[k].purpose is Purpose.MARKETING for k in set(kinds)):
            for channel in (Channel.EMAIL, Channel.SMS, Channel.PUSH):
                sent = await self.repository.marketing_sent(conn, ids, channel, since)
                for member_id, times in sent.items():
                    marketing[(member_id, channel)] = times
        addresses = [(str(Channel.EMAIL), r.email) for r in recipients.values() if r.email] + [
            (str(Channel.SMS), r.phone) for r in recipients.values() if r.phone
        ]
        saved = {key: row.parts for key, row in (await self.saved_templates(conn, program)).items()}
        asked = asked_for(saved, kinds) | frozenset(also)
        return Batch(
            program=program,
            setup=setup,
            recipients=recipients,
            consents=await self.audience.consents(conn, ids),
            subscriptions=await self.audience.subscriptions(conn, ids),
            saved=saved,
            balances=await ledger_service.available_of(conn, program, ids),
            marketing_sent=marketing,
            suppressed=await self.audience.suppressed(conn, program.id, addresses),
            recommendations=await recommended_for(conn, program, asked, ids, now),
            expiring=await expiring_for(conn, program, setup, asked, ids, now),
            affordable=await affordable_for(conn, program, asked, ids, now),
        )

    def common_variables(
        self,
        batch: Batch,
        recipient: Recipient,
        spec: NotificationKind,
        language: str,
        channel: Channel,
        message_id: UUID,
    ) -> dict[str, Any]:
        setup = batch.setup
        fallback = "Уважаемый участник" if language == "ru" else "Dear member"
        # Marketing on a channel with a consent of its own gets that channel's unsubscribe
        # link; the rest (service messages, the inbox) the preference page.
        if spec.purpose is Purpose.MARKETING and channel is not Channel.INBOX:
            leave = links.LinkData(
                "unsubscribe", batch.program.id, recipient.id, channel=str(channel)
            )
            unsubscribe = setup.link("u", leave)
        else:
            unsubscribe = setup.link(
                "p", links.LinkData("preferences", batch.program.id, recipient.id)
            )
        return {
            "member": {
                "name": recipient.name or fallback,
                "first_name": _first_name(recipient.name) or fallback,
            },
            "program": {"name": batch.program.name},
            "balance": batch.balances.get(recipient.id, 0),
            RECOMMENDATIONS: batch.recommendations.get(recipient.id, []),
            EXPIRING: batch.expiring.get(recipient.id),
            AFFORDABLE: batch.affordable.get(recipient.id, []),
            "app_url": setup.settings.app_url or setup.settings.links_url,
            "unsubscribe_url": unsubscribe,
        }

    def _rows_of(
        self, batch: Batch, item: Outgoing, now: datetime, *, strict: bool
    ) -> list[dict[str, Any]]:
        spec = KINDS[item.kind]
        recipient = batch.recipients.get(item.member_id)
        if recipient is None:
            if strict:
                raise NotFound(f"member {item.member_id} not found", field="member_id")
            return []
        settings = batch.setup.settings
        language = language_of(recipient.language, LANGUAGES, settings.language)
        channels = list(item.channels or settings.channels_of(item.kind))
        rows: list[dict[str, Any]] = []
        for channel in channels:
            targets: list[tuple[str | None, dict[str, str], str]] = []
            if channel is Channel.PUSH:
                subs = batch.subscriptions.get(recipient.id, [])
                targets = [
                    (s.endpoint, {"p256dh": s.p256dh, "auth": s.auth}, f"#{s.id.hex[:12]}")
                    for s in subs
                ] or [(None, {}, "")]
            else:
                address = {
                    Channel.EMAIL: recipient.email,
                    Channel.SMS: recipient.phone,
                    Channel.INBOX: None,
                }[channel]
                if item.to is not None and channel in (Channel.EMAIL, Channel.SMS):
                    address = item.to
                targets = [(address, {}, "")]
            for address, extra, suffix in targets:
                rows.append(
                    self._one(
                        batch,
                        spec,
                        item,
                        recipient,
                        language,
                        channel,
                        address,
                        extra,
                        item.dedupe_key + suffix,
                        now,
                        strict=strict,
                    )
                )
        return rows

    def _one(
        self,
        batch: Batch,
        spec: NotificationKind,
        item: Outgoing,
        recipient: Recipient,
        language: str,
        channel: Channel,
        address: str | None,
        extra: dict[str, str],
        dedupe_key: str,
        now: datetime,
        *,
        strict: bool,
    ) -> dict[str, Any]:
        message_id = new_id()
        at = max(item.send_at or now, now)
        row: dict[str, Any] = {
            "id": message_id,
            "program_id": batch.program.id,
            "member_id": recipient.id,
            "kind": spec.key,
            "purpose": str(spec.purpose),
            "channel": str(channel),
            "dedupe_key": dedupe_key[:200],
            "language": language,
            "to_address": address,
            "subject": None,
            "body": "",
            "html": None,
            "link": None,
            "extra": dict(extra),
            "status": QUEUED,
            "error": None,
            "attempts": 0,
            "due_at": at,
            "broadcast_id": item.broadcast_id,
            "provider_id": None,
            "created_at": now,
            "updated_at": now,
            "sent_at": None,
            "read_at": None,
            "clicked_at": None,
        }
        given = own_variables(batch, item)
        if given is None:
            nothing = nothing_to_tell(batch, spec.key)
            return row | {"status": SKIPPED, "error": f"not sent: {nothing}", "due_at": None}
        values = {
            **self.common_variables(batch, recipient, spec, language, channel, message_id),
            **{
                k: v.values.get(language) if isinstance(v, Localized) else v
                for k, v in given.items()
            },
        }
        # The marketing one goes into List-Unsubscribe; the preference page's is kept too,
        # for support to hand on.
        row["extra"]["unsubscribe_url"] = values["unsubscribe_url"]
        # A reply to a ticket's message goes back to the ticket (its signed address).
        if isinstance(values.get("reply_to"), str) and values["reply_to"]:
            row["extra"]["reply_to"] = values["reply_to"]
        sources = template_sources(spec, language, batch.saved.get((spec.key, language)))
        try:
            rendered = render_message(spec, channel, sources, language, values)
        except TemplateProblem as exc:
            if strict:
                raise InvalidInput(str(exc), field="variables") from None
            return row | {"status": FAILED, "error": f"template: {exc}", "due_at": None}
        row |= {
            "subject": rendered.subject,
            "body": rendered.body,
            "html": tracked(
                batch.setup, batch.program.id, message_id, rendered.html, kind=spec.key
            ),
            "link": values["app_url"],
        }
        reason = refusal(batch, spec, recipient, channel, address)
        if reason is not None:
            return row | {"status": SKIPPED, "error": f"not sent: {reason}", "due_at": None}
        if channel is Channel.INBOX:
            return row | {"status": DELIVERED, "sent_at": now, "due_at": None}
        return row | timing(batch, spec, recipient, channel, at)

    # --- messages ------------------------------------------------------------------------
    # Every message read here is as ``shown`` makes it: a secret kind's text (a live sign-in
    # code) is for the sender alone, which reads the store itself.

    async def get(
        self, conn: AsyncConnection, program: ProgramContext, message_id: UUID
    ) -> tuple[MessageRow, list[StatusRow]]:
        found = await self.repository.message(conn, program.id, message_id)
        if found is None:
            raise NotFound(f"no message {message_id}", field="message_id")
        history = await self.repository.history(conn, message_id)
        if found.kind in SECRET_KINDS:
            # A click recorded before secret kinds stopped being tracked: its URL may hold
            # the code.
            history = [replace(h, detail=None) if h.status == CLICKED else h for h in history]
        return shown(found), history

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
        member_id: UUID | None = None,
        channel: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        unread: bool = False,
    ) -> list[MessageRow]:
        rows = await self.repository.messages_page(
            conn,
            program.id,
            limit=limit,
            before=before,
            member_id=member_id,
            channel=channel,
            status=status,
            kind=kind,
            unread=unread,
        )
        return [shown(r) for r in rows]

    async def send_one(
        self, conn: AsyncConnection, program: ProgramContext, item: Outgoing, now: datetime
    ) -> list[MessageRow]:
        """One message asked for by a caller (strict), or, when its dedupe key was used
        before, the messages that call made (push ones carry a suffix per subscription)."""
        made = await self.compose(conn, program, [item], now, strict=True)
        if not made:
            made = await self.repository.by_dedupe(
                conn, program.id, item.member_id, item.dedupe_key
            )
        return [shown(m) for m in made]

    async def inbox(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
        unread: bool,
    ) -> list[MessageRow]:
        if not await self.audience.recipients(conn, program.id, [member_id]):
            raise NotFound(f"member {member_id} not found", field="member_id")
        rows = await self.repository.messages_page(
            conn,
            program.id,
            limit=limit,
            before=before,
            member_id=member_id,
            channel=str(Channel.INBOX),
            status=DELIVERED,
            unread=unread,
        )
        return [shown(r) for r in rows]

    async def counts(
        self, conn: AsyncConnection, program: ProgramContext, broadcast_id: UUID | None = None
    ) -> dict[str, int]:
        return await self.repository.counts(conn, program.id, broadcast_id)

    async def counts_by_kind(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> dict[tuple[str, str, str], int]:
        """(kind, channel, status) → messages, for reports."""
        return await self.repository.counts_by_kind(conn, program.id)

    async def unread(self, conn: AsyncConnection, program: ProgramContext, member_id: UUID) -> int:
        return await self.repository.unread(conn, program.id, member_id)

    async def mark_read(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        message_id: UUID,
        now: datetime,
    ) -> MessageRow:
        found = await self.repository.message(conn, program.id, message_id, lock=True)
        if (
            found is None
            or found.member_id != member_id
            or found.channel != Channel.INBOX
            or found.status != DELIVERED
        ):
            raise NotFound(f"no inbox message {message_id} of this member", field="message_id")
        if found.read_at is None:
            await self.repository.update_message(conn, message_id, read_at=now, updated_at=now)
            await self.repository.add_status(conn, message_id, READ, None, now)
        refreshed = await self.repository.message(conn, program.id, message_id)
        assert refreshed is not None
        return shown(refreshed)


messaging_service = MessagingService()
