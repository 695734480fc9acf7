"""API shapes of staff accounts, sessions and one-time codes."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.access.domain import Role

StaffStatus = Literal["active", "disabled"]
StoreCode = Annotated[str, Field(min_length=1, max_length=64)]
StoreList = Annotated[list[StoreCode], Field(min_length=1, max_length=1000)]
Password = Annotated[str, Field(min_length=1, max_length=256)]
Email = Annotated[str, Field(min_length=3, max_length=320)]


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: str = Field(min_length=1, max_length=200)
    role: Role
    stores: StoreList | None = Field(
        default=None, description="Store codes this person acts for; absent: every store."
    )
    password: Password = Field(description="At least 12 characters; stored as an Argon2id hash.")


class StaffUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    stores: StoreList | None = Field(
        default=None, description="Replaces the stores; `null` gives every store."
    )
    status: StaffStatus | None = Field(
        default=None, description="`disabled` ends every session and refuses sign-in."
    )


class StaffOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: Role
    stores: list[str] | None
    status: StaffStatus
    totp_enabled: bool
    permissions: list[str]
    last_sign_in_at: datetime | None
    created_at: datetime
    updated_at: datetime


class StaffRef(BaseModel):
    """A staff member as others see them: to assign a ticket, to name who did something."""

    id: UUID
    name: str


class StaffPage(BaseModel):
    items: list[StaffOut]
    next_cursor: str | None


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    totp: str | None = Field(
        default=None, max_length=10, description="The authenticator's code, if enabled."
    )
    program: UUID | None = Field(
        default=None, description="Needed only when this e-mail has accounts in several programs."
    )


class SessionOut(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer ks_…`; shown once.")
    expires_at: datetime
    staff: StaffOut


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class TotpSetup(BaseModel):
    secret: str
    uri: str = Field(description="`otpauth://` URI for an authenticator app (a QR code).")


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=10)
