"""A program's wallet settings as stored and as answered, and the checks a save runs: every
certificate and key, given or kept from before, must parse, be valid, open and fit together
(a refusal names the field). What is stored: the document (the certificates are public) and
the keys apart, which no answer shows."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kopilka.errors import InvalidInput
from kopilka.wallet.repository import SettingsRow
from kopilka.wallet.schemas import (
    AppleSettings,
    AppleSettingsOut,
    CertificateOut,
    GoogleSettings,
    GoogleSettingsOut,
    WalletSettingsOut,
)


@dataclass(frozen=True)
class Stored:
    """A program's saved settings, read back."""

    row: SettingsRow
    public_url: str
    apple: AppleSettings | None
    google: GoogleSettings | None


def read_settings(row: SettingsRow) -> Stored:
    document = row.document
    apple_settings = document.get("apple")
    google_settings = document.get("google")
    return Stored(
        row=row,
        public_url=str(document.get("public_url") or ""),
        apple=AppleSettings.model_validate(apple_settings) if apple_settings else None,
        google=GoogleSettings.model_validate(google_settings) if google_settings else None,
    )


def certificate_out(pem: str) -> CertificateOut:
    from kopilka.wallet import certificates  # cryptography: loaded when a pass is set up

    found = certificates.info(certificates.loaded_certificate(pem))
    return CertificateOut(subject=found.subject, expires_at=found.expires_at)


def answer_of(stored: Stored) -> WalletSettingsOut:
    apple_out = None
    if stored.apple is not None and stored.apple.certificate and stored.apple.wwdr_certificate:
        shown = stored.apple.model_dump(
            exclude={"certificate", "wwdr_certificate", "private_key", "private_key_password"}
        )
        apple_out = AppleSettingsOut(
            **shown,
            certificate=certificate_out(stored.apple.certificate),
            wwdr_certificate=certificate_out(stored.apple.wwdr_certificate),
            private_key_set=stored.row.apple_key is not None,
            private_key_password_set=stored.row.apple_key_password is not None,
        )
    google_out = None
    if stored.google is not None:
        google_out = GoogleSettingsOut(
            **stored.google.model_dump(exclude={"private_key"}),
            private_key_set=stored.row.google_key is not None,
        )
    return WalletSettingsOut(
        public_url=stored.public_url or None,
        apple=apple_out,
        google=google_out,
        updated_at=stored.row.updated_at,
    )


def apple_section(
    given: AppleSettings | None, before: Stored | None, now: datetime
) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """The Apple section to store, its key and the key's password; every certificate and
    key checked."""
    from kopilka.wallet import certificates

    if given is None:
        return None, None, None
    kept = before.apple if before is not None else None
    certificate_pem = given.certificate or (kept.certificate if kept else None)
    wwdr_pem = given.wwdr_certificate or (kept.wwdr_certificate if kept else None)
    if given.private_key is not None:
        key_pem: str | None = given.private_key
        password = given.private_key_password
    else:
        key_pem = before.row.apple_key if before is not None and kept else None
        password = given.private_key_password or (before.row.apple_key_password if before else None)
    if not certificate_pem:
        raise InvalidInput("give the pass certificate (PEM)", field="apple.certificate")
    if not key_pem:
        raise InvalidInput("give the pass certificate's private key", field="apple.private_key")
    if not wwdr_pem:
        raise InvalidInput(
            "give Apple's WWDR intermediate certificate (PEM)", field="apple.wwdr_certificate"
        )
    certificate = certificates.certificate_of(certificate_pem, "apple.certificate", now)
    key = certificates.private_key_of(
        key_pem, password, "apple.private_key", "apple.private_key_password"
    )
    wwdr = certificates.certificate_of(wwdr_pem, "apple.wwdr_certificate", now)
    if not certificates.belongs_to(key, certificate):
        raise InvalidInput("is not the pass certificate's private key", field="apple.private_key")
    if not certificates.issued_by(certificate, wwdr):
        raise InvalidInput(
            "did not issue the pass certificate (give Apple's WWDR certificate that did)",
            field="apple.wwdr_certificate",
        )
    named = certificates.user_id_of(certificate)
    if named is not None and named != given.pass_type_identifier:
        raise InvalidInput(
            f"the pass certificate is for the pass type {named}",
            field="apple.pass_type_identifier",
        )
    document = given.model_dump(mode="json", exclude={"private_key", "private_key_password"})
    document |= {"certificate": certificate_pem, "wwdr_certificate": wwdr_pem}
    return document, key_pem, password


def google_section(
    given: GoogleSettings | None, before: Stored | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The Google section to store and the service account's key, checked."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kopilka.wallet import certificates

    if given is None:
        return None, None
    key_pem = given.private_key
    if key_pem is None and before is not None and before.google is not None:
        key_pem = before.row.google_key
    if not key_pem:
        raise InvalidInput("give the service account's private key", field="google.private_key")
    if "\\n" in key_pem and "\n" not in key_pem.strip():
        # Pasted from the service account's JSON file, its line breaks still escaped.
        key_pem = key_pem.replace("\\n", "\n")
    key = certificates.private_key_of(key_pem, None, "google.private_key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput(
            "must be an RSA key (the links are signed RS256)", field="google.private_key"
        )
    return given.model_dump(mode="json", exclude={"private_key"}), key_pem
