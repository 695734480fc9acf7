"""A/B experiments of rules: which arm a member is in."""

import hashlib
from uuid import UUID

from kopilka.rules.schemas import Experiment


def assign_arm(experiment: Experiment, member_id: UUID) -> str:
    """The member's arm: a stable hash of experiment and member into 0–99, then arms by
    their cumulative percents. The same member always lands in the same arm."""
    digest = hashlib.sha256(f"{experiment.name}:{member_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    cumulative = 0
    for arm in experiment.arms:
        cumulative += arm.percent
        if bucket < cumulative:
            return arm.name
    return experiment.arms[-1].name
