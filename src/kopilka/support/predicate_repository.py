"""The SQL of the ``survey_score`` segment predicate."""

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, select

from kopilka.crm.predicates import SqlContext, compiles
from kopilka.models import Survey, SurveyResponse
from kopilka.models.base import table
from kopilka.support.predicates import SurveyScore

surveys_t = table(Survey)
responses_t = table(SurveyResponse)


def _in_range(value: Any, p: SurveyScore) -> ColumnElement[bool]:
    parts = []
    if p.min is not None:
        parts.append(value >= p.min)
    if p.max is not None:
        parts.append(value <= p.max)
    return and_(*parts)


@compiles("survey_score")
def _survey_score(p: SurveyScore, ctx: SqlContext) -> ColumnElement[bool]:
    survey = (
        select(surveys_t.c.id)
        .where(surveys_t.c.program_id == ctx.program_id, surveys_t.c.key == p.survey)
        .scalar_subquery()
    )
    r = responses_t.alias("answer")
    answered = [r.c.member_id == ctx.member_id, r.c.survey_id == survey, r.c.score.is_not(None)]
    if p.last_days is not None:
        answered.append(r.c.answered_at >= ctx.now - timedelta(days=p.last_days))
    if p.measure == "average":
        # EXISTS over a grouped average: true or false, never unknown (``not`` stays right).
        return exists(
            select(1)
            .where(*answered)
            .group_by(r.c.member_id)
            .having(_in_range(func.avg(r.c.score), p))
        )
    later = responses_t.alias("later")
    newer = exists(
        select(1).where(
            later.c.member_id == r.c.member_id,
            later.c.survey_id == r.c.survey_id,
            later.c.score.is_not(None),
            (later.c.answered_at > r.c.answered_at)
            | ((later.c.answered_at == r.c.answered_at) & (later.c.id > r.c.id)),
        )
    )
    return exists(select(1).where(*answered, _in_range(r.c.score, p), not_(newer)))
