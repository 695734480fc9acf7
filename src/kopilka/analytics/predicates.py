"""Segments over the customer-lifetime predictions: the ``churn_risk`` and ``clv``
predicates (their SQL is in ``analytics/predicate_repository.py``). Pure.

Both read the member's stored prediction (``member_predictions``, replaced by each refit):
a member without one — no counted purchase at the last fit, or no fit yet — is outside
either predicate, and so inside its ``not``.
"""

from typing import Literal

from pydantic import Field

from kopilka.crm.predicates import predicate
from kopilka.kit.types import MONEY_MAX, Int
from kopilka.segments.domain import Ranged


@predicate
class ChurnRiskRange(Ranged):
    """The member's churn risk — 1 − P(alive), in whole percent (0–100) — between ``min``
    and ``max`` (inclusive). At risk: ``min: 60``."""

    type: Literal["churn_risk"] = "churn_risk"
    min: Int | None = Field(default=None, ge=0, le=100)
    max: Int | None = Field(default=None, ge=0, le=100)


@predicate
class ClvRange(Ranged):
    """The member's predicted customer lifetime value (minor units, over the program's CLV
    horizon, discounted) between ``min`` and ``max`` (inclusive)."""

    type: Literal["clv"] = "clv"
    min: Int | None = Field(default=None, ge=0, le=MONEY_MAX)
    max: Int | None = Field(default=None, ge=0, le=MONEY_MAX)
