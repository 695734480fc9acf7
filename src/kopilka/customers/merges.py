"""Merging two profiles of one person: everything the merged profile holds becomes the
survivor's, in one transaction, each part by the feature that owns it. Never commits.

- identifiers move (a phone or e-mail the survivor has of its own frees the other's);
- points move through the ledger, lot by lot with their expiry (``ledger.merges``), so the
  books verify after a merge as before;
- purchases with their lines and returns, coupons, reward redemptions, the rules'
  benefits, gift cards and the wallet, push subscriptions, interactions, tickets and
  survey answers move;
- the higher tier stays; for each consent the stricter decision stays;
- the merged id keeps answering, with status ``merged`` and a pointer to the survivor, and
  a till that sends it reaches the survivor.
"""

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.coupons import merges as coupon_merges
from kopilka.earning import merges as benefit_merges
from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.giftcards import merges as gift_card_merges
from kopilka.ledger.merges import ledger_merge
from kopilka.members.person import person_service
from kopilka.members.schemas import Member
from kopilka.members.service import member_service
from kopilka.messaging import merges as subscription_merges
from kopilka.messaging.consents import consent_service
from kopilka.outbox.crm_events import MemberMerged
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.purchases.history import purchase_history
from kopilka.rewards import merges as reward_merges
from kopilka.support import service as support
from kopilka.tiers.merges import keep_the_higher


@dataclass(frozen=True)
class MergeResult:
    survivor: Member
    merged_id: UUID
    already_merged: bool = False
    points_moved: dict[str, int] = field(default_factory=dict)
    purchases_moved: int = 0
    moved: dict[str, int] = field(default_factory=dict)  # other rows, per kind
    consents_changed: list[str] = field(default_factory=list)
    tier_taken: str | None = None


class MergeService:
    async def merge(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        survivor: UUID,
        merged: UUID,
        reason: str,
        now: datetime,
    ) -> MergeResult:
        """Merge ``merged`` into ``survivor``. Merging again what is merged already
        answers the same survivor and moves nothing (a retry is safe)."""
        if survivor == merged:
            raise InvalidInput("a member cannot be merged into itself", field="merged")
        statuses = await member_service.statuses(conn, program, [survivor, merged])
        for member_id, name in ((survivor, "member_id"), (merged, "merged")):
            if member_id not in statuses:
                raise NotFound(f"member {member_id} not found", field=name)
        await member_service.lock(conn, program, [survivor, merged])
        gone = await member_service.get(conn, program, merged)
        if gone.status == "merged" and gone.merged_into == survivor:
            audit_service.nothing_changed()
            return MergeResult(
                await member_service.get(conn, program, survivor), merged, already_merged=True
            )
        for member_id, status in statuses.items():
            if status in ("merged", "erased"):
                raise Conflict(f"member {member_id} is {status}", field="merged")
        points = await ledger_merge.move_everything(conn, program, merged, survivor, now)
        purchases = await purchase_history.reassign_member(conn, program, merged, survivor)
        moved = {
            "coupons": await coupon_merges.reassign_member(conn, program, merged, survivor),
            "reward_redemptions": await reward_merges.reassign_member(
                conn, program, merged, survivor
            ),
            "benefits": await benefit_merges.reassign_member(conn, program, merged, survivor),
            "gift_cards": await gift_card_merges.reassign_member(conn, program, merged, survivor),
            "push_subscriptions": await subscription_merges.reassign_member(
                conn, program, merged, survivor
            ),
            "support": await support.reassign_member(conn, program, merged, survivor),
        }
        consents = await consent_service.merge_into(conn, program, merged, survivor, now)
        tier = await keep_the_higher(conn, program, merged, survivor, now)
        keep, gone = await person_service.merge_profile(conn, program, survivor, merged, now)
        result = MergeResult(
            await member_service.get(conn, program, survivor),
            merged,
            points_moved=points,
            purchases_moved=purchases,
            moved={k: v for k, v in moved.items() if v},
            consents_changed=consents,
            tier_taken=tier,
        )
        async with unit_of_work(conn, now) as unit:
            unit.emit(
                MemberMerged(
                    program_id=program.id,
                    member_id=survivor,
                    occurred_at=now,
                    merged_id=merged,
                    points_moved=points,
                    purchases_moved=purchases,
                    tier=tier,
                )
            )
        await audit_service.record(
            conn,
            program.id,
            "member.merged",
            subject_type="member",
            subject_id=survivor,
            now=now,
            before={
                "survivor": keep.model_dump(mode="json"),
                "merged": gone.model_dump(mode="json"),
                "reason": reason,
            },
            after={
                "survivor": result.survivor.model_dump(mode="json"),
                "points_moved": points,
                "purchases_moved": purchases,
                "moved": result.moved,
                "consents_changed": consents,
                "tier_taken": tier,
            },
        )
        return result


merge_service = MergeService()
