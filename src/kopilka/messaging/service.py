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

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.clock import clock
from kopilka.kit.ids import new_id
from kopilka.ledger.service import ledger_service
from kopilka.messaging import links
from kopilka.messaging.domain import (
    LANGUAGES,
    Channel,
    ConsentRow,
    MessageRow,
    Part,
    Recipient,
    StatusRow,
    SubscriptionRow,
    TemplateProblem,
    TemplateRow,
    check,
    language_of,
    render,
)
from kopilka.messaging.notifications import KINDS, NotificationKind, Purpose
from kopilka.messaging.policy import Caps, Verdict, decide
from kopilka.messaging.repository import MessagingRepository, messaging_repository
from kopilka.messaging.schemas import MessagingSettings
from kopilka.programs.service import ProgramContext

QUEUED, SENT, DELIVERED, FAILED, BOUNCED = "queued", "sent", "delivered", "failed", "bounced"
SKIPPED, CLICKED, READ = "skipped", "clicked", "read"
MAX_ATTEMPTS = 8
SENT_LIKE = frozenset({SENT, DELIVERED, CLICKED})
_HREF = re.compile(r'href="(https?://[^"]+)"')


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failed try: 1, 2, 4 … minutes, at most 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


@dataclass(frozen=True)
class Localized:
    """A variable whose value depends on the member's language (a tier's benefits)."""

    values: dict[str, Any]


@dataclass(frozen=True)
class Outgoing:
    """A message to make: of ``kind``, to a member, once per ``dedupe_key`` and channel."""

    kind: str
    member_id: UUID
    dedupe_key: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    channels: Sequence[Channel] | None = None
    send_at: datetime | None = None
    broadcast_id: UUID | None = None


@dataclass(frozen=True)
class Setup:
    """A program's messaging settings and its link secret."""

    settings: MessagingSettings
    secret: str

    def link(self, path: str, data: links.LinkData) -> str:
        return f"{self.settings.links_url}/m/{path}/{links.sign(self.secret, data)}"


@dataclass
class _Batch:
    """What composing a batch reads once: members, consents, subscriptions, templates."""

    program: ProgramContext
    setup: Setup
    recipients: dict[UUID, Recipient]
    consents: dict[UUID, list[ConsentRow]]
    subscriptions: dict[UUID, list[SubscriptionRow]]
    saved: dict[tuple[str, str], dict[str, str]]
    balances: dict[UUID, int]
    marketing_sent: dict[tuple[UUID, str], list[datetime]]
    suppressed: dict[tuple[str, str], str]


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str
    html: str | None


@dataclass(frozen=True)
class SendResult:
    """What one try of a leased message gave."""

    message: MessageRow
    at: datetime
    provider_id: str | None = None
    error: str | None = None
    permanent: bool = False
    bounced: bool = False  # the address itself is refused for good: suppress it
    gone: bool = False  # the push subscription has ended: remove it


def consent_allows(consents: Sequence[ConsentRow], channel: str, purpose: str) -> bool:
    """Marketing needs a granted consent; service messages go unless withdrawn."""
    found = next((c for c in consents if c.channel == channel and c.purpose == purpose), None)
    if purpose == Purpose.MARKETING:
        return found is not None and found.status == "granted"
    return found is None or found.status != "withdrawn"


def template_sources(
    kind: NotificationKind, language: str, saved: Mapping[str, str] | None
) -> dict[Part, str]:
    """The shipped texts of ``kind`` in ``language`` with the program's saved parts over."""
    sources = dict(kind.defaults.get(language) or kind.defaults["ru"])
    for part, source in (saved or {}).items():
        sources[Part(part)] = source
    return sources


