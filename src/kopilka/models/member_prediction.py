from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Double, ForeignKey, Index, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class MemberPrediction(Base):
    """What the program's current customer-lifetime fit predicts for one member
    (``docs/analytics.md``): written by a refit, all of a program's rows replaced at once.

    ``churn_risk`` is 1 − P(alive) as a whole percent (0–100); ``expected_purchases`` are
    over the program's CLV horizon; ``expected_spend`` (the average value of a future
    purchase) and ``clv`` (the horizon's spend, discounted) are money in minor units,
    rounded to the nearest unit. A member without a counted purchase has no row.
    """

    __tablename__ = "member_predictions"
    __table_args__ = (
        # Segment predicates and rule reports read ranges of these alone (member_id in the
        # key: the semi-joins that follow need no visit to the table).
        Index("ix_member_predictions_program_churn_risk", "program_id", "churn_risk", "member_id"),
        Index("ix_member_predictions_program_clv", "program_id", "clv", "member_id"),
    )

    member_id: Mapped[UUID] = mapped_column(ForeignKey("members.id"), primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    fit_id: Mapped[UUID] = mapped_column()
    p_alive: Mapped[float] = mapped_column(Double)
    churn_risk: Mapped[int] = mapped_column(SmallInteger)
    expected_purchases: Mapped[float] = mapped_column(Double)
    expected_spend: Mapped[int] = mapped_column(BigInteger)
    clv: Mapped[int] = mapped_column(BigInteger)
    fitted_at: Mapped[datetime]
