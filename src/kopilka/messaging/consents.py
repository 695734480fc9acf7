"""Consent per channel and purpose, with its history.

A member's marketing consent per channel is ``granted``, ``pending`` (double opt-in: the
member asked for marketing e-mail and has not yet confirmed the address) or ``withdrawn``;
no record means no consent. Service messages (a member's own points, tier, rewards) need
none and go unless the member withdrew them on that channel. Every change is kept with its
time, source and the version of the consent text.

The member profile's ``consents`` flags (``email``, ``sms``, ``push``) stay the short
answer to "may we send marketing here": a flag is on while the consent is granted or
pending. A change made here sets the flags; a change of the flags through the member API
(or at registration) reaches here through the ``member.*`` events, as a change from that
source.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, NotFound
from kopilka.kit.clock import as_utc
from kopilka.members.schemas import Consents as MemberFlags
from kopilka.members.schemas import MemberUpdate
from kopilka.members.service import member_service
from kopilka.messaging import links
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.composition import Outgoing, Setup, consent_allows
from kopilka.messaging.domain import Channel
from kopilka.messaging.notifications import Purpose
from kopilka.messaging.records import ConsentRecordRow, ConsentRow
from kopilka.messaging.repository import MessagingRepository, messaging_repository
from kopilka.messaging.schemas import ConsentChange
from kopilka.messaging.service import messaging_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.service import ProgramContext

CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH)
GRANTED, PENDING, WITHDRAWN = "granted", "pending", "withdrawn"
# Which of two decisions is the stricter (a merge keeps it).
STRICTNESS = {GRANTED: 0, PENDING: 1, WITHDRAWN: 2}
CONFIRM_KIND = "consent_confirm"
# At most one confirmation of an address per member in this long: ticking and unticking
# the box must not turn the program into a mail bomb aimed at someone's inbox.
CONFIRM_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class ConsentView:
    channel: str
    purpose: str
    status: str  # granted | pending | withdrawn | none
    allowed: bool
    source: str | None
    text_version: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class DatedChange:
    """A change of a member's consent as of its own date: what a member brought from
    another system had given or refused, and when."""

    member_id: UUID
    at: datetime
    change: ConsentChange


class ConsentService:
    def __init__(
        self,
        repository: MessagingRepository = messaging_repository,
        audience: AudienceRepository = audience_repository,
    ) -> None:
        self.repository = repository
        self.audience = audience

    async def of(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> tuple[list[ConsentView], list[ConsentRecordRow]]:
        """Every channel and purpose with its state now, and the history, newest first."""
        await member_service.get(conn, program, member_id)
        rows = (await self.audience.consents(conn, [member_id])).get(member_id, [])
        views = []
        for channel in CHANNELS:
            for purpose in (Purpose.SERVICE, Purpose.MARKETING):
                found = _find(rows, channel, purpose)
                views.append(
                    ConsentView(
                        channel=str(channel),
                        purpose=str(purpose),
                        status=found.status if found else "none",
                        allowed=consent_allows(rows, str(channel), str(purpose)),
                        source=found.source if found else None,
                        text_version=found.text_version if found else None,
                        updated_at=found.updated_at if found else None,
                    )
                )
        return views, await self.audience.consent_history(conn, member_id)

    async def change(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        changes: Sequence[ConsentChange],
        now: datetime,
        *,
        sync_profile: bool = True,
        confirm_at: datetime | None = None,
    ) -> int:
        """Apply ``changes`` as of ``now``; how many changed anything (repeating a state is
        no change). Marketing e-mail granted without ``confirmed`` waits for the member to
        confirm, when the program asks for double opt-in; the confirmation message goes out
        at ``confirm_at`` (None: none, as for an old registration replayed)."""
        member = await member_service.writable(conn, program, member_id)
        await self.audience.lock_consents(conn, member_id)
        setup = await messaging_service.ensure_setup(conn, program, now)
        rows = (await self.audience.consents(conn, [member_id])).get(member_id, [])
        changed = 0
        confirm = False
        for change in changes:
            status = WITHDRAWN
            if change.granted:
                double = (
                    change.purpose is Purpose.MARKETING
                    and change.channel == "email"
                    and setup.settings.double_opt_in
                    and not change.confirmed
                )
                status = PENDING if double else GRANTED
            current = _find(rows, change.channel, change.purpose)
            if not _differs(current, status, change.granted, change.purpose):
                continue
            await self._set(
                conn,
                program,
                member_id,
                change.channel,
                change.purpose,
                status,
                change.source,
                change.text_version or setup.settings.consent_text_version,
                None,
                now,
                current.status if current else None,
            )
            confirm = confirm or status == PENDING
            changed += 1
            # The next change of the same request sees this one.
            rows = [r for r in rows if (r.channel, r.purpose) != (change.channel, change.purpose)]
            rows.append(
                ConsentRow(change.channel, str(change.purpose), status, change.source, None, now)
            )
        if confirm and member.email and confirm_at is not None:
            await self._ask_to_confirm(conn, program, setup, member_id, member.email, confirm_at)
        if changed and sync_profile:
            await self._sync_profile(conn, program, member_id, member.consents, now)
        return changed

    async def _ask_to_confirm(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        setup: Setup,
        member_id: UUID,
        email: str,
        at: datetime,
    ) -> None:
        """A ``consent_confirm`` to ``email`` — unless one went to that address less than a
        day ago (its link still confirms: it names the member, not the message). The dedupe
        key carries the day, so that even racing requests make one a day; the consents are
        locked, so they do not race here anyway."""
        recent = await self.repository.messages_page(
            conn, program.id, limit=20, before=None, member_id=member_id, kind=CONFIRM_KIND
        )
        if any(m.to_address == email and as_utc(m.created_at) > at - CONFIRM_EVERY for m in recent):
            return
        link = setup.link(
            "confirm",
            links.LinkData("confirm", program.id, member_id, channel=str(Channel.EMAIL)),
        )
        # The address as a short digest: the key says "this address", not the address.
        digest = hashlib.sha256(email.encode()).hexdigest()[:16]
        await messaging_service.compose(
            conn,
            program,
            [
                Outgoing(
                    CONFIRM_KIND,
                    member_id,
                    f"{CONFIRM_KIND}:{member_id}:{digest}:{at.date().isoformat()}",
                    {"confirm_url": link},
                    channels=[Channel.EMAIL],
                )
            ],
            at,
        )

    async def confirm(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> bool:
        """The member followed the confirmation link: pending marketing e-mail is granted.
        False if there was nothing pending (already confirmed, or withdrawn since)."""
        rows = (await self.audience.consents(conn, [member_id])).get(member_id, [])
        current = _find(rows, Channel.EMAIL, Purpose.MARKETING)
        if current is None or current.status != PENDING:
            return current is not None and current.status == GRANTED
        await self._set(
            conn,
            program,
            member_id,
            "email",
            "marketing",
            GRANTED,
            "confirmation",
            current.text_version,
            "address confirmed",
            now,
            PENDING,
        )
        return True

    async def withdraw(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        channel: str,
        source: str,
        now: datetime,
    ) -> bool:
        """Marketing on ``channel`` withdrawn (one-click unsubscribe)."""
        change = own_change(channel, Purpose.MARKETING, False, source)
        return await self.change(conn, program, member_id, [change], now) > 0

    async def from_profile(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        flags: Mapping[str, Any],
        source: str,
        now: datetime,
        *,
        confirm_at: datetime | None,
    ) -> int:
        """The profile's marketing flags changed at ``now`` (registration, the member API):
        record what differs, as a change from ``source``; a confirmation of the address, if
        one is asked for, goes out at ``confirm_at`` (None: none, the change is history)."""
        rows = (await self.audience.consents(conn, [member_id])).get(member_id, [])
        changes = []
        for channel in CHANNELS:
            wanted = flags.get(str(channel))
            if not isinstance(wanted, bool):
                continue
            current = _find(rows, channel, Purpose.MARKETING)
            if current is not None and current.updated_at > now:
                # Changed since the profile said so (the profile's own flags follow every
                # change made here, and their event arrives after it): not news.
                continue
            if _differs(current, GRANTED if wanted else WITHDRAWN, wanted, Purpose.MARKETING):
                changes.append(own_change(str(channel), Purpose.MARKETING, wanted, source))
        if not changes:
            return 0
        try:
            return await self.change(
                conn, program, member_id, changes, now, sync_profile=False, confirm_at=confirm_at
            )
        except (NotFound, Conflict):
            return 0  # gone, merged into another or erased since: nothing to record

    async def merge_into(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        source: UUID,
        target: UUID,
        now: datetime,
    ) -> list[str]:
        """Two profiles of one person merged: for each channel and purpose the stricter of
        the two decisions stays with ``target`` (withdrawn over pending over granted; a
        profile never asked has made no decision and defers to the other). Each change is
        a history line with source ``merge`` and a ``consent.changed`` event; the profile's
        flags follow. Returns the ``channel.purpose`` pairs that changed."""
        before = (await member_service.get(conn, program, target)).consents
        await self.audience.lock_consents(conn, target)
        found = await self.audience.consents(conn, [source, target])
        theirs, ours = found.get(source, []), found.get(target, [])
        changed = []
        for channel in CHANNELS:
            for purpose in (Purpose.SERVICE, Purpose.MARKETING):
                mine, other = _find(ours, channel, purpose), _find(theirs, channel, purpose)
                if other is None or (
                    mine is not None and STRICTNESS[mine.status] >= STRICTNESS[other.status]
                ):
                    continue
                await self._set(
                    conn,
                    program,
                    target,
                    str(channel),
                    str(purpose),
                    other.status,
                    "merge",
                    other.text_version,
                    f"from member {source}",
                    now,
                    mine.status if mine else None,
                )
                changed.append(f"{channel}.{purpose}")
        if changed:
            await self._sync_profile(conn, program, target, before, now)
        return changed

    async def record_imported(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        items: Sequence[DatedChange],
        uow: UnitOfWork,
    ) -> dict[UUID, int]:
        """The consents of members registered in this transaction (an import brings them
        from another system), each change as of its own date: the consent's state, its
        history line and its ``consent.changed`` event, staged in ``uow`` with one
        statement per table for any number of members.

        The members are new, so nothing is read but the program's messaging settings (the
        default text version, double opt-in): every member starts with no consent, and
        each change is judged as :meth:`change` would judge it, in the order of ``items``
        (give each member's changes oldest first). No message is composed: a marketing
        e-mail consent not ``confirmed`` under double opt-in stays pending, as
        :meth:`change` leaves it without ``confirm_at``. The profile's flags are the
        caller's to set in the member's own row (``Consents``: on where marketing is
        granted or pending). Returns, per member, how many changes were recorded."""
        if not items:
            return {}
        settings = (await messaging_service.ensure_setup(conn, program, uow.now)).settings
        current: dict[tuple[UUID, str, str], ConsentRow] = {}
        states: dict[tuple[UUID, str, str], dict[str, Any]] = {}
        records: list[dict[str, Any]] = []
        recorded: dict[UUID, int] = {}
        for item in items:
            change, member_id, at = item.change, item.member_id, item.at
            channel, purpose = str(change.channel), str(change.purpose)
            status = WITHDRAWN
            if change.granted:
                double = (
                    purpose == Purpose.MARKETING
                    and channel == Channel.EMAIL
                    and settings.double_opt_in
                    and not change.confirmed
                )
                status = PENDING if double else GRANTED
            key = (member_id, channel, purpose)
            before = current.get(key)
            if not _differs(before, status, change.granted, purpose):
                continue
            text_version = change.text_version or settings.consent_text_version
            # The last change of a channel and purpose is the state that stands.
            states[key] = {
                "member_id": member_id,
                "channel": channel,
                "purpose": purpose,
                "program_id": program.id,
                "status": status,
                "source": change.source,
                "text_version": text_version,
                "updated_at": at,
            }
            records.append(
                {
                    "program_id": program.id,
                    "member_id": member_id,
                    "channel": channel,
                    "purpose": purpose,
                    "status": status,
                    "source": change.source,
                    "text_version": text_version,
                    "detail": None,
                    "recorded_at": at,
                }
            )
            uow.emit(
                events.ConsentChanged(
                    program_id=program.id,
                    member_id=member_id,
                    occurred_at=at,
                    channel=channel,
                    purpose=purpose,
                    status=status,
                    previous_status=before.status if before else None,
                    source=change.source,
                    text_version=text_version,
                )
            )
            current[key] = ConsentRow(channel, purpose, status, change.source, None, at)
            recorded[member_id] = recorded.get(member_id, 0) + 1
        self.audience.stage_consents(uow, list(states.values()), records)
        return recorded

    async def _set(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        channel: str,
        purpose: str,
        status: str,
        source: str,
        text_version: str | None,
        detail: str | None,
        now: datetime,
        previous: str | None,
    ) -> None:
        """The consent's new state, its history line and its ``consent.changed`` event."""
        state = {
            "member_id": member_id,
            "channel": str(channel),
            "purpose": str(purpose),
            "program_id": program.id,
            "status": status,
            "source": source,
            "text_version": text_version,
            "updated_at": now,
        }
        record = {
            "program_id": program.id,
            "member_id": member_id,
            "channel": str(channel),
            "purpose": str(purpose),
            "status": status,
            "source": source,
            "text_version": text_version,
            "detail": detail,
            "recorded_at": now,
        }
        await self.audience.set_consent(conn, state, record)
        async with unit_of_work(conn, now) as unit:
            unit.emit(
                events.ConsentChanged(
                    program_id=program.id,
                    member_id=member_id,
                    occurred_at=now,
                    channel=str(channel),
                    purpose=str(purpose),
                    status=status,
                    previous_status=previous,
                    source=source,
                    text_version=text_version,
                )
            )

    async def _sync_profile(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        before: MemberFlags,
        now: datetime,
    ) -> None:
        rows = (await self.audience.consents(conn, [member_id])).get(member_id, [])
        flags = {
            str(channel): (found := _find(rows, channel, Purpose.MARKETING)) is not None
            and found.status in (GRANTED, PENDING)
            for channel in CHANNELS
        }
        if flags != before.model_dump():
            await member_service.update(
                conn, program, member_id, MemberUpdate(consents=MemberFlags(**flags)), now
            )


def own_change(channel: str, purpose: Purpose, granted: bool, source: str) -> ConsentChange:
    """A change Kopilka's own paths make (an unsubscribe link, the preference page, the
    profile's flags), under a source a caller may not give."""
    return ConsentChange.model_construct(
        channel=channel,  # type: ignore[arg-type]  # one of CHANNELS
        purpose=purpose,
        granted=granted,
        source=source,
        text_version=None,
        confirmed=False,
    )


def _find(rows: Sequence[ConsentRow], channel: str, purpose: str) -> ConsentRow | None:
    return next((r for r in rows if r.channel == channel and r.purpose == purpose), None)


def _differs(current: ConsentRow | None, status: str, granted: bool, purpose: str) -> bool:
    """Whether moving to ``status`` changes anything: a grant over a granted or pending
    consent, or a withdrawal of a marketing consent never given, is no change."""
    if current is None:
        return granted or purpose == Purpose.SERVICE
    if granted:
        return current.status == WITHDRAWN or (current.status == PENDING and status == GRANTED)
    return current.status != WITHDRAWN


consent_service = ConsentService()
