from datetime import datetime
from uuid import UUID

from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class WidgetSetting(Base):
    """A program's web-shop widget: the shops' origins (``https://shop.example``) whose pages
    may call the widget's API. A program without a row allows none."""

    __tablename__ = "widget_settings"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    allowed_origins: Mapped[list[str]] = mapped_column(JSONType)
    updated_at: Mapped[datetime]
