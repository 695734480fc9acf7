"""Coupon campaigns and codes: create, generate, issue, validate, redeem, give back.

Never commits. Redeeming happens inside a purchase: the purchase path locks the member
first, then :meth:`CouponService.redeem` takes each code's use with a conditional update.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons import domain
from kopilka.coupons.domain import Code, Decision, Line, Presented, personal_code_row
from kopilka.coupons.repository import (
    CouponRepository,
    coupon_repository,
)
from kopilka.coupons.schemas import (
    CampaignCreate,
    CampaignUpdate,
    CodesCreate,
    ValidateRequest,
)
from kopilka.errors import Conflict, InvalidInput, NotFound
from kopilka.kit.clock import as_utc, clock
from kopilka.kit.codes import check_pattern, generate_codes, is_code, normalise_code
from kopilka.kit.ids import new_id
from kopilka.members.service import MemberService, member_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.rules.basket import PurchaseLineIn

# Codes handed back in one answer; a larger batch is read page by page.
CODES_IN_ANSWER = 1000


@dataclass(frozen=True)
class IssuedCode:
    """A personal code just issued to a member."""

    id: UUID
    code: str
    campaign: str
    expires_at: datetime | None


def basket_lines(lines: Sequence[PurchaseLineIn]) -> list[Line]:
    return [
        Line(line.sku, line.category, line.quantity, line.unit_price, line.amount) for line in lines
    ]


class CouponService:
    def __init__(
        self,
        repository: CouponRepository = coupon_repository,
        members: MemberService = member_service,
    ) -> None:
        self.repository = repository
        self.members = members

    # --- campaigns -----------------------------------------------------------------------

    async def create_campaign(
        self, conn: AsyncConnection, program: ProgramContext, body: CampaignCreate, now: datetime
    ) -> dict[str, Any]:
        check_pattern(body.code_pattern, field="code_pattern")
        if await self.repository.campaign(conn, program.id, body.key) is not None:
            raise Conflict(f"campaign {body.key!r} exists", field="key")
        discount = body.discount
        row = {
            "id": new_id(),
            "program_id": program.id,
            "key": body.key,
            "name": body.name,
            "description": body.description,
            "discount_kind": discount.kind,
            "discount_value": discount.value,
            "max_discount": discount.max_discount,
            "free_sku": discount.free_sku,
            "min_basket": body.min_basket,
            "categories": body.categories,
            "skus": body.skus,
            "valid_from": body.valid_from,
            "valid_until": body.valid_until,
            "uses_per_code": body.uses_per_code,
            "per_member_limit": body.per_member_limit,
            "total_limit": body.total_limit,
            "redeemed_count": 0,
            "stackable": body.stackable,
            "give_back_on_return": body.give_back_on_return,
            "code_pattern": body.code_pattern,
            "valid_days": body.valid_days,
            "status": body.status,
            "attributes": body.attributes,
            "created_at": now,
            "updated_at": now,
        }
        await self.repository.insert_campaign(conn, row)
        return await self.campaign(conn, program, body.key)

    async def update_campaign(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        body: CampaignUpdate,
        now: datetime,
    ) -> dict[str, Any]:
        row = await self._campaign_row(conn, program, key, lock=True)
        values = body.model_dump(exclude_unset=True)
        start = values.get("valid_from", row.valid_from)
        end = values.get("valid_until", row.valid_until)
        if start is not None and end is not None and as_utc(end) <= as_utc(start):
            raise InvalidInput("valid_until must be after valid_from", field="valid_until")
        if values.get("total_limit") is not None:
            # Uses are counted on the campaign row only while it has a limit: a limit set on
            # a running campaign starts from the uses recorded so far.
            _, used = (await self.repository.campaign_counts(conn, [row.id]))[row.id]
            values["redeemed_count"] = used
        await self.repository.update_campaign(conn, row.id, {**values, "updated_at": now})
        return await self.campaign(conn, program, key)

    async def campaign(
        self, conn: AsyncConnection, program: ProgramContext, key: str
    ) -> dict[str, Any]:
        row = await self._campaign_row(conn, program, key)
        counts = await self.repository.campaign_counts(conn, [row.id])
        return campaign_out(row, *counts[row.id])

    async def campaigns(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> list[dict[str, Any]]:
        rows = await self.repository.campaigns(conn, program.id)
        counts = await self.repository.campaign_counts(conn, [r.id for r in rows])
        return [campaign_out(row, *counts[row.id]) for row in rows]

    async def _campaign_row(
        self, conn: AsyncConnection, program: ProgramContext, key: str, *, lock: bool = False
    ) -> Any:
        row = await self.repository.campaign(conn, program.id, key, lock=lock)
        if row is None:
            raise NotFound(f"no coupon campaign {key!r}", field="campaign")
        return row

    # --- codes ---------------------------------------------------------------------------

    async def add_codes(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        body: CodesCreate,
        now: datetime,
        *,
        answer_limit: int | None = CODES_IN_ANSWER,
    ) -> dict[str, Any]:
        """Generate or import codes; all or nothing. The answer lists the first
        ``answer_limit`` new codes (None: all of them)."""
        campaign = await self._campaign_row(conn, program, key)
        members: list[UUID | None] = [None] * (body.count or len(body.codes or []))
        if body.members is not None:
            found = await self.members.resolve_many(conn, program, body.members)
            for index, member in enumerate(found):
                if member is None:
                    raise NotFound("no such member", field=f"members.{index}")
                members[index] = member[0]
        if body.codes is not None:
            texts = await self._imported(conn, program, body.codes)
        else:
            assert body.count is not None
            texts = await self._generated(conn, program, campaign, body)
        rows = [
            {
                "id": new_id(),
                "program_id": program.id,
                "campaign_id": campaign.id,
                "code": text,
                "member_id": member,
                "max_uses": body.max_uses or campaign.uses_per_code,
                "uses": 0,
                "status": "active",
                "valid_until": body.valid_until,
                "source_type": "import" if body.codes is not None else "generated",
                "source_id": None,
                "issued_at": now,
            }
            for text, member in zip(texts, members, strict=True)
        ]
        await self.repository.insert_codes(conn, rows)
        return {"campaign": key, "created": len(rows), "codes": texts[:answer_limit]}

    async def _imported(
        self, conn: AsyncConnection, program: ProgramContext, codes: Sequence[str]
    ) -> list[str]:
        texts = [normalise_code(c) for c in codes]
        for index, text in enumerate(texts):
            if not is_code(text):
                raise InvalidInput(
                    "a code is made of letters, digits, '.', '_' and '-'", field=f"codes.{index}"
                )
        if len(set(texts)) != len(texts):
            repeated = sorted({t for t in texts if texts.count(t) > 1})[:5]
            raise InvalidInput(f"codes repeat: {repeated}", field="codes")
        taken = await self.repository.existing_codes(conn, program.id, texts)
        if taken:
            raise Conflict(f"codes already exist: {sorted(taken)[:5]}", field="codes")
        return texts

    async def _generated(
        self, conn: AsyncConnection, program: ProgramContext, campaign: Any, body: CodesCreate
    ) -> list[str]:
        assert body.count is not None
        pattern = body.pattern or campaign.code_pattern
        charset = body.charset
        in_use = await self.repository.count_matching(conn, program.id, pattern)
        texts = generate_codes(pattern, body.count, charset=charset, in_use=in_use)
        # Codes of other campaigns or earlier batches may share the pattern: draw again for
        # the few that clash (almost always none).
        taken = await self.repository.existing_codes(conn, program.id, texts)
        while taken:
            keep = [t for t in texts if t not in taken]
            more = generate_codes(
                pattern, len(taken), charset=charset, taken=set(texts), in_use=in_use
            )
            clash = await self.repository.existing_codes(conn, program.id, more)
            texts = keep + [t for t in more if t not in clash]
            taken = set(more) & clash
        return texts

    async def issue_code(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        campaign_key: str,
        *,
        member_id: UUID,
        now: datetime,
        source: tuple[str, str] | None = None,
        valid_days: int | None = None,
    ) -> IssuedCode:
        """A new personal code of an active campaign for ``member_id``."""
        campaign = await self._campaign_row(conn, program, campaign_key)
        if campaign.status != "active":
            raise Conflict(
                f"coupon campaign {campaign_key!r} is {campaign.status}", field="campaign"
            )
        row = personal_code_row(campaign, program.id, member_id, now, source, valid_days)
        async with unit_of_work(conn, now) as uow:
            self.repository.stage_codes(uow, [row])
            uow.emit(_issued_event(campaign_key, row))
        return IssuedCode(row["id"], row["code"], campaign_key, row["valid_until"])

    def stage_personal_code(
        self,
        uow: UnitOfWork,
        campaign: Any,
        program_id: UUID,
        member_id: UUID,
        now: datetime,
        source: tuple[str, str] | None,
        valid_days: int | None,
    ) -> IssuedCode:
        """A new personal code of ``campaign`` (an active campaign's row) written with the
        unit of work, with its ``coupon.issued`` event (the rules' coupon effect)."""
        row = personal_code_row(campaign, program_id, member_id, now, source, valid_days)
        self.repository.stage_codes(uow, [row])
        uow.emit(_issued_event(campaign.key, row))
        return IssuedCode(row["id"], row["code"], campaign.key, row["valid_until"])

    async def campaigns_by_keys(
        self, conn: AsyncConnection, program_id: UUID, keys: Sequence[str]
    ) -> dict[str, Any]:
        """Campaign rows by key (those that exist)."""
        found = await self.repository.campaigns_by_keys(conn, program_id, list(keys))
        return {row.key: row for row in found}

    async def code(self, conn: AsyncConnection, program: ProgramContext, text: str) -> Any:
        found = await self.repository.codes_by_text(conn, program.id, [normalise_code(text)])
        row = next(iter(found.values()), None)
        if row is None:
            raise NotFound("no such code", field="code")
        return row

    async def code_out(
        self, conn: AsyncConnection, program: ProgramContext, text: str
    ) -> dict[str, Any]:
        row = await self.code(conn, program, text)
        campaigns = await self.repository.campaigns_by_ids(conn, [row.campaign_id])
        return code_out(row, campaigns[0].key)

    async def set_code_status(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        text: str,
        status: str,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        row = await self.code(conn, program, text)
        await self.repository.set_code_status(conn, row.id, status)
        answer = await self.code_out(conn, program, text)
        if row.status != status:
            at = now or clock.now()
            async with unit_of_work(conn, at) as uow:
                uow.emit(
                    events.CouponCodeChanged(
                        program_id=program.id,
                        member_id=row.member_id,
                        occurred_at=at,
                        campaign=str(answer["campaign"]),
                        code=row.code,
                        status=status,
                        previous_status=row.status,
                    )
                )
        return answer

    async def codes_page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        campaign_key: str | None = None,
        member_id: UUID | None = None,
        limit: int,
        after: tuple[datetime, UUID] | None,
    ) -> list[dict[str, Any]]:
        campaign_id = None
        if campaign_key is not None:
            campaign_id = (await self._campaign_row(conn, program, campaign_key)).id
        rows = await self.repository.code_page(
            conn, program.id, campaign_id=campaign_id, member_id=member_id, limit=limit, after=after
        )
        return [code_out(row, row.campaign_key) for row in rows]

    # --- validating and redeeming --------------------------------------------------------

    async def decide(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        texts: Sequence[str],
        member_id: UUID | None,
        lines: Sequence[Line],
        total: int,
        now: datetime,
    ) -> list[Decision]:
        """What each presented code would do to this basket now (reads only)."""
        normalised = [normalise_code(t) for t in texts]
        found = await self.repository.codes_with_campaigns(conn, program.id, normalised)
        campaigns = {code.campaign_id: terms for code, terms in found.values()}
        limited = [c for c, t in campaigns.items() if t.per_member_limit is not None]
        uses = (
            await self.repository.member_uses(conn, member_id, limited)
            if member_id is not None and limited
            else {}
        )
        presented = []
        for text in normalised:
            code, terms = found.get(text, (None, None))
            member_uses = uses.get(terms.id, 0) if terms is not None else 0
            presented.append(Presented(text, code, terms, member_uses))
        return domain.apply_codes(presented, lines, total, member_id, now)

    async def validate(
        self, conn: AsyncConnection, program: ProgramContext, body: ValidateRequest, now: datetime
    ) -> dict[str, Any]:
        member_id = None
        if body.member is not None:
            member_id, _ = await self.members.resolve(conn, program, body.member)
        decisions = await self.decide(
            conn,
            program,
            body.codes,
            member_id,
            basket_lines(body.lines),
            body.total,
            body.occurred_at or now,
        )
        discount = sum(d.discount for d in decisions if d.accepted)
        return {
            "valid": all(d.accepted for d in decisions),
            "codes": [decision_out(d) for d in decisions],
            "discount": discount,
            "total_after_discount": body.total - discount,
        }

    async def redeem(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        decisions: Sequence[Decision],
        *,
        member_id: UUID,
        purchase_id: UUID,
        now: datetime,
        uow: UnitOfWork | None = None,
    ) -> None:
        """Take one use of every accepted code for a purchase (the member is locked by the
        caller). A use lost to a concurrent till is a 409. When more than one conditional
        update could fail, they run in a savepoint, so a refused purchase keeps no use.
        Each use's ``coupon.redeemed`` event goes into ``uow``."""
        updates = sum(
            1 + (d.terms is not None and d.terms.total_limit is not None) for d in decisions
        )
        if updates > 1:
            async with conn.begin_nested():
                await self._take_uses(conn, program, decisions, member_id, purchase_id, now)
        else:
            # A single conditional update that fails has changed nothing.
            await self._take_uses(conn, program, decisions, member_id, purchase_id, now)
        if uow is not None:
            uow.emit(
                *(
                    events.CouponRedeemed(
                        program_id=program.id,
                        member_id=member_id,
                        occurred_at=now,
                        campaign=d.terms.key if d.terms else "",
                        code=_code(d).code,
                        discount=d.discount,
                        purchase_id=purchase_id,
                    )
                    for d in decisions
                    if d.accepted
                )
            )

    async def _take_uses(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        decisions: Sequence[Decision],
        member_id: UUID,
        purchase_id: UUID,
        now: datetime,
    ) -> None:
        # Rows are taken in one order (codes by id, then campaigns by id) whatever order
        # the till presented them in, so two tills never wait on each other in a circle.
        indexed = sorted(enumerate(decisions), key=lambda pair: str(_code(pair[1]).id))
        per_campaign: dict[UUID, tuple[int, str, int]] = {}
        rows = []
        for index, decision in indexed:
            code, terms = _code(decision), decision.terms
            assert decision.accepted and terms is not None
            if not await self.repository.take_code_use(conn, code.id):
                raise Conflict(
                    f"code {code.code} was just used up",
                    field=f"coupon_codes.{index}",
                    reason="used_up",
                )
            if terms.total_limit is not None:
                uses, _, first = per_campaign.get(terms.id, (0, terms.key, index))
                per_campaign[terms.id] = (uses + 1, terms.key, min(first, index))
            rows.append(
                {
                    "id": new_id(),
                    "program_id": program.id,
                    "code_id": code.id,
                    "campaign_id": terms.id,
                    "member_id": member_id,
                    "purchase_id": purchase_id,
                    "discount": decision.discount,
                    "status": "applied",
                    "created_at": now,
                    "returned_at": None,
                }
            )
        for campaign_id in sorted(per_campaign, key=str):
            uses, campaign_key, index = per_campaign[campaign_id]
            if not await self.repository.take_campaign_uses(conn, campaign_id, uses):
                raise Conflict(
                    f"campaign {campaign_key} was just used up",
                    field=f"coupon_codes.{index}",
                    reason="campaign_limit",
                )
        await self.repository.insert_uses(conn, rows)

    async def give_back(self, conn: AsyncConnection, purchase_id: UUID, now: datetime) -> list[str]:
        """Hand back the uses a purchase took of codes whose campaign gives them back on a
        return (the purchase has just been returned in full); returns those codes."""
        uses = await self.repository.uses_of_purchase(conn, purchase_id)
        back = [u for u in uses if u.give_back_on_return]
        for use in back:
            await self.repository.give_back_code_use(conn, use.code_id)
            if use.total_limit is not None:  # counted on the campaign only under a limit
                await self.repository.give_back_campaign_use(conn, use.campaign_id)
        await self.repository.mark_given_back(conn, [u.id for u in back], now)
        return [u.code for u in back]


def _issued_event(campaign_key: str, row: dict[str, Any]) -> events.CouponIssued:
    return events.CouponIssued(
        program_id=row["program_id"],
        member_id=row["member_id"],
        occurred_at=row["issued_at"],
        campaign=campaign_key,
        code=row["code"],
        valid_until=row["valid_until"],
        source_type=row["source_type"],
        source_id=row["source_id"],
    )


def campaign_out(row: Any, codes: int, redeemed: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "name": row.name,
        "description": row.description,
        "discount": {
            "kind": row.discount_kind,
            "value": row.discount_value,
            "max_discount": row.max_discount,
            "free_sku": row.free_sku,
        },
        "min_basket": row.min_basket,
        "categories": row.categories,
        "skus": row.skus,
        "valid_from": as_utc(row.valid_from) if row.valid_from else None,
        "valid_until": as_utc(row.valid_until) if row.valid_until else None,
        "uses_per_code": row.uses_per_code,
        "per_member_limit": row.per_member_limit,
        "total_limit": row.total_limit,
        "stackable": row.stackable,
        "give_back_on_return": row.give_back_on_return,
        "code_pattern": row.code_pattern,
        "valid_days": row.valid_days,
        "status": row.status,
        "attributes": row.attributes,
        "redeemed": redeemed,
        "codes": codes,
        "created_at": as_utc(row.created_at),
        "updated_at": as_utc(row.updated_at),
    }


def code_out(row: Any, campaign_key: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "code": row.code,
        "campaign": campaign_key,
        "member_id": row.member_id,
        "uses": row.uses,
        "max_uses": row.max_uses,
        "status": row.status,
        "valid_until": as_utc(row.valid_until) if row.valid_until else None,
        "issued_at": as_utc(row.issued_at),
        "qr_svg_url": f"/v1/coupons/{row.code}/qr.svg",
    }


def decision_out(decision: Decision) -> dict[str, Any]:
    terms = decision.terms
    return {
        "code": decision.code.code if decision.code else decision.text,
        "valid": decision.accepted,
        "reason": decision.reason,
        "message": decision.message,
        "campaign": terms.key if terms else None,
        "kind": terms.kind if terms else None,
        "discount": decision.discount,
        "free_delivery": decision.free_delivery,
        "free_sku": terms.free_sku if terms and terms.kind == "free_product" else None,
    }


def _code(decision: Decision) -> Code:
    assert decision.code is not None
    return decision.code


coupon_service = CouponService()
