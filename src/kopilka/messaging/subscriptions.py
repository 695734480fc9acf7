"""A member's web-push subscriptions: one per browser, replaced when the browser
subscribes again, removed when the push service says it has ended."""

import ipaddress
from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.members.service import member_service
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.domain import SubscriptionRow
from kopilka.messaging.repository import MessagingRepository, messaging_repository
from kopilka.messaging.schemas import PushSubscriptionIn
from kopilka.programs.service import ProgramContext

MAX_PER_MEMBER = 20  # browsers and devices; the oldest goes when a new one passes it


def endpoint_problem(endpoint: str, allow_private: bool) -> str | None:
    """Why the worker must not POST to ``endpoint``, if it must not: push services are
    public https hosts; a loopback, private or link-local address is someone's network."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if not host:
        return "the endpoint has no host"
    if allow_private:
        return None
    if parts.scheme != "https":
        return "the endpoint must be an https:// URL"
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{host} is not a public push service"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return f"{host} is not a public address"
    return None


class SubscriptionService:
    def __init__(
        self,
        repository: MessagingRepository = messaging_repository,
        audience: AudienceRepository = audience_repository,
    ) -> None:
        self.repository = repository
        self.audience = audience

    async def of(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> list[SubscriptionRow]:
        await member_service.get(conn, program, member_id)
        return (await self.audience.subscriptions(conn, [member_id])).get(member_id, [])

    async def add(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        body: PushSubscriptionIn,
        now: datetime,
        *,
        allow_private: bool = False,
    ) -> SubscriptionRow:
        problem = endpoint_problem(body.endpoint, allow_private)
        if problem is not None:
            raise InvalidInput(problem, field="endpoint")
        await member_service.get(conn, program, member_id)
        await self.audience.add_subscription(
            conn,
            {
                "id": new_id(),
                "program_id": program.id,
                "member_id": member_id,
                "endpoint": body.endpoint,
                "p256dh": body.keys.p256dh,
                "auth": body.keys.auth,
                "user_agent": body.user_agent,
                "created_at": now,
            },
        )
        found = (await self.audience.subscriptions(conn, [member_id])).get(member_id, [])
        for old in found[:-MAX_PER_MEMBER]:
            await self.audience.remove_subscription(conn, member_id, old.id)
        return next(s for s in found if s.endpoint == body.endpoint)

    async def remove(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, subscription_id: UUID
    ) -> None:
        await member_service.get(conn, program, member_id)
        if not await self.audience.remove_subscription(conn, member_id, subscription_id):
            raise NotFound(f"no push subscription {subscription_id}", field="subscription_id")


subscription_service = SubscriptionService()
