"""What the member's 360° page shows, read block by block through the services the API's
routes use (profile, balance and lots, tier, timeline, coupons, reward redemptions, gift
cards, tickets, consents, segments, facts, likely duplicates), in one reading
transaction."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.coupons.schemas import CodeOut
from kopilka.coupons.service import coupon_service
from kopilka.crm.schemas import MemberFacts
from kopilka.crm.service import crm_service
from kopilka.customers.domain import Cursor, ItemType, TimelineItem
from kopilka.customers.service import customer_service
from kopilka.giftcards.schemas import GiftCardOut
from kopilka.giftcards.service import gift_card_service
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_tagged_cursor, encode_tagged_cursor
from kopilka.ledger.domain import Balance, Lot
from kopilka.ledger.service import ledger_service
from kopilka.members.schemas import DuplicateMember, Member
from kopilka.members.search import member_search
from kopilka.members.service import member_service
from kopilka.messaging.consents import consent_service
from kopilka.messaging.schemas import ConsentRecordOut, ConsentState
from kopilka.programs.service import ProgramContext
from kopilka.rewards.redemptions import redemption_service
from kopilka.rewards.schemas import RewardRedemption
from kopilka.segments.schemas import MemberSegment
from kopilka.segments.service import segment_service
from kopilka.support.member_tickets import member_tickets
from kopilka.support.schemas import MemberTicket
from kopilka.tiers.schemas import MemberTierOut
from kopilka.tiers.service import tier_service

TIMELINE_PAGE = 25
BLOCK_ROWS = 20  # coupons, redemptions, gift cards and tickets shown on the page
CONSENT_HISTORY_ROWS = 10


@dataclass(frozen=True)
class TimelineAsked:
    """The timeline's filter (kinds; none: every kind) and the page after ``cursor``."""

    types: list[ItemType]
    cursor: str | None = None

    def after(self) -> Cursor | None:
        return Cursor(*decode_tagged_cursor(self.cursor)) if self.cursor else None


@dataclass(frozen=True)
class MemberView:
    profile: Member
    balances: dict[str, Balance]
    lots: list[tuple[str, Lot]]
    expiring: list[tuple[str, int, datetime]]
    tier: MemberTierOut | None  # None without a tier ladder
    timeline: list[TimelineItem]
    timeline_next: str | None  # the cursor of the timeline's next page
    coupons: list[CodeOut]
    redemptions: list[RewardRedemption]
    gift_cards: list[GiftCardOut]
    tickets: list[MemberTicket]
    consents: list[ConsentState]
    consent_history: list[ConsentRecordOut]
    segments: list[MemberSegment] | None  # None: the reader may not see segments
    facts: MemberFacts
    duplicates: list[tuple[str, DuplicateMember]]
    zone: str
    currencies: list[str]
    points_currency: str
    money_currency: str
    tier_levels: list[tuple[str, str]]  # (id, name) of the ladder's rungs


async def load_member_view(
    conn: AsyncConnection,
    program: ProgramContext,
    principal: Principal,
    member_id: UUID,
    asked: TimelineAsked,
) -> MemberView:
    """Every block of the member's page (404 for a member not of the program)."""
    now = clock.now()
    profile = await member_service.get(conn, program, member_id)
    timeline = await customer_service.timeline(
        conn,
        program,
        member_id,
        types=asked.types or None,
        cursor=asked.after(),
        limit=TIMELINE_PAGE,
        principal=principal,
    )
    last = timeline[-1] if len(timeline) == TIMELINE_PAGE else None
    consents, history = await consent_service.of(conn, program, member_id)
    ladder = program.settings.tiers
    return MemberView(
        profile=profile,
        balances=await ledger_service.balances(conn, program, member_id),
        lots=await ledger_service.lots_holding_points(conn, program, member_id),
        expiring=await ledger_service.next_expiring(conn, member_id),
        tier=await _tier(conn, program, member_id, now),
        timeline=timeline,
        timeline_next=encode_tagged_cursor(last.at, str(last.type), last.id) if last else None,
        coupons=[
            CodeOut.model_validate(c)
            for c in await coupon_service.codes_page(
                conn, program, member_id=member_id, limit=BLOCK_ROWS, after=None
            )
        ],
        redemptions=(
            await redemption_service.history(
                conn, program, member_id, limit=BLOCK_ROWS, before=None
            )
        ).items,
        gift_cards=await _gift_cards(conn, program, profile, now),
        tickets=(
            await member_tickets(
                conn, program, member_id, before=None, limit=BLOCK_ROWS, principal=principal
            )
        ).items,
        consents=[ConsentState.model_validate(v, from_attributes=True) for v in consents],
        consent_history=[
            ConsentRecordOut.model_validate(h, from_attributes=True)
            for h in history[:CONSENT_HISTORY_ROWS]
        ],
        segments=(
            (await segment_service.of_member(conn, program, member_id)).items
            if principal.can(P.SEGMENTS_READ)
            else None
        ),
        facts=await crm_service.facts(conn, program, member_id, now),
        duplicates=await member_search.duplicates_of(conn, program, member_id),
        zone=program.settings.timezone,
        currencies=program.settings.currency_codes(),
        points_currency=program.settings.points_currency(),
        money_currency=program.settings.money_currency,
        tier_levels=[(level.id, level.name) for level in ladder.levels] if ladder else [],
    )


async def _gift_cards(
    conn: AsyncConnection, program: ProgramContext, profile: Member, now: datetime
) -> list[GiftCardOut]:
    # The gift-card service knows only a person's profile: a merged profile's cards are
    # its survivor's, and an erased profile names no one (as the API answers for them).
    if profile.status not in ("active", "blocked"):
        return []
    cards = await gift_card_service.member_cards(
        conn, program, profile.id, limit=BLOCK_ROWS, before=None, now=now
    )
    return [GiftCardOut.model_validate(c) for c in cards]


async def _tier(
    conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
) -> MemberTierOut | None:
    if program.settings.tiers is None:
        return None
    found: dict[str, Any] = await tier_service.member_tier(conn, program, member_id, now)
    return MemberTierOut.model_validate(found)


def next_tier_share(tier: MemberTierOut | None) -> float | None:
    """How far the member is towards the next tier, from 0 to 1: the best of the
    requirements when any of them qualifies, the least when all of them must."""
    if tier is None or tier.next is None or not tier.next.requirements:
        return None
    shares = [
        min(r.current / r.threshold, 1.0) if r.threshold else 1.0 for r in tier.next.requirements
    ]
    return max(shares) if tier.next.match == "any" else min(shares)
