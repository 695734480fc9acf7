from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kopilka.models.base import Base, JSONType


class WalletSetting(Base):
    """A program's wallet passes: what Apple's and Google's passes say and who signs them.

    ``document`` holds what may be shown (identifiers, colours, the certificates, which are
    public); the private keys and the key's password sit in columns of their own, never read
    by an answer. ``token_secret`` derives each pass's authentication token (an HMAC of its
    serial number), made once, never shown. ``apple_pass_type`` finds the program of a pass
    Apple's devices ask about.
    """

    __tablename__ = "wallet_settings"

    program_id: Mapped[UUID] = mapped_column(primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    apple_pass_type: Mapped[str | None] = mapped_column(String(255), index=True)
    apple_key: Mapped[str | None] = mapped_column(Text)
    apple_key_password: Mapped[str | None] = mapped_column(String(200))
    google_key: Mapped[str | None] = mapped_column(Text)
    token_secret: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
