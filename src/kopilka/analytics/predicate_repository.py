"""The SQL of the ``churn_risk`` and ``clv`` segment predicates: a range over the
member's stored prediction."""

from typing import Any

from sqlalchemy import ColumnElement, exists, select

from kopilka.analytics.predicates import ChurnRiskRange, ClvRange
from kopilka.crm.predicates import SqlContext, compiles
from kopilka.models import MemberPrediction
from kopilka.models.base import table
from kopilka.segments.domain import Ranged

predictions_t = table(MemberPrediction)


def _predicted_in_range(column: Any, p: Ranged, ctx: SqlContext) -> ColumnElement[bool]:
    """The member has a prediction whose ``column`` is in ``p``'s range: never unknown,
    so ``not`` takes members without a prediction. PostgreSQL plans the correlated
    ``EXISTS`` as a semi-join over the (program, value, member) index; SQLite looks a
    page of members up by key, and a whole program through ``IN``, which it indexes once."""
    mp = predictions_t
    in_range = [mp.c.program_id == ctx.program_id]
    if p.min is not None:
        in_range.append(column >= p.min)
    if p.max is not None:
        in_range.append(column <= p.max)
    if ctx.dialect == "postgresql" or ctx.per_member:
        return exists(select(1).where(mp.c.member_id == ctx.member_id, *in_range))
    found: ColumnElement[bool] = ctx.member_id.in_(select(mp.c.member_id).where(*in_range))
    return found


@compiles("churn_risk")
def _churn_risk(p: ChurnRiskRange, ctx: SqlContext) -> ColumnElement[bool]:
    return _predicted_in_range(predictions_t.c.churn_risk, p, ctx)


@compiles("clv")
def _clv(p: ClvRange, ctx: SqlContext) -> ColumnElement[bool]:
    return _predicted_in_range(predictions_t.c.clv, p, ctx)
