"""Pure rules of staff accounts: passwords, one-time codes, session tokens, lock-outs."""

import hashlib
import secrets
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kopilka.errors import InvalidInput

SESSION_PREFIX = "ks_"
SESSION_HOURS = 12
MIN_PASSWORD = 12
MAX_PASSWORD = 256
# After this many wrong passwords in a row the account rests for LOCK_MINUTES: guessing
# then takes years, and the owner keeps the account.
MAX_FAILED_SIGN_INS = 5
LOCK_MINUTES = 15
TOTP_ISSUER = "Kopilka"

# Argon2id with the library's defaults (RFC 9106's second recommended set): about 50 ms
# and 64 MiB per hash on a development machine.
hasher = PasswordHasher()
# Checked when no account matches, so a wrong e-mail costs as long as a wrong password
# and the answer's time does not tell which e-mails have accounts.
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))


def checked_password(password: str, *, field: str = "password") -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters", field=field
        )
    if password.strip() != password or len(set(password)) < 4:
        raise InvalidInput(
            "a password may not start or end with spaces nor repeat a few characters",
            field=field,
        )
    return password


def hash_password(password: str) -> str:
    return hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    try:
        return hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # 256 random bits: a plain SHA-256 is enough (nothing to stretch).
    return hashlib.sha256(token.encode()).hexdigest()


def session_expiry(now: datetime) -> datetime:
    return now + timedelta(hours=SESSION_HOURS)


def locked_until(failed: int, now: datetime) -> datetime | None:
    """When an account with ``failed`` wrong passwords in a row may try again."""
    return now + timedelta(minutes=LOCK_MINUTES) if failed >= MAX_FAILED_SIGN_INS else None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The 30-second time step whose code ``code`` is (this one or either neighbour, for
    clocks a little apart), or None if it is none of them or was used already."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None
