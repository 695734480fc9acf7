"""What the member's tier and waiting benefits do for one purchase at the till: the tier's
discount on the check, free delivery, free samples and the personal boost the rules used.

The quote answers the same as the purchase would; the purchase also marks the waiting
benefits it used ``used`` (by the purchase's id) in its own unit of work — the member is
locked, so a concurrent purchase of theirs reads them used — and takes them off the
batch's list, so a later purchase of the same batch does not use them again.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from kopilka.benefits.domain import Perks, at_till
from kopilka.benefits.service import benefit_service, tier_benefits
from kopilka.earning.service import RulesPipeline
from kopilka.earning.state import Granted
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from kopilka.rules.domain import BoostUsed, EarnEffect, Evaluation


def boosts_used(evaluation: Evaluation) -> dict[str, int]:
    """Boost id → the extra points it gave (the engine puts the extra right before the
    use; a boost on a purchase that earned nothing is used for 0)."""
    used: dict[str, int] = {}
    effects = evaluation.effects
    for index, effect in enumerate(effects):
        if isinstance(effect, BoostUsed):
            before = effects[index - 1] if index > 0 else None
            extra = (
                before.amount
                if isinstance(before, EarnEffect) and before.rule_id == effect.rule_id
                else 0
            )
            used[effect.boost_id] = extra
    return used


def perks_for(
    program: ProgramContext,
    pipeline: RulesPipeline,
    member_id: UUID,
    evaluation: Evaluation,
    granted: list[Granted],
    base: int,
    at: datetime,
) -> Perks:
    """The perks of a purchase just evaluated for ``member_id`` (their tier as the rules saw
    it: before this purchase's own upgrade). ``base`` is what is left to pay after coupons
    and points: the tier's discount is a share of it."""
    tier = pipeline.state.member(member_id).tier
    waiting = pipeline.state.waiting.get(member_id, [])
    instant = any(g.kind == "free_delivery" for g in granted)
    return at_till(
        tier,
        tier_benefits(program, tier),
        waiting,
        base,
        boosts_used(evaluation),
        instant,
        at,
    )


def record_use(
    pipeline: RulesPipeline, uow: UnitOfWork, member_id: UUID, perks: Perks, purchase_id: UUID
) -> None:
    """Mark the benefits the purchase used (boosts are marked by the rules' state)."""
    used = {str(i) for i in perks.used} | {
        a["id"] for a in perks.applied if a["kind"] == "boost" and a["id"]
    }
    if perks.used:
        benefit_service.stage_used(uow, perks.used, uow.now, str(purchase_id))
    waiting = pipeline.state.waiting.get(member_id)
    if waiting:
        waiting[:] = [w for w in waiting if str(w.id) not in used]


def perks_answer(perks: Perks) -> dict[str, Any]:
    """The purchase answer's fields of the perks."""
    return {
        "applied_benefits": perks.applied,
        "discount": perks.discount.answer() if perks.discount else None,
        "free_delivery": perks.free_delivery,
    }
