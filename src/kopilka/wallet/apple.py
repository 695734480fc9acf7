"""An Apple Wallet pass (``.pkpass``): a zip of ``pass.json``, the images, the texts per
language, ``manifest.json`` (the SHA-1 of every other file) and ``signature`` — a detached
PKCS #7 signature of the manifest, DER, by the program's pass certificate, carrying Apple's
WWDR intermediate certificate so that the phone can follow the chain to Apple's root.
"""

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from kopilka.wallet.certificates import SigningKey
from kopilka.wallet.domain import PASS_TEXTS, PKPASS_MEDIA_TYPE, pass_strings
from kopilka.wallet.png import pass_images

MEDIA_TYPE = PKPASS_MEDIA_TYPE
ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)


def pass_files(document: dict[str, Any], foreground: str, background: str) -> dict[str, bytes]:
    """Every file of the pass but the manifest and the signature."""
    files = {"pass.json": json.dumps(document, ensure_ascii=False, indent=1).encode()}
    files.update(pass_images(foreground, background))
    for language in sorted(PASS_TEXTS):
        files[f"{language}.lproj/pass.strings"] = pass_strings(language)
    return files


def manifest(files: dict[str, bytes]) -> bytes:
    """``manifest.json``: each file's SHA-1 (hex), as Apple checks the pass's content."""
    digests = {name: hashlib.sha1(content).hexdigest() for name, content in sorted(files.items())}
    return json.dumps(digests, indent=1).encode()


def signature(
    manifest_json: bytes, certificate: x509.Certificate, key: SigningKey, wwdr: x509.Certificate
) -> bytes:
    """The detached PKCS #7 signature (DER) of ``manifest.json``, with the signing time
    (included by default) and the WWDR certificate."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest_json)
        .add_signer(certificate, key, hashes.SHA256())
        .add_certificate(wwdr)
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )


def pkpass(
    files: dict[str, bytes],
    certificate: x509.Certificate,
    key: SigningKey,
    wwdr: x509.Certificate,
    modified: datetime,
) -> bytes:
    """The signed pass, zipped, each entry dated ``modified`` (when the card last changed)."""
    manifest_json = manifest(files)
    entries = {
        **files,
        "manifest.json": manifest_json,
        "signature": signature(manifest_json, certificate, key, wwdr),
    }
    at = max(modified, ZIP_EPOCH)  # a zip entry cannot be dated before 1980
    stamp = (at.year, at.month, at.day, at.hour, at.minute, at.second)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
