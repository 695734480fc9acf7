"""The certificates and keys a program gives for its passes, read and checked when saved, so
that a pass never fails to sign later: PEM that parses, a certificate still valid, a key
that opens with its password and belongs to the certificate. Every refusal names the field.
"""

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kopilka.errors import InvalidInput

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    expires_at: datetime


def info(certificate: x509.Certificate) -> CertificateInfo:
    return CertificateInfo(certificate.subject.rfc4514_string(), certificate.not_valid_after_utc)


def certificate_of(pem: str, field: str, now: datetime) -> x509.Certificate:
    """The certificate of a PEM text, refused if it does not parse or has expired."""
    try:
        found = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise InvalidInput(
            "is not a PEM certificate (-----BEGIN CERTIFICATE----- …)", field=field
        ) from None
    if found.not_valid_after_utc <= now:
        ended = found.not_valid_after_utc.date().isoformat()
        raise InvalidInput(f"the certificate expired on {ended}", field=field)
    return found


def loaded_certificate(pem: str) -> x509.Certificate:
    """A certificate saved before (checked then)."""
    return x509.load_pem_x509_certificate(pem.encode())


def private_key_of(
    pem: str, password: str | None, field: str, password_field: str | None = None
) -> SigningKey:
    """The private key of a PEM text (opened with ``password``): RSA or elliptic-curve,
    the kinds a PKCS #7 signature takes."""
    secret = password.encode() if password else None
    try:
        key = serialization.load_pem_private_key(pem.encode(), secret)
    except TypeError:
        # Encrypted without a password given, or a password given for a plain key.
        where = password_field or field
        if secret is None:
            raise InvalidInput("the key is encrypted: give its password", field=where) from None
        raise InvalidInput("the key is not encrypted: give no password", field=where) from None
    except ValueError:
        if secret is not None and b"ENCRYPTED" in pem.encode() and password_field:
            raise InvalidInput("the password does not open the key", field=password_field) from None
        raise InvalidInput(
            "is not a PEM private key (-----BEGIN PRIVATE KEY----- …)", field=field
        ) from None
    except UnsupportedAlgorithm:
        raise InvalidInput("is a kind of key this server cannot use", field=field) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidInput("must be an RSA or an elliptic-curve key", field=field)
    return key


def belongs_to(key: SigningKey, certificate: x509.Certificate) -> bool:
    """Whether ``key`` is the private half of the certificate's public key."""
    encoding, form = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(encoding, form) == certificate.public_key().public_bytes(
        encoding, form
    )


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``certificate`` (its name and its signature)."""
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def user_id_of(certificate: x509.Certificate) -> str | None:
    """The ``UID`` of the subject: Apple's pass certificates name their pass type there."""
    found = certificate.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(found[0].value) if found else None
