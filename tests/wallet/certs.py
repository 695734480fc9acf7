"""Certificates and keys for wallet tests, made here with ``cryptography``: a CA standing in
for Apple's WWDR intermediate, a pass certificate it issued (as Apple's are: the pass type
in the subject's UID, the team in OU), and a service account key for Google."""

from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import Api

PASS_TYPE = "pass.dev.kopilka.test"
TEAM = "KOPILKA123"
ISSUER_ID = "3388000000022000000"
CLASS_ID = "loyalty_card"
SERVICE_ACCOUNT = "wallet@kopilka-test.iam.gserviceaccount.com"
PUBLIC_URL = "https://club.example"
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2045, 1, 1, tzinfo=UTC)
T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)  # within the certificates' validity


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: str | None = None
) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def issue(
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool = False,
    valid_from: datetime = VALID_FROM,
    valid_until: datetime = VALID_UNTIL,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


class Pki:
    """The test's CA (as WWDR), pass certificate and keys."""

    def __init__(self, pass_type: str = PASS_TYPE, valid_until: datetime = VALID_UNTIL) -> None:
        self.ca_key = rsa_key()
        self.ca_name = _name(
            (NameOID.COMMON_NAME, "Test Worldwide Developer Relations CA"),
            (NameOID.ORGANIZATION_NAME, "Kopilka tests"),
        )
        self.ca = issue(self.ca_name, self.ca_key.public_key(), self.ca_name, self.ca_key, ca=True)
        self.pass_key = rsa_key()
        self.pass_certificate = issue(
            _name(
                (NameOID.USER_ID, pass_type),
                (NameOID.COMMON_NAME, f"Pass Type ID: {pass_type}"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM),
                (NameOID.ORGANIZATION_NAME, "Kopilka tests"),
            ),
            self.pass_key.public_key(),
            self.ca_name,
            self.ca_key,
            valid_until=valid_until,
        )
        self.google_key = rsa_key()


@cache
def pki() -> Pki:
    return Pki()


@cache
def other_pki() -> Pki:
    """Another CA and pass certificate: a key or a WWDR that does not fit ``pki()``'s."""
    return Pki()


def apple_settings(p: Pki | None = None, **overrides: Any) -> dict[str, Any]:
    p = p or pki()
    return {
        "pass_type_identifier": PASS_TYPE,
        "team_identifier": TEAM,
        "organization_name": "Kopilka Coffee",
        "logo_text": "Kopilka",
        "background_color": "#123456",
        "foreground_color": "#fedcba",
        "certificate": cert_pem(p.pass_certificate),
        "private_key": key_pem(p.pass_key),
        "wwdr_certificate": cert_pem(p.ca),
        **overrides,
    }


def google_settings(p: Pki | None = None, **overrides: Any) -> dict[str, Any]:
    p = p or pki()
    return {
        "issuer_id": ISSUER_ID,
        "class_id": CLASS_ID,
        "service_account_email": SERVICE_ACCOUNT,
        "private_key": key_pem(p.google_key),
        **overrides,
    }


def settings_body(**overrides: Any) -> dict[str, Any]:
    return {
        "public_url": PUBLIC_URL,
        "apple": apple_settings(),
        "google": google_settings(),
        **overrides,
    }


async def set_up_wallets(api: Api, **overrides: Any) -> dict[str, Any]:
    answer = await api.put("/v1/wallet/settings", settings_body(**overrides))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found
