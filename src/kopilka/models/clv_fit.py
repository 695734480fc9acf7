from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Double, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class ClvFit(Base):
    """One refit of a program's customer-lifetime models (``docs/analytics.md``), kept
    as a history: the newest ``fitted`` row is the fit the members' predictions come from.

    ``status`` is ``fitted`` or ``skipped`` (with ``reason``: too few customers, nobody
    bought twice, no model converged); ``models`` holds each model fitted —
    ``[{"model", "params", "log_likelihood", "customers", "converged", "seconds"}]`` —
    and ``model`` names the purchase model the predictions use.
    """

    __tablename__ = "clv_fits"
    __table_args__ = (Index("ix_clv_fits_program_fitted", "program_id", "fitted_at"),)

    id: Mapped[UUID] = mapped_column(primary_key=True)
    program_id: Mapped[UUID] = mapped_column()
    fitted_at: Mapped[datetime]
    calibration_end: Mapped[date]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(16))
    models: Mapped[list[Any]] = mapped_column(JSONType)
    customers: Mapped[int] = mapped_column(Integer)
    repeat_customers: Mapped[int] = mapped_column(Integer)
    predictions: Mapped[int] = mapped_column(Integer)
    horizon_weeks: Mapped[int] = mapped_column(Integer)
    discount_rate_percent: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Double)
