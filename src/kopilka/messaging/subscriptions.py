"""A member's web-push subscriptions: one per browser, replaced when the browser
subscribes again, removed when the push service says it has ended."""

import ipaddress
import socket
from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.members.service import member_service
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.records import SubscriptionRow
from kopilka.messaging.repository import MessagingRepository, messaging_repository
from kopilka.messaging.schemas import PushSubscriptionIn
from kopilka.programs.service import ProgramContext

MAX_PER_MEMBER = 20  # browsers and devices; the oldest goes when a new one passes it


def endpoint_problem(endpoint: str, allow_private: bool) -> str | None:
    """Why the worker must not POST to ``endpoint``, if it must not. Push services are
    public https hosts named by DNS (FCM, Mozilla, Apple): an address written as a number
    in any of its spellings (``127.1``, ``2130706433``, ``[::1]``, full-width digits) or a
    local name is someone's own network. Names are checked again when the worker resolves
    them."""
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").rstrip(".")
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        return "the endpoint is not a URL"
    if not host:
        return "the endpoint has no host"
    if allow_private:
        return None
    if parts.scheme != "https":
        return "the endpoint must be an https:// URL"
    try:
        # As the HTTP client will send it: IDNA, which also folds full-width digits.
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return f"{host!r} is not a host name"
    if _is_address(name):
        return f"{host} is an address: a push service is named by its host name"
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal", ".lan")):
        return f"{host} is not a public push service"
    return None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(name)  # every spelling C accepts: 127.1, 0177.0.0.1, 2130706433
        return True
    except OSError:
        return False


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
