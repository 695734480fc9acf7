"""Members' benefits: one list of what rules, journeys and staff gave a member, the service
other features call to grant a personal offer, and what a member's benefits and tier do at
the till and in the shop. Never commits.

Granting is idempotent by the grant's key (unique per program and member). Benefits the
till uses are read after the member's lock and marked used with the purchase, so two
concurrent purchases never use one benefit twice.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits import domain
from kopilka.benefits.domain import OFFER_KINDS, TILL_KINDS, Offer, Status, Waiting
from kopilka.benefits.repository import BenefitRecord, BenefitRepository, benefit_repository
from kopilka.benefits.schemas import BenefitItem, BenefitPage, TierBenefitsOut
from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.kit.pagination import encode_cursor
from kopilka.members.service import MemberService, member_service
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.ladder import TierBenefits
from kopilka.programs.service import ProgramContext
from kopilka.tiers.service import TierService, tier_service


def item_out(record: BenefitRecord) -> BenefitItem:
    cause = {"type": record.cause_type, "id": record.cause_id} if record.grant_key is None else None
    return BenefitItem(
        id=record.id,
        kind=record.kind,
        title=record.title,
        payload=record.payload,
        source=record.source,
        source_key=record.source_key,
        cause=cause,
        issued_at=record.issued_at,
        expires_at=record.expires_at,
        status=record.status,
        used_at=record.used_at,
        used_by=record.used_by,
    )


def tier_benefits(program: ProgramContext, tier: str | None) -> TierBenefits | None:
    """What ``tier`` gives in the program's ladder (None without a ladder or a tier)."""
    ladder = program.settings.tiers
    if ladder is None or tier is None:
        return None
    for level in ladder.levels:
        if level.id == tier:
            return level.benefits
    return ladder.levels[0].benefits


