"""Members' sessions and how they start: a one-time code sent by e-mail or SMS to an address
of the member's (no password), exchanged for a session that sees only that member. Never
commits.

Nothing here tells a caller whether an address belongs to a member: asking for a code, or
signing up with an address already taken, answers the same either way (the code goes to
the member who has the address, if any), so the app cannot be used to find out who is a
member.
"""

from collections.abc import Sequence
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
    CodeCheck,
    CodeOutcome,
    MemberSession,
)
from kopilka.memberaccess.repository import MemberAccessRepository, member_access_repository
from kopilka.members.schemas import MemberCreate, MemberRef
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
        self, conn: AsyncConnection, program: ProgramContext, address: Address, now: datetime
    ) -> bool:
        """Send a new sign-in code to ``address`` if an active member of the program has it
        (it replaces the member's earlier code). Whether one went is for tests and logs: a
        page answers the same either way."""
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
        """Whether ``code`` is the live code of the member who has one of ``addresses`` (a
        sign-up page carries the phone and the e-mail typed); each try is counted."""
        members: list[UUID] = []
        for address in addresses[:2]:
            found = await self._active_member(conn, program, address)
            if found is not None and found not in members:
                members.append(found)
        stored = await self.repository.codes_of(conn, program.id, members)
        live = [c for c in stored if domain.judge(c, now) is None]
        if not live:
            reasons = [domain.judge(c, now) for c in stored]
            return CodeCheck(next((r for r in reasons if r is not None), CodeOutcome.NO_CODE))
        outcome = CodeOutcome.TOO_MANY
        for candidate in live:
            if not await self.repository.take_try(conn, candidate.id, now):
                continue  # a parallel try took the last one
            outcome = CodeOutcome.WRONG
            if domain.code_matches(candidate, code) and await self.repository.use_code(
                conn, candidate.id, now
            ):
                return CodeCheck(CodeOutcome.ACCEPTED, candidate.member_id)
        return CodeCheck(outcome)

    # --- sign-up -------------------------------------------------------------------------

    async def sign_up(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        data: MemberCreate,
        marketing: Sequence[str],
        now: datetime,
    ) -> list[Address]:
        """A member who joins from the app: registered as ``POST /v1/members`` registers
        (the program's sign-up rules run), the marketing consents ticked (``marketing``:
        channels) recorded with the source ``app``, and a sign-in code sent to confirm the
        address (the e-mail if given, else the phone). When the phone or e-mail is already
        a member's, nothing is registered and the code goes to that member instead.
        Returns the addresses typed, which the code is checked against."""
        typed = domain.addresses_of(data.email, data.phone)
        if not typed:
            raise InvalidInput("give a phone number or an e-mail address", field="email")
        for address in typed:
            holder = await member_service.resolve_many(conn, program, [_ref(address)])
            if holder[0] is not None:
                if holder[0][1] == "active":
                    await self._send_code(conn, program, holder[0][0], address, now)
                return typed
        try:
            member = await activity_service.sign_up(conn, program, data, now)
        except Conflict:
            # Taken by a registration that committed after the look-up above.
            for address in typed:
                if await self.request_code(conn, program, address, now):
                    break
            return typed
        changes = [
            ConsentChange.model_validate(
                {
                    "channel": channel,
                    "purpose": Purpose.MARKETING,
                    "granted": True,
                    "source": APP_SOURCE,
                }
            )
            for channel in marketing
        ]
        if changes:
            await consent_service.change(conn, program, member.id, changes, now, confirm_at=now)
        await self._send_code(conn, program, member.id, typed[0], now)
        return typed

    # --- helpers -------------------------------------------------------------------------

    async def _active_member(
        self, conn: AsyncConnection, program: ProgramContext, address: Address
    ) -> UUID | None:
        found = (await member_service.resolve_many(conn, program, [_ref(address)]))[0]
        return found[0] if found is not None and found[1] == "active" else None

    async def _send_code(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        address: Address,
        now: datetime,
    ) -> None:
        """A new code for the member (their earlier one is gone), sent on the channel of
        ``address`` through messaging; only its hash is kept here."""
        code, code_id = domain.new_code(), new_id()
        await self.repository.replace_code(
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
            },
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
                )
            ],
            now,
        )


def _ref(address: Address) -> MemberRef:
    return MemberRef.model_validate({address.kind: address.value})


member_access_service = MemberAccessService()
