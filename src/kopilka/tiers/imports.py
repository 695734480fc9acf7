"""Members brought over from another system keep the tier they had there."""

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.ids import new_id
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext
from kopilka.tiers import domain
from kopilka.tiers.domain import TierState
from kopilka.tiers.repository import TierRepository, tier_repository
from kopilka.tiers.service import ladder_of, zone_of


def seed_imported(
    uow: UnitOfWork,
    program: ProgramContext,
    tiers: Mapping[UUID, tuple[str, datetime]],
    now: datetime,
    repository: TierRepository = tier_repository,
) -> int:
    """Staged in ``uow``: the tier each new member (one with no tier state yet) had in
    the system the program moves from, ``tiers`` mapping member → (tier id, when they
    reached it), kept until the next regular review. Returns how many were seeded.

    A rung reached by qualifying becomes the earned tier, reached then, first reviewed
    on the ladder's first review date after ``now`` (a tier is never reviewed on the
    day it arrives); an invitation-only rung becomes a manual tier without end, as
    Kopilka gives those. The entry tier needs nothing. Each is one ``import`` line of
    the member's tier history; no ``tier.*`` event is emitted: the member arrives with
    the tier, nothing changed, and nobody is congratulated on it. An unknown tier is a
    422 naming ``tier``; a program without a ladder a 404 naming ``tiers``."""
    ladder = ladder_of(program)
    if ladder is None:
        raise NotFound("the program has no tier ladder", field="tiers")
    zone = zone_of(program)
    entry = ladder.levels[0].id
    today = domain.local_date(now, zone)
    states: dict[UUID, TierState] = {}
    for member_id, (tier, since) in tiers.items():
        rung = next((level for level in ladder.levels if level.id == tier), None)
        if rung is None:
            raise InvalidInput(f"no tier {tier!r} on the ladder", field="tier")
        if rung.id == entry:
            continue
        if rung.invitation_only:
            states[member_id] = TierState(
                tier=rung.id,
                earned=entry,
                manual_tier=rung.id,
                manual_reason="imported from the previous program",
            )
        else:
            review = domain.next_review(ladder, domain.local_date(since, zone))
            while review <= today:
                review = domain.next_review(ladder, review)
            states[member_id] = TierState(
                tier=rung.id, earned=rung.id, achieved_at=since, review_on=review
            )
        repository.stage_change(
            uow,
            {
                "id": new_id(),
                "program_id": program.id,
                "member_id": member_id,
                "from_tier": entry,
                "to_tier": rung.id,
                "reason": "import",
                "source": "import",
                "program_version": program.version,
                "at": since,
                "created_at": now,
            },
        )
    repository.stage_states(uow, program.id, states, set(), now)
    return len(states)
