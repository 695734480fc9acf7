"""What a wallet pass says, pure: the card's data, Apple's ``pass.json``, Google's loyalty
object, the pass's serial number and authentication token, and the tags of Apple's web
service. No database, no web framework, no signing (``apple.py``, ``google.py`` sign).
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from kopilka.errors import NotFound

APPLE_SERVICE_PATH = "/wallet/apple"
PKPASS_MEDIA_TYPE = "application/vnd.apple.pkpass"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Texts of the pass. Apple shows a label in the phone's language when the pass carries a
# ``<language>.lproj/pass.strings`` with it, else as written: the English text is the key.
POINTS_LABEL = "Points"
MEMBER_LABEL = "Member"
TIER_LABEL = "Tier"
CARD_LABEL = "Card number"
PROGRAM_LABEL = "Program"
BALANCE_CHANGED = "Your balance is now %@ points"
TIER_CHANGED = "Your tier is now %@"
PASS_TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        POINTS_LABEL: "Баллы",
        MEMBER_LABEL: "Участник",
        TIER_LABEL: "Уровень",
        CARD_LABEL: "Номер карты",
        PROGRAM_LABEL: "Программа",
        BALANCE_CHANGED: "На вашем счёте %@ баллов",
        TIER_CHANGED: "Ваш уровень теперь %@",
    },
}


class WalletNotSetUp(NotFound):
    """The program has not set up this wallet (no settings, or not this vendor's)."""


class NoCardNumber(NotFound):
    """The member has no card number, which is what the pass's code carries."""


@dataclass(frozen=True)
class AppleLook:
    """What an Apple pass shows besides the card: its issuer and colours."""

    pass_type_identifier: str
    team_identifier: str
    organization_name: str
    description: str
    logo_text: str | None
    background_color: str
    foreground_color: str
    label_color: str


@dataclass(frozen=True)
class CardData:
    """One member's card as a pass shows it."""

    serial: str
    program_name: str
    card_number: str
    name: str | None
    points: int
    tier: str | None


def serial_of(member_id: UUID) -> str:
    """The pass's serial number: the member's id, stable for the life of their card."""
    return str(member_id)


def member_of(serial: str) -> UUID | None:
    """The member a serial number names (None: not one of ours)."""
    try:
        return UUID(serial)
    except ValueError:
        return None


def authentication_token(secret: str, serial: str) -> str:
    """The token Apple's devices send back for a pass (``ApplePass <token>``): an HMAC of
    its serial number under the program's secret, so nothing is stored per pass."""
    return hmac.new(secret.encode(), f"apple-pass:{serial}".encode(), hashlib.sha256).hexdigest()


def token_matches(secret: str, serial: str, token: str) -> bool:
    return hmac.compare_digest(authentication_token(secret, serial), token)


def grouped(card_number: str) -> str:
    """The card number in groups of four, as printed on a card."""
    return " ".join(card_number[i : i + 4] for i in range(0, len(card_number), 4))


def rgb(colour: str) -> str:
    """``#0f6b5c`` → ``rgb(15, 107, 92)``, the form Apple's passes take."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def origin_of(url: str) -> str:
    """``https://club.example/base`` → ``https://club.example`` (Google's ``origins``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def pass_json(look: AppleLook, card: CardData, public_url: str, token: str) -> dict[str, Any]:
    """Apple's ``pass.json`` of a store card: the card number as a QR code, the points in
    the header (a change of them is announced on the lock screen), the member's name and
    tier, and where the pass asks for its updates."""
    secondary: list[dict[str, Any]] = []
    if card.name:
        secondary.append({"key": "member", "label": MEMBER_LABEL, "value": card.name})
    if card.tier:
        secondary.append(
            {"key": "tier", "label": TIER_LABEL, "value": card.tier, "changeMessage": TIER_CHANGED}
        )
    return {
        "formatVersion": 1,
        "passTypeIdentifier": look.pass_type_identifier,
        "teamIdentifier": look.team_identifier,
        "serialNumber": card.serial,
        "organizationName": look.organization_name,
        "description": look.description,
        "logoText": look.logo_text or card.program_name,
        "backgroundColor": rgb(look.background_color),
        "foregroundColor": rgb(look.foreground_color),
        "labelColor": rgb(look.label_color),
        "webServiceURL": public_url + APPLE_SERVICE_PATH,
        "authenticationToken": token,
        "sharingProhibited": True,
        "barcodes": [
            {
                "format": "PKBarcodeFormatQR",
                "message": card.card_number,
                "messageEncoding": "iso-8859-1",
                "altText": grouped(card.card_number),
            }
        ],
        "storeCard": {
            "headerFields": [
                {
                    "key": "points",
                    "label": POINTS_LABEL,
                    "value": card.points,
                    "numberStyle": "PKNumberStyleDecimal",
                    "changeMessage": BALANCE_CHANGED,
                }
            ],
            "secondaryFields": secondary,
            "backFields": [
                {"key": "card", "label": CARD_LABEL, "value": grouped(card.card_number)},
                {"key": "program", "label": PROGRAM_LABEL, "value": card.program_name},
            ],
        },
    }


def pass_strings(language: str) -> bytes:
    """``<language>.lproj/pass.strings``: the pass's texts in that language."""
    lines = [
        f'"{_escaped(english)}" = "{_escaped(text)}";'
        for english, text in PASS_TEXTS[language].items()
    ]
    return ("\n".join(lines) + "\n").encode()


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def loyalty_object(
    issuer_id: str,
    class_id: str,
    card: CardData,
    *,
    points_label: str,
    tier_label: str,
) -> dict[str, Any]:
    """Google Wallet's loyalty object of the member's card (sent inside the save link's
    JWT: Google makes it when the member saves the card)."""
    found: dict[str, Any] = {
        "id": f"{issuer_id}.{card.serial}",
        "classId": f"{issuer_id}.{class_id}",
        "state": "ACTIVE",
        "accountId": card.card_number,
        "accountName": card.name or card.card_number,
        "barcode": {
            "type": "QR_CODE",
            "value": card.card_number,
            "alternateText": grouped(card.card_number),
        },
        "loyaltyPoints": {"label": points_label, "balance": {"int": card.points}},
    }
    if card.tier:
        found["textModulesData"] = [{"id": "tier", "header": tier_label, "body": card.tier}]
    return found


def save_claims(
    service_account_email: str, origin: str, loyalty: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The claims of Google's "save to wallet" JWT."""
    return {
        "iss": service_account_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now.timestamp()),
        "origins": [origin],
        "payload": {"loyaltyObjects": [loyalty]},
    }


# --- Apple's web service: tags and modification times -------------------------------------


def tag_of(moment: datetime) -> str:
    """A tag of Apple's web service (``passesUpdatedSince``): microseconds since the epoch."""
    return str((moment - EPOCH) // MICROSECOND)


def moment_of(tag: str | None) -> datetime | None:
    """The instant a tag names (None: no tag, or not one of ours: every pass is new)."""
    if not tag or not tag.isascii() or not tag.isdigit() or len(tag) > 18:
        return None
    try:
        return EPOCH + int(tag) * MICROSECOND
    except OverflowError:  # past the year 9999
        return None


def to_second(moment: datetime) -> datetime:
    """``moment`` to the whole second (HTTP dates have no fractions)."""
    return moment.replace(microsecond=0)