def _first_name(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None


class MessagingService:
    def __init__(self, repository: MessagingRepository = messaging_repository) -> None:
        self.repository = repository

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

    async def template(
        self, conn: AsyncConnection, program: ProgramContext, kind: str, language: str
    ) -> tuple[int, dict[str, str], datetime | None]:
        """The texts in use (version 0: the shipped ones), part by part."""
        spec = known_kind(kind)
        saved = (await self.saved_templates(conn, program, kind)).get((kind, language))
        sources = template_sources(spec, language, saved.parts if saved else None)
        return (
            saved.version if saved else 0,
            {str(p): s for p, s in sources.items()},
            saved.created_at if saved else None,
        )

    async def save_template(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        kind: str,
        language: str,
        parts: Mapping[Part, str],
        now: datetime,
    ) -> int:
        """A new version of the program's texts of ``kind`` in ``language``; refused, with
        the part and line named, if a part does not compile or reads what the kind does
        not give."""
        spec = known_kind(kind)
        if language not in LANGUAGES:
            raise InvalidInput(
                f"no language {language!r} (one of {', '.join(LANGUAGES)})", field="language"
            )
        for part, source in parts.items():
            try:
                check(source, str(part), spec.allowed())
            except TemplateProblem as exc:
                raise InvalidInput(str(exc), field=f"parts.{part}") from None
        saved = (await self.saved_templates(conn, program, kind)).get((kind, language))
        merged = {**(saved.parts if saved else {}), **{str(p): s for p, s in parts.items()}}
        _try_render(spec, language, merged)
        version = (saved.version if saved else 0) + 1
        await self.repository.add_template(
            conn,
            {
                "id": new_id(),
                "program_id": program.id,
                "kind": kind,
                "language": language,
                "version": version,
                "parts": merged,
                "created_at": now,
            },
        )
        return version

    async def template_versions(
        self, conn: AsyncConnection, program: ProgramContext, kind: str, language: str
    ) -> list[TemplateRow]:
        known_kind(kind)
        return await self.repository.template_versions(conn, program.id, kind, language)

    async def preview(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        kind: str,
        *,
        member_id: UUID | None,
        language: str | None,
        variables: Mapping[str, Any],
        parts: Mapping[Part, str] | None,
    ) -> tuple[str, dict[str, str]]:
        """Every part rendered, with a member's real data (or the kind's samples)."""
        spec = known_kind(kind)
        _check_variables(spec, variables)
        setup = await self.setup(conn, program)
        base: dict[str, Any] = dict(spec.sample)
        wanted = language
        if member_id is not None:
            batch = await self._load(conn, program, setup, [member_id], [kind], clock.now())
            recipient = batch.recipients.get(member_id)
            if recipient is None:
                raise NotFound(f"member {member_id} not found", field="member_id")
            wanted = wanted or recipient.language
            lang = language_of(wanted, LANGUAGES, setup.settings.language)
            base |= self._common(batch, recipient, spec, lang, Channel.EMAIL, new_id())
        lang = language_of(wanted, LANGUAGES, setup.settings.language)
        saved = (await self.saved_templates(conn, program, kind)).get((kind, lang))
        sources = template_sources(spec, lang, saved.parts if saved else None)
        for part, source in (parts or {}).items():
            try:
                check(source, str(part), spec.allowed())
            except TemplateProblem as exc:
                raise InvalidInput(str(exc), field=f"parts.{part}") from None
            sources[part] = source
        values = base | dict(variables)
        try:
            rendered = {str(p): render(s, str(p), lang, values) for p, s in sources.items()}
        except TemplateProblem as exc:
            raise InvalidInput(str(exc), field="variables") from None
        return lang, rendered

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
                _check_variables(spec, item.variables)
        batch = await self._load(
            conn, program, setup, [i.member_id for i in items], [i.kind for i in items], now
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
                    "detail": r["error"] or _deferred(r, now),
                    "at": now,
                }
                for r in made
            ],
        )
        return [_row(r) for r in made]

    async def _load(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        setup: Setup,
        member_ids: Sequence[UUID],
        kinds: Sequence[str],
        now: datetime,
    ) -> _Batch:
        ids = sorted(set(member_ids))
        recipients = await self.repository.recipients(conn, program.id, ids)
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
        return _Batch(
            program=program,
            setup=setup,
            recipients=recipients,
            consents=await self.repository.consents(conn, ids),
            subscriptions=await self.repository.subscriptions(conn, ids),
            saved=saved,
            balances=await ledger_service.available_of(conn, program, ids),
            marketing_sent=marketing,
            suppressed=await self.repository.suppressed(conn, program.id, addresses),
        )

    def _common(
        self,
        batch: _Batch,
        recipient: Recipient,
        spec: NotificationKind,
        language: str,
        channel: Channel,
        message_id: UUID,
    ) -> dict[str, Any]:
        setup = batch.setup
        fallback = "Уважаемый участник" if language == "ru" else "Dear member"
        if spec.purpose is Purpose.MARKETING:
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
            "app_url": setup.settings.app_url or setup.settings.links_url,
            "unsubscribe_url": unsubscribe,
        }

    def _rows_of(
        self, batch: _Batch, item: Outgoing, now: datetime, *, strict: bool
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
        batch: _Batch,
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
        values = {
            **self._common(batch, recipient, spec, language, channel, message_id),
            **{
                k: v.values.get(language) if isinstance(v, Localized) else v
                for k, v in item.variables.items()
            },
        }
        # The marketing one goes into List-Unsubscribe; the preference page's is kept too,
        # for support to hand on.
        row["extra"]["unsubscribe_url"] = values["unsubscribe_url"]
        sources = template_sources(spec, language, batch.saved.get((spec.key, language)))
        try:
            rendered = _render_channel(channel, sources, language, values)
        except TemplateProblem as exc:
            if strict:
                raise InvalidInput(str(exc), field="variables") from None
            return row | {"status": FAILED, "error": f"template: {exc}", "due_at": None}
        row |= {
            "subject": rendered.subject,
            "body": rendered.body,
            "html": _tracked(batch.setup, batch.program.id, message_id, rendered.html),
            "link": values["app_url"],
        }
        reason = self._refusal(batch, spec, recipient, channel, address)
        if reason is not None:
            return row | {"status": SKIPPED, "error": f"not sent: {reason}", "due_at": None}
        if channel is Channel.INBOX:
            return row | {"status": DELIVERED, "sent_at": now, "due_at": None}
        return row | self._timing(batch, spec, recipient, channel, at)

    def _refusal(
        self,
        batch: _Batch,
        spec: NotificationKind,
        recipient: Recipient,
        channel: Channel,
        address: str | None,
    ) -> str | None:
        """Why a message may not go to this member on this channel, if it may not."""
        if recipient.status != "active" and spec.purpose is Purpose.MARKETING:
            return "the member is blocked"
        if channel is Channel.INBOX:
            return None
        if address is None:
            return {
                Channel.EMAIL: "no e-mail address",
                Channel.SMS: "no phone number",
                Channel.PUSH: "no push subscription",
            }[channel]
        consents = batch.consents.get(recipient.id, [])
        if not consent_allows(consents, str(channel), str(spec.purpose)):
            return "no consent" if spec.purpose is Purpose.MARKETING else "opted out"
        suppressed = batch.suppressed.get((str(channel), address))
        if suppressed is not None:
            return f"address suppressed ({suppressed})"
        return None

    def _timing(
        self,
        batch: _Batch,
        spec: NotificationKind,
        recipient: Recipient,
        channel: Channel,
        at: datetime,
    ) -> dict[str, Any]:
        settings = batch.setup.settings
        zone = ZoneInfo(recipient.timezone or settings.timezone or batch.program.settings.timezone)
        quiet = settings.quiet_hours.window() if settings.quiet_hours is not None else None
        limits = settings.caps.get(channel)
        caps = Caps(limits.per_day, limits.per_week) if limits is not None else None
        sent = batch.marketing_sent.setdefault((recipient.id, str(channel)), [])
        decision = decide(spec.purpose, at, zone, quiet, caps, sent)
        if decision.verdict is Verdict.SUPPRESS:
            return {"status": SKIPPED, "error": f"not sent: {decision.reason}", "due_at": None}
        when = decision.at.astimezone(UTC)
        if spec.purpose is Purpose.MARKETING:
            sent.append(when)
        return {"due_at": when}

    # --- messages ------------------------------------------------------------------------

    async def get(
        self, conn: AsyncConnection, program: ProgramContext, message_id: UUID
    ) -> tuple[MessageRow, list[StatusRow]]:
        found = await self.repository.message(conn, program.id, message_id)
        if found is None:
            raise NotFound(f"no message {message_id}", field="message_id")
        return found, await self.repository.history(conn, message_id)

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
        return await self.repository.messages_page(
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

    async def by_dedupe(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, dedupe_key: str
    ) -> list[MessageRow]:
        """The messages an earlier call with this dedupe key made for the member (push
        ones carry a suffix per subscription)."""
        return await self.repository.by_dedupe(conn, program.id, member_id, dedupe_key)

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
        if not await self.repository.recipients(conn, program.id, [member_id]):
            raise NotFound(f"member {member_id} not found", field="member_id")
        return await self.repository.messages_page(
            conn,
            program.id,
            limit=limit,
            before=before,
            member_id=member_id,
            channel=str(Channel.INBOX),
            status=DELIVERED,
            unread=unread,
        )

    async def test(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        kind: str,
        *,
        channel: Channel,
        to: str | None,
        member_id: UUID | None,
        language: str | None,
        variables: Mapping[str, Any],
        now: datetime,
    ) -> MessageRow:
        """A test of ``kind`` on ``channel``: to an address with sample data, or to a member
        with their data; consent and quiet hours do not apply (staff asked for it)."""
        spec = known_kind(kind)
        _check_variables(spec, variables)
        setup = await self.ensure_setup(conn, program, now)
        message_id = new_id()
        values: dict[str, Any] = dict(spec.sample)
        lang = language_of(language, LANGUAGES, setup.settings.language)
        address = to
        extra: dict[str, str] = {}
        if member_id is not None:
            batch = await self._load(conn, program, setup, [member_id], [kind], now)
            recipient = batch.recipients.get(member_id)
            if recipient is None:
                raise NotFound(f"member {member_id} not found", field="member_id")
            lang = language_of(language or recipient.language, LANGUAGES, setup.settings.language)
            values |= self._common(batch, recipient, spec, lang, channel, message_id)
            address = {
                Channel.EMAIL: recipient.email,
                Channel.SMS: recipient.phone,
                Channel.INBOX: None,
                Channel.PUSH: None,
            }[channel]
            if channel is Channel.PUSH:
                subs = batch.subscriptions.get(member_id, [])
                if not subs:
                    raise InvalidInput("the member has no push subscription", field="member_id")
                address, extra = (
                    subs[-1].endpoint,
                    {"p256dh": subs[-1].p256dh, "auth": subs[-1].auth},
                )
            elif channel is not Channel.INBOX and address is None:
                raise InvalidInput(f"the member has no address for {channel}", field="member_id")
        else:
            address = _checked_address(channel, to or "")
        saved = (await self.saved_templates(conn, program, kind)).get((kind, lang))
        sources = template_sources(spec, lang, saved.parts if saved else None)
        try:
            rendered = _render_channel(channel, sources, lang, values | dict(variables))
        except TemplateProblem as exc:
            raise InvalidInput(str(exc), field="variables") from None
        delivered = channel is Channel.INBOX
        row: dict[str, Any] = {
            "id": message_id,
            "program_id": program.id,
            "member_id": member_id,
            "kind": kind,
            "purpose": str(spec.purpose),
            "channel": str(channel),
            "dedupe_key": f"test:{message_id}",
            "language": lang,
            "to_address": address,
            "subject": rendered.subject,
            "body": rendered.body,
            "html": rendered.html,
            "link": values.get("app_url"),
            "extra": extra,
            "status": DELIVERED if delivered else QUEUED,
            "error": None,
            "attempts": 0,
            "due_at": None if delivered else now,
            "broadcast_id": None,
            "provider_id": None,
            "created_at": now,
            "updated_at": now,
            "sent_at": now if delivered else None,
            "read_at": None,
            "clicked_at": None,
        }
        await self.repository.add_messages(conn, [row])
        await self._history(conn, message_id, row["status"], "test", now)
        return _row(row)

    async def counts(
        self, conn: AsyncConnection, program: ProgramContext, broadcast_id: UUID | None = None
    ) -> dict[str, int]:
        return await self.repository.counts(conn, program.id, broadcast_id)

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
        if found is None or found.member_id != member_id or found.channel != Channel.INBOX:
            raise NotFound(f"no inbox message {message_id} of this member", field="message_id")
        if found.read_at is None:
            await self.repository.update_message(conn, message_id, read_at=now, updated_at=now)
            await self._history(conn, message_id, READ, None, now)
        refreshed = await self.repository.message(conn, program.id, message_id)
        assert refreshed is not None
        return refreshed

    async def retry(
        self, conn: AsyncConnection, program: ProgramContext, message_id: UUID, now: datetime
    ) -> MessageRow:
        """Send a failed message again as soon as the sender can, with fresh attempts."""
        found = await self.repository.message(conn, program.id, message_id, lock=True)
        if found is None:
            raise NotFound(f"no message {message_id}", field="message_id")
        if found.status not in (FAILED, QUEUED):
            raise Conflict(
                f"message {message_id} is {found.status}: only a failed one is sent again",
                field="message_id",
            )
        await self.repository.update_message(
            conn, message_id, status=QUEUED, attempts=0, due_at=now, error=None, updated_at=now
        )
        await self._history(conn, message_id, QUEUED, "sent again on request", now)
        refreshed = await self.repository.message(conn, program.id, message_id)
        assert refreshed is not None
        return refreshed

    async def _history(
        self,
        conn: AsyncConnection,
        message_id: UUID,
        status: str,
        detail: str | None,
        now: datetime,
    ) -> None:
        await self.repository.add_statuses(
            conn, [{"message_id": message_id, "status": status, "detail": detail, "at": now}]
        )

    # --- the sender's side ---------------------------------------------------------------

    async def lease(
        self,
        conn: AsyncConnection,
        now: datetime,
        lease: timedelta,
        limit: int,
        channels: Sequence[str],
    ) -> list[MessageRow]:
        return await self.repository.lease_due(conn, now, now + lease, limit, channels)

    async def record(self, conn: AsyncConnection, results: Sequence[SendResult]) -> None:
        """What the sends gave: sent, a retry later, or failed for good (a hard bounce
        also stops the address; an ended push subscription is removed)."""
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for result in results:
            message, at = result.message, result.at
            attempts = message.attempts + 1
            if result.error is None:
                updates.append(
                    {
                        "id": message.id,
                        "status": SENT,
                        "attempts": attempts,
                        "sent_at": at,
                        "due_at": None,
                        "error": None,
                        "provider_id": result.provider_id,
                        "updated_at": at,
                    }
                )
                history.append(_step(message.id, SENT, result.provider_id, at))
                continue
            if result.permanent or attempts >= MAX_ATTEMPTS:
                status = BOUNCED if result.bounced else FAILED
                updates.append(
                    {
                        "id": message.id,
                        "status": status,
                        "attempts": attempts,
                        "sent_at": None,
                        "due_at": None,
                        "error": result.error,
                        "provider_id": message.provider_id,
                        "updated_at": at,
                    }
                )
                history.append(_step(message.id, status, result.error, at))
                if result.bounced and message.to_address:
                    await self.repository.suppress(
                        conn,
                        {
                            "program_id": message.program_id,
                            "channel": message.channel,
                            "address": message.to_address,
                            "reason": "bounce",
                            "detail": result.error[:500],
                            "message_id": message.id,
                            "created_at": at,
                        },
                    )
                if result.gone and message.to_address:
                    await self.repository.remove_endpoint(conn, message.to_address)
                continue
            later = at + retry_delay(attempts)
            updates.append(
                {
                    "id": message.id,
                    "status": QUEUED,
                    "attempts": attempts,
                    "sent_at": None,
                    "due_at": later,
                    "error": result.error,
                    "provider_id": message.provider_id,
                    "updated_at": at,
                }
            )
            history.append(
                _step(message.id, "retry", f"{result.error}; next try {later:%H:%M:%S} UTC", at)
            )
        await self.repository.update_messages(conn, updates)
        await self.repository.add_statuses(conn, history)

    async def report(
        self,
        conn: AsyncConnection,
        channel: str,
        provider_id: str,
        delivered: bool,
        detail: str | None,
        now: datetime,
    ) -> MessageRow | None:
        """A provider's delivery report; None if no message has that provider id."""
        found = await self.repository.by_provider_id(conn, channel, provider_id)
        if found is None:
            return None
        status = DELIVERED if delivered else FAILED
        if found.status in (SENT, QUEUED) or (found.status == DELIVERED and not delivered):
            await self.repository.update_message(
                conn,
                found.id,
                status=status,
                updated_at=now,
                error=None if delivered else (detail or "the provider could not deliver it"),
            )
        await self._history(conn, found.id, status, detail, now)
        return found

    async def accept_reports(
        self,
        conn: AsyncConnection,
        token: str,
        reports: Sequence[tuple[str, bool, str | None]],
        now: datetime,
    ) -> int | None:
        """A provider's delivery reports at a signed callback URL: (provider id,
        delivered, detail). None if the URL is not one a program signed."""
        try:
            program_id = links.program_of(token)
            found = await self.repository.settings(conn, program_id)
            if found is None:
                return None
            data = links.verify(found[1], token, "report")
        except links.BadLink:
            return None
        matched = 0
        for provider_id, delivered, detail in reports:
            row = await self.report(
                conn, data.channel or "sms", provider_id, delivered, detail, now
            )
            if row is not None and row.program_id == program_id:
                matched += 1
        return matched

    async def clicked(
        self, conn: AsyncConnection, program_id: UUID, message_id: UUID, url: str, now: datetime
    ) -> None:
        found = await self.repository.message(conn, program_id, message_id)
        if found is None:
            return
        values: dict[str, Any] = {"updated_at": now}
        if found.clicked_at is None:
            values["clicked_at"] = now
        if found.status in SENT_LIKE:
            values["status"] = CLICKED
        await self.repository.update_message(conn, message_id, **values)
        await self._history(conn, message_id, CLICKED, url[:500], now)


def known_kind(kind: str) -> NotificationKind:
    spec = KINDS.get(kind)
    if spec is None:
        raise NotFound(
            f"no message kind {kind!r} (one of {', '.join(sorted(KINDS))})", field="kind"
        )
    return spec


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")


def _checked_address(channel: Channel, address: str) -> str:
    """A test address as the channel needs it, or a clear refusal."""
    if channel is Channel.EMAIL and not _EMAIL.match(address):
        raise InvalidInput(f"{address!r} is not an e-mail address", field="to")
    if channel is Channel.SMS and not _PHONE.match(address):
        raise InvalidInput(
            f"{address!r} is not a phone number in international form (+79161234567)",
            field="to",
        )
    return address


def _check_variables(spec: NotificationKind, variables: Mapping[str, Any]) -> None:
    for name in variables:
        if name not in spec.variables:
            raise InvalidInput(
                f"unknown template variable {name!r} for {spec.key} (it has: "
                f"{', '.join(sorted(spec.variables)) or 'none'})",
                field=f"variables.{name}",
            )


def _try_render(spec: NotificationKind, language: str, parts: Mapping[str, str]) -> None:
    """A saved template must render with the kind's sample data."""
    sources = template_sources(spec, language, parts)
    for part, source in sources.items():
        try:
            render(source, str(part), language, spec.sample)
        except TemplateProblem as exc:
            raise InvalidInput(str(exc), field=f"parts.{part}") from None


def _render_channel(
    channel: Channel, sources: Mapping[Part, str], language: str, values: Mapping[str, Any]
) -> Rendered:
    def part(name: Part) -> str:
        return render(sources.get(name, ""), str(name), language, values)

    if channel is Channel.EMAIL:
        html = part(Part.HTML) if sources.get(Part.HTML) else None
        return Rendered(part(Part.SUBJECT), part(Part.TEXT), html)
    if channel is Channel.SMS:
        return Rendered(None, part(Part.SMS), None)
    if channel is Channel.PUSH:
        return Rendered(part(Part.PUSH_TITLE), part(Part.PUSH_BODY), None)
    return Rendered(part(Part.SUBJECT), part(Part.TEXT), None)


def _tracked(setup: Setup, program_id: UUID, message_id: UUID, html: str | None) -> str | None:
    """Links of an HTML part through the signed click redirect (``/m/c/…``)."""
    if html is None or not setup.secret:
        return html

    def wrap(match: re.Match[str]) -> str:
        url = match.group(1)
        if url.startswith(f"{setup.settings.links_url}/m/"):
            return match.group(0)  # unsubscribe and preference links stay as they are
        target = setup.link(
            "c", links.LinkData("click", program_id, message_id=message_id, url=url)
        )
        return f'href="{target}"'

    return _HREF.sub(wrap, html)


def _deferred(row: Mapping[str, Any], now: datetime) -> str | None:
    due = row.get("due_at")
    if row["status"] == QUEUED and due is not None and due > now:
        return f"waits until {due:%Y-%m-%d %H:%M} UTC"
    return None


def _step(message_id: UUID, status: str, detail: str | None, at: datetime) -> dict[str, Any]:
    return {"message_id": message_id, "status": status, "detail": detail, "at": at}


def _row(r: Mapping[str, Any]) -> MessageRow:
    return MessageRow(
        id=r["id"],
        program_id=r["program_id"],
        member_id=r["member_id"],
        kind=r["kind"],
        purpose=r["purpose"],
        channel=r["channel"],
        dedupe_key=r["dedupe_key"],
        language=r["language"],
        to_address=r["to_address"],
        subject=r["subject"],
        body=r["body"],
        html=r["html"],
        link=r["link"],
        extra=dict(r["extra"]),
        status=r["status"],
        error=r["error"],
        attempts=r["attempts"],
        due_at=r["due_at"],
        broadcast_id=r["broadcast_id"],
        provider_id=r["provider_id"],
        created_at=r["created_at"],
        sent_at=r["sent_at"],
        read_at=r["read_at"],
        clicked_at=r["clicked_at"],
    )


messaging_service = MessagingService()
