"""Members' sessions and how they start: a one-time code sent by e-mail or SMS to an address
of the member's (no password), exchanged for a session that sees only that member. Never
commits.

Nothing here tells a caller whether an address belongs to a member: asking for a code, or
signing up with an address already taken, answers the same either way (the code goes to
the member who has the address, if any), so the app cannot be used to find out who is a
member. No code is made for a channel the server cannot send on (``channels``: the caller
knows its configuration): a code that never arrives would only wait in the message log.

What a code does besides signing in waits with it (``OnUse``): the consents ticked at
sign-up are granted when the member enters the code that confirmed their address (only
for that address's channel; dropped if a new code replaces it), and a new e-mail or phone
becomes the member's only when the code sent to it is entered. A member keeps only an
address a code went to: one who joins with both gets the one the code confirmed.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.activities.service import activity_service
from kopilka.errors import Conflict, InvalidInput, Unauthorized
from kopilka.kit.ids import new_id
from kopilka.memberaccess import domain
from kopilka.memberaccess.domain import (
    CODE_MINUTES,
    Address,
    CodeChannel,
    CodeCheck,
    CodeOutcome,
    MemberSession,
    OnUse,
    StoredCode,
)
from kopilka.memberaccess.repository import MemberAccessRepository, member_access_repository
from kopilka.members.schemas import MemberCreate, MemberRef, MemberUpdate
from kopilka.members.service import member_service
from kopilka.messaging.composition import SIGN_IN_CODE, Outgoing
from kopilka.messaging.consents import consent_service
from kopilka.messaging.domain import Channel
from kopilka.messaging.notifications import Purpose
from kopilka.messaging.schemas import ConsentChange
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext

ENDED = "you are signed out: sign in again"
# Where a consent given on the sign-up page was given (the consent history says so).
APP_SOURCE = "app"


@dataclass(frozen=True)
class SignedIn:
    """A code given to sign in: what it was, and the new session's token if it was right."""

    check: CodeCheck
    token: str | None = None


