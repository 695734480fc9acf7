"""What the sender and providers report about messages: leasing due ones, recording what
each send gave (sent, a retry later with back-off, failed or bounced for good), delivery
reports, clicks, and sending a failed message again. Never commits."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, NotFound
from kopilka.messaging import links
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.composition import (
    BOUNCED,
    CLICKED,
    DELIVERED,
    FAILED,
    MAX_ATTEMPTS,
    QUEUED,
    SECRET_KINDS,
    SENT,
    SENT_LIKE,
    SKIPPED,
    TEST_PREFIX,
    SendResult,
    consent_allows,
    forget_secret,
    retry_delay,
    status_step,
)
from kopilka.messaging.domain import Channel
from kopilka.messaging.records import MessageRow
from kopilka.messaging.repository import MessagingRepository, messaging_repository
from kopilka.messaging.schemas import MessagingSettings
from kopilka.programs.service import ProgramContext


class DeliveryService:
    def __init__(
        self,
        repository: MessagingRepository = messaging_repository,
        audience: AudienceRepository = audience_repository,
    ) -> None:
        self.repository = repository
        self.audience = audience

    async def lease(
        self,
        conn: AsyncConnection,
        now: datetime,
        lease: timedelta,
        limit: int,
        channels: Sequence[str],
    ) -> list[MessageRow]:
        """Due messages for the sender to send, held until ``now + lease``. A message whose
        member has withdrawn the consent, or whose address was suppressed, since it was
        made is skipped here instead (and so is a retry of it); messages of a paused
        broadcast wait."""
        leased = await self.repository.lease_due(conn, now, now + lease, limit, channels)
        refused = await self._too_late(conn, leased, now) | await self._no_longer_allowed(
            conn, leased
        )
        if refused:
            await self.repository.update_messages(
                conn,
                [
                    {
                        "id": m,
                        "status": SKIPPED,
                        "error": f"not sent: {why}",
                        "due_at": None,
                        "updated_at": now,
                    }
                    for m, why in refused.items()
                ],
            )
            await self.repository.add_statuses(
                conn, [status_step(m, SKIPPED, why, now) for m, why in refused.items()]
            )
        return [m for m in leased if m.id not in refused]

    async def _too_late(
        self, conn: AsyncConnection, messages: Sequence[MessageRow], now: datetime
    ) -> dict[UUID, str]:
        """Messages (by id) made longer ago than the program's ``fresh_hours``: a worker
        that was down for days, or a replayed history, must not greet a birthday a week
        late. The in-app inbox keeps them (it is read when the member looks)."""
        hours: dict[UUID, int] = {}
        late: dict[UUID, str] = {}
        for m in messages:
            if m.channel == Channel.INBOX or m.dedupe_key.startswith(TEST_PREFIX):
                continue
            if m.program_id not in hours:
                found = await self.repository.settings(conn, m.program_id)
                settings = MessagingSettings.model_validate(found[0] if found else {}, strict=False)
                hours[m.program_id] = settings.fresh_hours
            if now - m.created_at > timedelta(hours=hours[m.program_id]):
                late[m.id] = (
                    f"made {m.created_at:%Y-%m-%d %H:%M} UTC, more than "
                    f"{hours[m.program_id]} hours before it could go"
                )
        return late

    async def _no_longer_allowed(
        self, conn: AsyncConnection, messages: Sequence[MessageRow]
    ) -> dict[UUID, str]:
        """Messages (by id) that may no longer go, with the reason."""
        checked = [
            m
            for m in messages
            if m.member_id is not None and not m.dedupe_key.startswith(TEST_PREFIX)
        ]
        if not checked:
            return {}
        consents = await self.audience.consents(conn, [m.member_id for m in checked if m.member_id])
        suppressed: dict[tuple[str, str], str] = {}
        for program_id in {m.program_id for m in checked}:
            addresses = [
                (m.channel, m.to_address)
                for m in checked
                if m.program_id == program_id and m.to_address and m.channel != "push"
            ]
            suppressed |= await self.audience.suppressed(conn, program_id, addresses)
        refused: dict[UUID, str] = {}
        for m in checked:
            assert m.member_id is not None
            if m.channel == "inbox":
                continue
            if not consent_allows(consents.get(m.member_id, []), m.channel, m.purpose, m.kind):
                refused[m.id] = "consent withdrawn since the message was made"
            elif m.to_address and (m.channel, m.to_address) in suppressed:
                refused[m.id] = f"address suppressed ({suppressed[(m.channel, m.to_address)]})"
        return refused

    async def record(self, conn: AsyncConnection, results: Sequence[SendResult]) -> None:
        """What the sends gave: sent, a retry later, or failed for good (a hard bounce
        also stops the address; an ended push subscription is removed)."""
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        # A message cancelled while it was being sent (its broadcast cancelled): one that
        # went is recorded as sent — it did — and one that did not stays as it is now.
        now_status = await self.repository.statuses_of(conn, [r.message.id for r in results])
        for result in results:
            message, at = result.message, result.at
            attempts = message.attempts + 1
            if now_status.get(message.id) != QUEUED and result.error is not None:
                continue
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
                        **forget_secret(message),
                    }
                )
                history.append(status_step(message.id, SENT, result.provider_id, at))
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
                        **forget_secret(message),
                    }
                )
                history.append(status_step(message.id, status, result.error, at))
                if result.bounced and message.to_address:
                    await self.audience.suppress(
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
                    await self.audience.remove_endpoint(
                        conn, message.program_id, message.to_address
                    )
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
                status_step(
                    message.id, "retry", f"{result.error}; next try {later:%H:%M:%S} UTC", at
                )
            )
        await self.repository.update_messages(conn, updates)
        await self.repository.add_statuses(conn, history)

    async def report(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        channel: str,
        provider_id: str,
        delivered: bool,
        detail: str | None,
        now: datetime,
    ) -> MessageRow | None:
        """A provider's delivery report on one of the program's messages; None if none has
        that provider id. A report repeated (providers retry their callbacks) changes
        nothing and adds nothing to the history."""
        found = await self.repository.by_provider_id(conn, program_id, channel, provider_id)
        if found is None:
            return None
        status = DELIVERED if delivered else FAILED
        if found.status == status:
            return found
        # A report moves a message that went out; a later "failed" does not undo a
        # "delivered" (providers report a message's parts apart).
        if found.status in (SENT, QUEUED):
            await self.repository.update_message(
                conn,
                found.id,
                status=status,
                updated_at=now,
                error=None if delivered else (detail or "the provider could not deliver it"),
            )
            await self.repository.add_status(conn, found.id, status, detail, now)
        return found

    async def accept_reports(
        self,
        conn: AsyncConnection,
        data: links.LinkData,
        reports: Sequence[tuple[str, bool, str | None]],
        now: datetime,
    ) -> int:
        """A provider's delivery reports at the program's verified callback URL (``data``):
        (provider id, delivered, detail); how many matched a message."""
        matched = 0
        for provider_id, delivered, detail in reports:
            row = await self.report(
                conn, data.program_id, data.channel or "sms", provider_id, delivered, detail, now
            )
            matched += row is not None
        return matched

    async def clicked(
        self, conn: AsyncConnection, program_id: UUID, message_id: UUID, url: str, now: datetime
    ) -> None:
        """A tracked link of the message followed: the first click's time, and the URL in
        the history. A secret kind's message records nothing (its links are not tracked; a
        token made before that may carry its code in the URL)."""
        found = await self.repository.message(conn, program_id, message_id)
        if found is None or found.kind in SECRET_KINDS:
            return
        values: dict[str, Any] = {"updated_at": now}
        if found.clicked_at is None:
            values["clicked_at"] = now
        if found.status in SENT_LIKE:
            values["status"] = CLICKED
        await self.repository.update_message(conn, message_id, **values)
        await self.repository.add_status(conn, message_id, CLICKED, url[:500], now)

    async def retry(
        self, conn: AsyncConnection, program: ProgramContext, message_id: UUID, now: datetime
    ) -> MessageRow:
        """Send a failed message again as soon as the sender can, with fresh attempts."""
        found = await self.repository.message(conn, program.id, message_id, lock=True)
        if found is None:
            raise NotFound(f"no message {message_id}", field="message_id")
        if found.status == FAILED and (
            found.channel == Channel.INBOX or (found.error or "").startswith("template:")
        ):
            raise Conflict(
                f"message {message_id} cannot be sent again: "
                + (
                    "its template did not render; mend the template and send a new one"
                    if found.channel != Channel.INBOX
                    else "an inbox copy is not sent"
                ),
                field="message_id",
            )
        if found.status != FAILED:
            raise Conflict(
                f"message {message_id} is {found.status}: only a failed one is sent again",
                field="message_id",
            )
        await self.repository.update_message(
            conn, message_id, status=QUEUED, attempts=0, due_at=now, error=None, updated_at=now
        )
        await self.repository.add_status(conn, message_id, QUEUED, "sent again on request", now)
        refreshed = await self.repository.message(conn, program.id, message_id)
        assert refreshed is not None
        return refreshed


delivery_service = DeliveryService()
