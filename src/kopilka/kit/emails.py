"""E-mail addresses as stored: syntax-checked and lower-cased, without a DNS look-up."""

from email_validator import EmailNotValidError, validate_email

from kopilka.errors import InvalidInput


def normalise_email(raw: str, *, field: str = "email") -> str:
    """Lower-cased, syntax-checked e-mail; no DNS look-up (the till may be offline)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"{field} {raw!r} is not valid: {exc}", field=field) from exc
    return str(result.normalized).lower()
