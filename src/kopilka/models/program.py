from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String, text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class Program(Base):
    """A loyalty program; its settings document is validated by ``programs.schemas``, and
    every published change of it is kept in ``program_versions``."""

    __tablename__ = "programs"

    id: Mapped[UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The document of the version in force, a copy of that ``program_versions`` row: the
    # purchase path reads one row per program, not the history.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(server_default=text("1"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