class BenefitService:
    def __init__(
        self,
        repository: BenefitRepository = benefit_repository,
        members: MemberService = member_service,
        tiers: TierService = tier_service,
    ) -> None:
        self.repository = repository
        self.members = members
        self.tiers = tiers

    async def _require_member(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> None:
        if member_id not in await self.members.statuses(conn, program, [member_id]):
            raise NotFound(f"member {member_id} not found", field="member_id")

    # --- the member's list -----------------------------------------------------------------

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        now: datetime,
        *,
        status: Status | None = None,
        limit: int = 50,
        before: tuple[datetime, UUID] | None = None,
    ) -> BenefitPage:
        """The member's benefits (of ``status`` now), newest first, and their tier's."""
        await self._require_member(conn, program, member_id)
        records = await self.repository.page(
            conn, program.id, member_id, now, status=status, limit=limit, before=before
        )
        last = records[-1] if len(records) == limit else None
        tier = await self.tiers.current_tier(conn, program, member_id, now)
        given = tier_benefits(program, tier)
        tier_out = (
            TierBenefitsOut(
                tier=tier,
                discount_percent=given.discount_percent,
                free_delivery=given.free_delivery,
                early_access=given.early_access,
                exclusive_rewards=list(given.exclusive_rewards),
                events=list(given.events),
            )
            if given is not None and tier is not None
            else None
        )
        return BenefitPage(
            items=[item_out(r) for r in records],
            next_cursor=encode_cursor(last.issued_at, last.id) if last else None,
            tier=tier_out,
        )

    async def get(
        self, conn: AsyncConnection, program: ProgramContext, benefit_id: UUID, now: datetime
    ) -> BenefitItem:
        found = await self.repository.get(conn, program.id, benefit_id, now)
        if found is None:
            raise NotFound(f"benefit {benefit_id} not found", field="benefit_id")
        return item_out(found)

    async def offers(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> list[Offer]:
        """The member's personal offers still to use now (not used, not expired): boosts,
        free samples, free deliveries and rewards (at a personal price or not), ending
        soonest first. A rule's offer is titled and described by the rule; a grant by its
        own title."""
        rules = {rule.id: rule for rule in program.settings.rules}
        records = await self.repository.live_of_kinds(conn, program.id, member_id, OFFER_KINDS, now)
        offers = []
        for record in records:
            rule = rules.get(record.rule_id) if record.source == "rule" else None
            offers.append(
                Offer(
                    id=record.id,
                    kind=record.kind,
                    title=record.title or (rule.name if rule is not None else None),
                    description=rule.description if rule is not None else None,
                    payload=record.payload,
                    source=record.source,
                    issued_at=record.issued_at,
                    expires_at=record.expires_at,
                )
            )
        return offers

    # --- granting ---------------------------------------------------------------------------

    async def grant(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        kind: str,
        payload: Mapping[str, Any],
        source: tuple[str, str],
        grant_key: str,
        now: datetime,
        expires_at: datetime | None = None,
        title: str | None = None,
    ) -> BenefitItem:
        """Give the member a personal offer: ``kind`` (boost, free_sample, free_delivery,
        reward) with its ``payload``, from ``source`` (``("journey", "winback")``), until
        ``expires_at``. Idempotent by ``grant_key`` (unique per member): the same key again
        answers the first grant; the same key with another kind or payload is a conflict."""
        checked = domain.checked_payload(kind, payload)
        source_type, source_key = source
        if not source_type.isidentifier() or not source_key or ":" in source_type:
            raise InvalidInput("source must be (feature, key)", field="source")
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at must be in the future", field="expires_at")
        await self._require_member(conn, program, member_id)
        found = await self.repository.by_grant_key(conn, program.id, member_id, grant_key, now)
        if found is not None:
            if found.kind != kind or found.payload != checked:
                raise Conflict(
                    f"grant_key {grant_key!r} was used for another benefit", field="grant_key"
                )
            return item_out(found)
        row = {
            "id": new_id(),
            "program_id": program.id,
            "member_id": member_id,
            # A grant's origin, in the column rules keep their id in (see domain.origin).
            "rule_id": f"{source_type}:{source_key}"[:100],
            "program_version": program.version,
            "kind": kind,
            "payload": checked,
            "status": "active",
            "source_type": source_type,
            "source_id": source_key[:200],
            "issued_at": now,
            "expires_at": expires_at,
            "used_at": None,
            "used_by": None,
            "grant_key": grant_key,
            "title": title,
        }
        await self.repository.insert(conn, row)
        created = await self.repository.by_grant_key(conn, program.id, member_id, grant_key, now)
        assert created is not None
        return item_out(created)

    # --- the till ---------------------------------------------------------------------------

    async def waiting(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_ids: Sequence[UUID],
        now: datetime,
    ) -> dict[UUID, list[Waiting]]:
        """The members' live benefits the till uses (boosts, free samples, free delivery).
        Call it after the members' lock."""
        if not member_ids:
            return {}
        found: dict[UUID, list[Waiting]] = {}
        rows = await self.repository.waiting(conn, program_id, member_ids, TILL_KINDS, now)
        for member_id, item in rows:
            found.setdefault(member_id, []).append(item)
        return found

    def stage_used(
        self, uow: UnitOfWork, ids: Sequence[UUID], used_at: datetime, used_by: str
    ) -> None:
        """Mark benefits used by the purchase ``used_by`` (written with it)."""
        self.repository.stage_used(
            uow,
            [{"id": i, "status": "used", "used_at": used_at, "used_by": used_by} for i in ids],
        )

    # --- the shop ---------------------------------------------------------------------------

    async def reward_offers(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> dict[str, tuple[UUID, int | None]]:
        """The member's live ``reward`` offers by reward key (the soonest-ending of each):
        its id and personal price (None: the member's usual price)."""
        offers: dict[str, tuple[UUID, int | None]] = {}
        for record in await self.repository.live_of_kind(
            conn, program.id, member_id, "reward", now
        ):
            key, price = record.payload.get("reward"), record.payload.get("price")
            if isinstance(key, str) and key not in offers:
                offers[key] = (record.id, price if type(price) is int else None)
        return offers

    async def use(
        self, conn: AsyncConnection, benefit_id: UUID, now: datetime, used_by: str
    ) -> bool:
        """Mark a benefit used by ``used_by`` at once (call under the member's lock)."""
        return await self.repository.use(conn, benefit_id, now, used_by)


benefit_service = BenefitService()
