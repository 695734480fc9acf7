"""A program's own texts of each message kind: versions per language saved over the
shipped ones (refused, naming the part and the line, when they cannot work), previews with
a member's real data or samples, and test sends. Never commits."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.clock import clock
from kopilka.kit.ids import new_id
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.composition import (
    DELIVERED,
    QUEUED,
    SYSTEM_KINDS,
    TEST_PREFIX,
    check_no_links,
    check_variables,
    checked_address,
    known_kind,
    message_row,
    render_message,
    status_step,
    template_sources,
    try_render,
    usable_parts,
)
from kopilka.messaging.domain import (
    LANGUAGES,
    Channel,
    Part,
    TemplateProblem,
    check,
    language_of,
    render,
)
from kopilka.messaging.notifications import KINDS
from kopilka.messaging.records import MessageRow, TemplateRow
from kopilka.messaging.repository import MessagingRepository, messaging_repository
from kopilka.messaging.schemas import TemplateSummary
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext


class TemplateService:
    def __init__(
        self,
        repository: MessagingRepository = messaging_repository,
        audience: AudienceRepository = audience_repository,
    ) -> None:
        self.repository = repository
        self.audience = audience

    async def summaries(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> list[TemplateSummary]:
        """Every message kind: on or off, its channels, its variables and the version in use
        per language (0: the shipped texts)."""
        settings = (await messaging_service.setup(conn, program)).settings
        saved = await messaging_service.saved_templates(conn, program)
        return [
            TemplateSummary(
                kind=key,
                purpose=spec.purpose,
                enabled=settings.enabled(key),
                channels=settings.channels_of(key),
                variables=sorted(spec.allowed()),
                versions={
                    lang: saved[(key, lang)].version if (key, lang) in saved else 0
                    for lang in LANGUAGES
                },
            )
            for key, spec in sorted(KINDS.items())
        ]

    async def template(
        self, conn: AsyncConnection, program: ProgramContext, kind: str, language: str
    ) -> tuple[int, dict[str, str], datetime | None]:
        """The texts in use (version 0: the shipped ones), part by part."""
        spec = known_kind(kind)
        saved = (await messaging_service.saved_templates(conn, program, kind)).get((kind, language))
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
            check_no_links(kind, str(part), source)
            try:
                check(source, str(part), spec.allowed())
            except TemplateProblem as exc:
                raise InvalidInput(str(exc), field=f"parts.{part}") from None
        saved = (await messaging_service.saved_templates(conn, program, kind)).get((kind, language))
        # A saved part no longer usable (a secret kind's with a link) is not carried over.
        kept = usable_parts(kind, saved.parts if saved else None)
        merged = {**kept, **{str(p): s for p, s in parts.items()}}
        try_render(spec, language, merged)
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
        check_variables(spec, variables)
        setup = await messaging_service.setup(conn, program)
        base: dict[str, Any] = dict(spec.sample)
        wanted = language
        if member_id is not None:
            batch = await messaging_service.load_batch(
                conn, program, setup, [member_id], [kind], clock.now()
            )
            recipient = batch.recipients.get(member_id)
            if recipient is None:
                raise NotFound(f"member {member_id} not found", field="member_id")
            wanted = wanted or recipient.language
            lang = language_of(wanted, LANGUAGES, setup.settings.language)
            base |= messaging_service.common_variables(
                batch, recipient, spec, lang, Channel.EMAIL, new_id()
            )
        lang = language_of(wanted, LANGUAGES, setup.settings.language)
        saved = (await messaging_service.saved_templates(conn, program, kind)).get((kind, lang))
        sources = template_sources(spec, lang, saved.parts if saved else None)
        for part, source in (parts or {}).items():
            check_no_links(kind, str(part), source)
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
        for part in parts or {}:
            # What a secret kind's part renders to holds no link either (spelt from pieces).
            check_no_links(kind, str(part), rendered[str(part)])
        return lang, rendered

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
        with their data; consent and quiet hours do not apply (staff asked for it), but a
        suppressed address is not written to, and a confirmation of an address is the
        program's own to send."""
        spec = known_kind(kind)
        if spec.key in SYSTEM_KINDS:
            raise InvalidInput(f"{spec.key} is sent by the program itself", field="kind")
        check_variables(spec, variables)
        setup = await messaging_service.ensure_setup(conn, program, now)
        message_id = new_id()
        values: dict[str, Any] = dict(spec.sample)
        lang = language_of(language, LANGUAGES, setup.settings.language)
        address = to
        extra: dict[str, str] = {}
        if member_id is not None:
            batch = await messaging_service.load_batch(
                conn, program, setup, [member_id], [kind], now
            )
            recipient = batch.recipients.get(member_id)
            if recipient is None:
                raise NotFound(f"member {member_id} not found", field="member_id")
            lang = language_of(language or recipient.language, LANGUAGES, setup.settings.language)
            values |= messaging_service.common_variables(
                batch, recipient, spec, lang, channel, message_id
            )
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
            address = checked_address(channel, to or "")
        if address and channel in (Channel.EMAIL, Channel.SMS):
            blocked = await self.audience.suppressed(conn, program.id, [(str(channel), address)])
            if blocked:
                reason = next(iter(blocked.values()))
                raise InvalidInput(f"{address} is suppressed ({reason})", field="to")
        saved = (await messaging_service.saved_templates(conn, program, kind)).get((kind, lang))
        sources = template_sources(spec, lang, saved.parts if saved else None)
        try:
            rendered = render_message(spec, channel, sources, lang, values | dict(variables))
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
            "dedupe_key": f"{TEST_PREFIX}{message_id}",
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
        await self.repository.add_statuses(
            conn, [status_step(message_id, row["status"], "test", now)]
        )
        return message_row(row)


template_service = TemplateService()
