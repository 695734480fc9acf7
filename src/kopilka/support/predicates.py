"""Segments over survey answers: the ``survey_score`` predicate (its SQL is in
``support/predicate_repository.py``)."""

from typing import Literal

from pydantic import Field, model_validator

from kopilka.crm.predicates import PredicateModel, predicate
from kopilka.kit.types import Int


@predicate
class SurveyScore(PredicateModel):
    """The member's score in a survey — their last answer (``measure: last``) or the
    average of their answers (``average``) — between ``min`` and ``max`` (inclusive), among
    answers of the last ``last_days`` days (all, if absent). A member who never answered
    is outside. NPS detractors: ``max: 6``; promoters: ``min: 9``."""

    type: Literal["survey_score"] = "survey_score"
    survey: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    measure: Literal["last", "average"] = "last"
    min: Int | None = Field(default=None, ge=0, le=100)
    max: Int | None = Field(default=None, ge=0, le=100)
    last_days: Int | None = Field(default=None, ge=1, le=3660)

    @model_validator(mode="after")
    def _bounded(self) -> "SurveyScore":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is larger than max")
        return self
