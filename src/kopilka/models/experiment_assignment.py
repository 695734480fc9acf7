from datetime import datetime
from uuid import UUID

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base


class ExperimentAssignment(Base):
    """The arm a member fell into, recorded the first time an experiment's rule looked.

    The arm itself is a hash of the member and the experiment (it never changes); the row
    says when the member entered the experiment, for honest comparisons of the arms.
    """

    __tablename__ = "experiment_assignments"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    experiment: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[UUID] = mapped_column(primary_key=True)
    arm: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime]
