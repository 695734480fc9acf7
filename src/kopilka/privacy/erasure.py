"""The right to erasure (GDPR art. 17, 152-FZ art. 21): a member's personal data removed or
made anonymous everywhere Kopilka keeps it, while purchases, the ledger and aggregates stay
so the books still balance. Never commits."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.memberaccess.service import member_access_service
from kopilka.members.person import person_service
from kopilka.members.service import member_service
from kopilka.messaging import privacy as messaging_privacy
from kopilka.outbox.crm_events import MemberErased
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.support import service as support
from kopilka.wallet.service import wallet_service


@dataclass(frozen=True)
class Erasure:
    member_id: UUID
    already_erased: bool
    messages_blanked: int = 0
    support_rows_blanked: int = 0


class ErasureService:
    async def erase(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        reason: str,
        now: datetime,
    ) -> Erasure:
        """Erase the member's personal data: the profile's (and every identifier, freed),
        their messages' texts and addresses, their push subscriptions, what support wrote
        of them, the before and after of audit entries about them; marketing consent
        withdrawn; their app sessions ended. Points, purchases, tiers and facts stay, under
        an id that names no one. Erasing again changes nothing. 404 for a member not of the
        program."""
        found = await member_service.get(conn, program, member_id)
        if found.status == "erased":
            audit_service.nothing_changed()
            return Erasure(member_id, already_erased=True)
        member_service.ensure_writable(found)  # a merged profile: its survivor is erased
        await member_service.lock(conn, program, [member_id])
        # Marketing consent is withdrawn while the profile still takes changes.
        messages = await messaging_privacy.erase_member(conn, program, member_id, now)
        before, _ = await person_service.erase_profile(conn, program, member_id, now)
        rows = await support.erase_member(conn, program, member_id)
        # The person's earlier profiles, merged into this one: what the log says of them.
        earlier = await person_service.merged_profiles(conn, program, member_id)
        for person in earlier:
            messages += await messaging_privacy.blank_messages(conn, program, person)
        for person in [member_id, *earlier]:
            await audit_service.erase_subject(conn, program.id, "member", person)
        # Signed out everywhere: no app session outlives the person it stood for, and no
        # phone keeps receiving their pass's updates.
        await member_access_service.end_all(conn, member_id, now)
        await wallet_service.forget_members(conn, [member_id, *earlier])
        async with unit_of_work(conn, now) as unit:
            unit.emit(
                MemberErased(
                    program_id=program.id, member_id=member_id, occurred_at=now, reason=reason
                )
            )
        await audit_service.record(
            conn,
            program.id,
            "member.erased",
            subject_type="member",
            subject_id=member_id,
            now=now,
            before={"status": before.status},
            after={
                "status": "erased",
                "reason": reason,
                "messages_blanked": messages,
                "support_rows_blanked": rows,
            },
        )
        return Erasure(member_id, False, messages, rows)


erasure_service = ErasureService()