class MemberAccessService:
    def __init__(self, repository: MemberAccessRepository = member_access_repository) -> None:
        self.repository = repository

    # --- sessions ------------------------------------------------------------------------

    async def start_session(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        now: datetime,
        *,
        user_agent: str | None = None,
    ) -> str:
        """A new session for the member; the token is returned once and only its hash kept."""
        token = domain.new_session_token()
        await self.repository.insert_session(
            conn,
            {
                "id": new_id(),
                "program_id": program_id,
                "member_id": member_id,
                "token_hash": domain.token_hash(token),
                "created_at": now,
                "expires_at": domain.session_expiry(now),
                "revoked_at": None,
                "user_agent": (user_agent or "")[:300] or None,
            },
        )
        return token

    async def session(self, conn: AsyncConnection, token: str, now: datetime) -> MemberSession:
        """Who the token stands for; 401 if it is unknown, ended or expired, or its member
        is no longer active (blocked, merged into another profile, erased)."""
        if not token.startswith(domain.SESSION_PREFIX):
            raise Unauthorized(ENDED)
        row = await self.repository.live_session(conn, domain.token_hash(token), now)
        if row is None or row.status != "active":
            raise Unauthorized(ENDED)
        return MemberSession(row.id, row.program_id, row.member_id)

    async def end_session(
        self, conn: AsyncConnection, session: MemberSession, now: datetime
    ) -> None:
        await self.repository.revoke(conn, session.member_id, now, only=session.session_id)

    async def end_all(self, conn: AsyncConnection, member_id: UUID, now: datetime) -> int:
        """Sign the member out on every device."""
        return await self.repository.revoke(conn, member_id, now)

    # --- one-time codes ------------------------------------------------------------------

    async def request_code(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        address: Address,
        now: datetime,
        *,
        channels: Collection[CodeChannel],
    ) -> bool:
        """Send a new sign-in code to ``address`` if an active member of the program has it
        (it replaces the member's earlier one, and what that one would have done is dropped:
        the consents ticked at a sign-up are granted only with the sign-up's own code, so
        that a stranger's ticks never ride on the real owner's code). Whether one went is
        for tests and logs: a page answers the same either way. ``ChannelUnavailable``
        (422, ``address``) if ``channels`` has not the address's channel — whoever's
        address it is."""
        domain.check_channel(address, channels)
        member_id = await self._active_member(conn, program, address)
        if member_id is None:
            return False
        await self._send_code(conn, program, member_id, address, now)
        return True

    async def sign_in(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        addresses: Sequence[Address],
        code: str,
        now: datetime,
        *,
        user_agent: str | None = None,
    ) -> SignedIn:
        """Check ``code`` against the live code of the member who has one of ``addresses``
        and, if it is theirs, start a session. A wrong code uses up one of the code's tries
        (the caller commits either way); a used, replaced, expired or exhausted code is
        refused even when its digits are right."""
        check = await self.verify_code(conn, program, addresses, code, now)
        if not check.accepted or check.member_id is None:
            return SignedIn(check)
        token = await self.start_session(
            conn, program.id, check.member_id, now, user_agent=user_agent
        )
        return SignedIn(check, token)

    async def verify_code(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        addresses: Sequence[Address],
        code: str,
        now: datetime,
    ) -> CodeCheck:
        """Whether ``code`` is the live sign-in code of the member who has one of
        ``addresses`` (at most two are looked at); each try is counted. Accepted, the code
        is used and what it carries is done: the consents ticked at sign-up are granted. A
        code confirming a new address never passes here."""
        members: list[UUID] = []
        for address in addresses[:2]:
            found = await self._active_member(conn, program, address)
            if found is not None and found not in members:
                members.append(found)
        stored = await self.repository.codes_of(conn, program.id, members)
        candidates = [c for c in stored if not c.on_use.changes_address]
        check, used = await self._try(conn, candidates, code, now)
        if used is not None:
            await self._grant_consents(conn, program, used, now)
        return check

    # --- a new e-mail or phone -----------------------------------------------------------

    async def request_address_change(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        address: Address,
        now: datetime,
        *,
        channels: Collection[CodeChannel],
    ) -> bool:
        """Send a code to ``address``, the e-mail or phone the member wants instead of
        theirs; entering it (:meth:`confirm_address_change`) makes the change, and until
        then nothing changes. No code goes to an address that is already someone's (the
        member's own: nothing to change; another member's: the page answers the same, so
        that it tells no one who is a member). ``ChannelUnavailable`` (naming ``email`` or
        ``phone``) if a code cannot go there. Whether a code went is for tests and logs."""
        domain.check_channel(address, channels, field=address.kind)
        await member_service.writable(conn, program, member_id)
        holder = (await member_service.resolve_many(conn, program, [_ref(address)]))[0]
        if holder is not None:
            return False
        await self._send_code(
            conn, program, member_id, address, now, on_use=OnUse(new_address=address)
        )
        return True

    async def confirm_address_change(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        address: Address,
        code: str,
        now: datetime,
    ) -> CodeCheck:
        """``code`` typed to confirm ``address``: right (the live code sent to exactly that
        address for this member), the member's e-mail or phone becomes it (as ``PATCH
        /v1/members/{id}`` changes it: 409 if another member took it meanwhile). Each try is
        counted, as when signing in."""
        stored = await self.repository.codes_of(conn, program.id, [member_id])
        candidates = [c for c in stored if c.on_use.new_address == address]
        check, used = await self._try(conn, candidates, code, now)
        if used is not None:
            change = MemberUpdate.model_validate({address.kind: address.value})
            await member_service.update(conn, program, member_id, change, now)
        return check

    # --- sign-up -------------------------------------------------------------------------

    async def sign_up(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        data: MemberCreate,
        marketing: Sequence[str],
        now: datetime,
        *,
        channels: Collection[CodeChannel],
    ) -> list[Address]:
        """A member who joins from the app: registered as ``POST /v1/members`` registers
        (the program's sign-up rules run) and a sign-in code sent to confirm the address
        (the e-mail if given and e-mail can be sent, else the phone). The member keeps only
        that address: the other one typed is not the member's until a code sent to it is
        entered (from the profile) — no one proved it theirs, and it may be someone else's.
        The marketing consents ticked (``marketing``: channels) wait with the code: they
        are granted, with the source ``app``, when the member enters it — for the channel of
        the address it confirmed (and push, which needs no address), never for the other.
        When that address is already a member's, nothing is registered and the code goes to
        that member instead (nothing ticked is granted to them). ``ChannelUnavailable`` if
        no address given can be sent to. Returns the address the code went to (in a list:
        what the code is checked against); the page answers the same either way."""
        typed = domain.addresses_of(data.email, data.phone)
        if not typed:
            raise InvalidInput("give a phone number or an e-mail address", field="email")
        sendable = [a for a in typed if a.channel in channels]
        if not sendable:
            raise domain.ChannelUnavailable(typed[0].channel, field=typed[0].kind)
        confirmed = sendable[0]
        holder = (await member_service.resolve_many(conn, program, [_ref(confirmed)]))[0]
        if holder is not None:
            if holder[1] == "active":
                await self._send_code(conn, program, holder[0], confirmed, now)
            return [confirmed]
        # Only the address the code goes to: the other is added from the profile, by a code.
        only = data.model_copy(
            update={"email": None, "phone": None, confirmed.kind: confirmed.value}
        )
        try:
            member = await activity_service.sign_up(conn, program, only, now)
        except Conflict:
            # Taken by a registration that committed after the look-up above.
            await self.request_code(conn, program, confirmed, now, channels=channels)
            return [confirmed]
        consents = domain.sign_up_consents(marketing, [confirmed])
        await self._send_code(
            conn, program, member.id, confirmed, now, on_use=OnUse(consents=consents)
        )
        return [confirmed]

    # --- helpers -------------------------------------------------------------------------

    async def _active_member(
        self, conn: AsyncConnection, program: ProgramContext, address: Address
    ) -> UUID | None:
        found = (await member_service.resolve_many(conn, program, [_ref(address)]))[0]
        return found[0] if found is not None and found[1] == "active" else None

    async def _try(
        self,
        conn: AsyncConnection,
        stored: Sequence[StoredCode],
        code: str,
        now: datetime,
    ) -> tuple[CodeCheck, StoredCode | None]:
        """``code`` tried against the live ones of ``stored``, each try counted: the check,
        and the code it used if it was right."""
        live = [c for c in stored if domain.judge(c, now) is None]
        if not live:
            reasons = [domain.judge(c, now) for c in stored]
            outcome = next((r for r in reasons if r is not None), CodeOutcome.NO_CODE)
            return CodeCheck(outcome), None
        outcome = CodeOutcome.TOO_MANY
        for candidate in live:
            if not await self.repository.take_try(conn, candidate.id, now):
                continue  # a parallel try took the last one
            outcome = CodeOutcome.WRONG
            if domain.code_matches(candidate, code) and await self.repository.use_code(
                conn, candidate.id, now
            ):
                return CodeCheck(CodeOutcome.ACCEPTED, candidate.member_id), candidate
        return CodeCheck(outcome), None

    async def _grant_consents(
        self, conn: AsyncConnection, program: ProgramContext, used: StoredCode, now: datetime
    ) -> None:
        """The consents ticked at sign-up, now that the member has entered the code sent to
        their address: only for that address's channel (and push, which needs none) —
        marketing e-mail needs no other confirmation when that code came by e-mail (the
        address is confirmed)."""
        confirmed = [
            channel
            for channel in used.on_use.consents
            if channel == used.channel or domain.ADDRESS_OF_CHANNEL.get(channel, "") is None
        ]
        changes = [
            ConsentChange.model_validate(
                {
                    "channel": channel,
                    "purpose": Purpose.MARKETING,
                    "granted": True,
                    "source": APP_SOURCE,
                    "confirmed": channel == used.channel == CodeChannel.EMAIL,
                }
            )
            for channel in confirmed
        ]
        if changes:
            await consent_service.change(
                conn, program, used.member_id, changes, now, confirm_at=now
            )

    async def _send_code(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        address: Address,
        now: datetime,
        *,
        on_use: OnUse | None = None,
    ) -> None:
        """A new code for the member, sent on the channel of ``address`` through messaging
        (to ``address`` itself, which may not be the member's yet); only its hash is kept.
        It replaces the member's earlier code of its sort (sign-in, or a new address) and
        any spent one, and what the one replaced carried is dropped with it: consents that
        waited with it are not granted by the new code (whoever asked for it)."""
        stored = await self.repository.codes_of(conn, program.id, [member_id])
        changing = on_use is not None and on_use.changes_address
        replaced = [
            c
            for c in stored
            if c.on_use.changes_address == changing or domain.judge(c, now) is not None
        ]
        on_use = on_use or OnUse()
        code, code_id = domain.new_code(), new_id()
        await self.repository.replace_codes(
            conn,
            {
                "id": code_id,
                "program_id": program.id,
                "member_id": member_id,
                "channel": str(address.channel),
                "code_hash": domain.code_hash(code_id, code),
                "created_at": now,
                "expires_at": domain.code_expiry(now),
                "attempts": 0,
                "used_at": None,
                "on_use": on_use.stored(),
            },
            [c.id for c in replaced],
        )
        await messaging_service.compose(
            conn,
            program,
            [
                Outgoing(
                    SIGN_IN_CODE,
                    member_id,
                    f"{SIGN_IN_CODE}:{code_id}",
                    {"code": code, "minutes": CODE_MINUTES},
                    channels=[Channel(str(address.channel))],
                    to=address.value,
                )
            ],
            now,
        )


def _ref(address: Address) -> MemberRef:
    return MemberRef.model_validate({address.kind: address.value})


member_access_service = MemberAccessService()
