"""How the shop judges rewards for a member: a reward's terms, the member as the shop sees
them (tier, own tags, balance, offers), and the verdict on each reward — the one judgement
the catalog, a redemption and a message's ``affordable`` share. Pure but for reading nothing:
callers pass what they read."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from kopilka.benefits.service import tier_benefits
from kopilka.ledger.domain import Balance
from kopilka.programs.service import ProgramContext
from kopilka.rewards import domain
from kopilka.rewards.domain import Shopper, Terms, Verdict
from kopilka.rewards.schemas import Reward


def ladder_ids(program: ProgramContext) -> list[str]:
    ladder = program.settings.tiers
    return [level.id for level in ladder.levels] if ladder is not None else []


def terms_of(row: Any, codes_left: int | None = None) -> Terms:
    return Terms(
        key=row.key,
        kind=row.kind,
        status=row.status,
        currency=row.currency,
        price=row.price,
        tier_prices=dict(row.tier_prices or {}),
        stock=row.stock,
        available_from=row.available_from,
        available_until=row.available_until,
        min_tier=row.min_tier,
        per_member_limit=row.per_member_limit,
        codes_left=codes_left,
        exclusive_tag=row.exclusive_tag,
        early_access_days=row.early_access_days,
    )


def reward_out(
    row: Any,
    codes_left: int | None,
    verdict: Verdict | None = None,
    taken: int | None = None,
) -> Reward:
    data = dict(row._mapping) | {"codes_available": codes_left}
    if verdict is not None:
        data |= {
            "member_price": verdict.price,
            "can_redeem": verdict.can_redeem,
            "reason": verdict.reason.value if verdict.reason else None,
            "detail": verdict.detail,
            "member_redeemed": taken,
        }
    return Reward.model_validate(data)


def shopper(
    program: ProgramContext,
    status: str,
    tier: str | None,
    available: int,
    taken: int,
    offer: tuple[UUID, int | None] | None = None,
    tags: frozenset[str] = frozenset(),
) -> Shopper:
    """The member as the shop sees them: the exclusive tags their tier gives
    (``benefits.tier_benefits``) and their own tags (a journey's ``regular``), early access,
    and a personal offer's price for the reward."""
    given = tier_benefits(program, tier)
    return Shopper(
        status,
        tier,
        ladder_ids(program),
        available,
        taken,
        exclusive=(frozenset(given.exclusive_rewards) if given else frozenset()) | tags,
        early_access=bool(given and given.early_access),
        personal_price=offer[1] if offer is not None else None,
    )


@dataclass(frozen=True)
class MemberView:
    member_id: UUID
    status: str
    tier: str | None
    balances: dict[str, Balance]
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Judged:
    """A reward as one member sees it."""

    row: Any
    codes_left: int | None
    verdict: Verdict
    taken: int
    available: int

    @property
    def affordable(self) -> bool:
        return self.verdict.price <= self.available

    def out(self) -> Reward:
        return reward_out(self.row, self.codes_left, self.verdict, self.taken)


@dataclass(frozen=True)
class Affordable:
    """A reward a member can take now, at ``points`` (their price: tier or personal)."""

    key: str
    name: str
    points: int


def judge_rows(
    program: ProgramContext,
    rows: Sequence[Any],
    member: MemberView,
    codes: Mapping[UUID, int],
    taken: Mapping[UUID, int],
    offers: Mapping[str, tuple[UUID, int | None]],
    now: datetime,
) -> list[Judged]:
    """Each reward of ``rows`` as ``member`` sees it: the shop's one judgement (price,
    tier, exclusive tags, early access, personal offers, stock, limits, balance), given
    what was read of the pools (``codes``), the member's redemptions and offers."""
    judged = []
    for row in rows:
        available = member.balances.get(row.currency, Balance()).available
        count = taken.get(row.id, 0)
        seen_as = shopper(
            program,
            member.status,
            member.tier,
            available,
            count,
            offers.get(row.key),
            member.tags,
        )
        verdict = domain.judge(terms_of(row, codes.get(row.id)), seen_as, now)
        judged.append(Judged(row, codes.get(row.id), verdict, count, available))
    return judged
