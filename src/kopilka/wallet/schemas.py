"""API shapes of the wallet settings: what is sent (the certificates and keys write-only) and
what is answered (whether each secret is set, the certificates' subject and expiry)."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kopilka.kit.types import Flag
from kopilka.messaging.schemas import base_url

PEM_MAX = 20_000
Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb")]
Pem = Annotated[str, Field(min_length=1, max_length=PEM_MAX)]
PublicUrl = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(base_url)]

_WRITE_ONLY = "Write-only; left out, the one saved before is kept."


class AppleSettings(BaseModel):
    """Apple Wallet: the pass type and team of the program's Apple developer account, how
    the pass looks, and who signs it."""

    model_config = ConfigDict(extra="forbid")

    pass_type_identifier: str = Field(
        pattern=r"^pass(\.[A-Za-z0-9][A-Za-z0-9-]*)+$",
        max_length=255,
        description="The pass type identifier (pass.com.example.loyalty).",
    )
    team_identifier: str = Field(
        pattern=r"^[A-Z0-9]{10}$", description="The Apple developer team's identifier."
    )
    organization_name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="Loyalty card", min_length=1, max_length=200)
    logo_text: str | None = Field(
        default=None, max_length=40, description="Beside the logo (the program's name if none)."
    )
    background_color: Colour = "#0f6b5c"
    foreground_color: Colour = "#ffffff"
    label_color: Colour = "#d7efe9"
    apns: Flag = Field(
        default=False,
        description="Push each change of balance or tier to the devices holding the pass "
        "(APNs, with the pass certificate); off, devices refresh when they ask.",
    )
    certificate: Pem | None = Field(
        default=None, description=f"The pass certificate (PEM). {_WRITE_ONLY}"
    )
    private_key: Pem | None = Field(
        default=None, description=f"The pass certificate's private key (PEM). {_WRITE_ONLY}"
    )
    private_key_password: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The key's password, if it is encrypted; kept with the key it opens.",
    )
    wwdr_certificate: Pem | None = Field(
        default=None,
        description=f"Apple's WWDR intermediate certificate (PEM). {_WRITE_ONLY}",
    )


class GoogleSettings(BaseModel):
    """Google Wallet: the issuer account, the loyalty class made in Google's console, and
    the service account whose key signs the save links."""

    model_config = ConfigDict(extra="forbid")

    issuer_id: str = Field(pattern=r"^[0-9]{1,25}$", description="The issuer's numeric id.")
    class_id: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="The loyalty class's id after the issuer's (loyalty_card).",
    )
    service_account_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
    private_key: Pem | None = Field(
        default=None, description=f"The service account's RSA private key (PEM). {_WRITE_ONLY}"
    )


class WalletSettingsIn(BaseModel):
    """The program's wallet settings, replaced whole. A wallet left out (or null) is off
    and its keys are forgotten; within a wallet, a certificate or key left out keeps the
    one saved before."""

    model_config = ConfigDict(extra="forbid")

    public_url: PublicUrl = Field(
        description="Where members' phones reach this server (https://club.example): "
        "Apple's devices ask it for updates, Google's links name it as their origin."
    )
    apple: AppleSettings | None = None
    google: GoogleSettings | None = None


class CertificateOut(BaseModel):
    subject: str
    expires_at: datetime


class AppleSettingsOut(BaseModel):
    pass_type_identifier: str
    team_identifier: str
    organization_name: str
    description: str
    logo_text: str | None
    background_color: str
    foreground_color: str
    label_color: str
    apns: bool
    certificate: CertificateOut
    wwdr_certificate: CertificateOut
    private_key_set: bool
    private_key_password_set: bool


class GoogleSettingsOut(BaseModel):
    issuer_id: str
    class_id: str
    service_account_email: str
    private_key_set: bool


class WalletSettingsOut(BaseModel):
    """The settings as saved, without a key: whether each is set, and the certificates'
    subject and expiry. ``apple`` or ``google`` null: that wallet is not set up."""

    public_url: str | None
    apple: AppleSettingsOut | None
    google: GoogleSettingsOut | None
    updated_at: datetime | None
