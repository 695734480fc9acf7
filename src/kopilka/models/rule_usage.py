from uuid import UUID

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base

PROGRAM_WIDE = "*"


class RuleUsage(Base):
    """How often, and for how much, a rule with limits has applied in one period.

    ``subject`` is the member's id for per-member limits and ``*`` for program-wide limits
    and budgets. A member's rows change only under that member's ledger lock; a
    program-wide row is locked ``FOR UPDATE`` by each purchase that may use the rule, so
    concurrent purchases cannot overspend a budget.
    """

    __tablename__ = "rule_usage"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    subject: Mapped[str] = mapped_column(String(36), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    times: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
