"""Members' sessions: start one, find who a token stands for, end them. Never commits."""

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Unauthorized
from kopilka.kit.ids import new_id
from kopilka.memberaccess import domain
from kopilka.memberaccess.domain import MemberSession
from kopilka.memberaccess.repository import MemberAccessRepository, member_access_repository

ENDED = "you are signed out: sign in again"


class MemberAccessService:
    def __init__(self, repository: MemberAccessRepository = member_access_repository) -> None:
        self.repository = repository

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


member_access_service = MemberAccessService()
