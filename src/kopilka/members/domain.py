"""Pure rules for member identifiers: phone and e-mail normalisation, card numbers."""

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from kopilka.errors import InvalidInput
from kopilka.kit.emails import normalise_email as normalise_email
from kopilka.programs.schemas import AttributeSpec

# Attributes every program may set whatever its schema: the member's time zone.
BUILT_IN_ATTRIBUTES = frozenset({"timezone"})

CARD_PREFIX = "77"
CARD_LENGTH = 16  # prefix + random digits + Luhn check digit


def normalise_phone(raw: str, default_region: str = "RU") -> str:
    """E.164 form of a phone number (``+79161234567``); 422 naming ``phone`` if invalid."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"phone {raw!r} is not a phone number", field="phone") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput(f"phone {raw!r} is not a valid number", field="phone")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def luhn_check_digit(digits: str) -> int:
    """The digit that makes ``digits + check`` pass the Luhn test (catches any single typo
    and most transpositions at the till)."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def is_valid_card(number: str) -> bool:
    return (
        len(number) == CARD_LENGTH
        and number.isdigit()
        and luhn_check_digit(number[:-1]) == int(number[-1])
    )


def generate_card_number() -> str:
    digits = CARD_LENGTH - len(CARD_PREFIX) - 1
    body = CARD_PREFIX + str(secrets.randbelow(10**digits)).zfill(digits)
    return body + str(luhn_check_digit(body))


def normalise_card(raw: str) -> str:
    number = raw.replace(" ", "").replace("-", "")
    if not is_valid_card(number):
        raise InvalidInput(f"card {raw!r} is not a valid card number", field="card")
    return number


def normalise_identifier(kind: str, value: str) -> str:
    """The stored form of an identifier of ``kind``, so look-ups match however it was typed."""
    if kind == "phone":
        return normalise_phone(value)
    if kind == "email":
        return normalise_email(value)
    if kind == "card":
        return normalise_card(value)
    value = value.strip()
    if not value:
        raise InvalidInput(f"{kind} must not be empty", field=kind)
    return value


def guess_identifier_kind(value: str) -> str:
    """Which kind of identifier a bare look-up value is: a card passes the Luhn check, an
    e-mail has an @, a phone starts with + or is mostly digits; anything else is external."""
    compact = value.replace(" ", "").replace("-", "")
    if is_valid_card(compact):
        return "card"
    if "@" in value:
        return "email"
    if compact.startswith("+") or (compact.isdigit() and 10 <= len(compact) <= 12):
        return "phone"
    return "external_id"


def checked_attributes(
    attributes: Mapping[str, Any], schema: Mapping[str, AttributeSpec]
) -> dict[str, Any]:
    """``attributes`` as stored, checked against the program's declared attributes: with
    none declared, anything goes; otherwise only declared ones, each of its type (a date as
    ``YYYY-MM-DD``). 422 naming ``attributes.<name>``."""
    if not schema:
        return dict(attributes)
    checked: dict[str, Any] = {}
    for name, value in attributes.items():
        if name in BUILT_IN_ATTRIBUTES:
            checked[name] = value
            continue
        spec = schema.get(name)
        if spec is None:
            raise InvalidInput(
                f"attribute {name!r} is not declared by the program "
                f"(declared: {', '.join(sorted(schema))})",
                field=f"attributes.{name}",
            )
        checked[name] = _typed(name, value, spec)
    return checked


def _typed(name: str, value: Any, spec: AttributeSpec) -> Any:
    field = f"attributes.{name}"
    kind = spec.type
    ok = (
        (kind == "string" and isinstance(value, str))
        or (kind == "integer" and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "number" and isinstance(value, int | float) and not isinstance(value, bool))
        or (kind == "boolean" and isinstance(value, bool))
        or (kind == "choice" and isinstance(value, str) and value in spec.values)
        or (kind == "date" and isinstance(value, str) and _is_date(value))
    )
    if not ok:
        wanted = f"one of {spec.values}" if kind == "choice" else f"a {kind}"
        if kind == "date":
            wanted = "a date as YYYY-MM-DD"
        raise InvalidInput(f"attribute {name!r} must be {wanted}; got {value!r}", field=field)
    return value


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


# Mail providers that ignore dots in the local part and everything after a ``+``.
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
PLUS_TAG_DOMAINS = DOTLESS_DOMAINS | frozenset(
    {"yandex.ru", "ya.ru", "outlook.com", "hotmail.com", "icloud.com", "me.com", "fastmail.com"}
)


def name_key(name: str | None, birthday: date | None) -> str | None:
    """The key two profiles of one person share: the name folded (case, ``ё``, spaces,
    word order) with the birthday. None without both."""
    if not name or birthday is None:
        return None
    words = sorted(name.casefold().replace("ё", "е").split())
    if not words:
        return None
    return f"{birthday.isoformat()}|{' '.join(words)}"[:300]


def email_key(email: str | None) -> str | None:
    """The address as the mailbox sees it: ``Anna.P+shop@gmail.com`` → ``annap@gmail.com``."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.lower().rpartition("@")
    if domain in PLUS_TAG_DOMAINS:
        local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"[:320]


# How far back anniversaries of joining are looked for: programs older than this are rare,
# and each year is one range of the query.
ANNIVERSARY_YEARS = 30


def local_day_spans(
    days: Sequence[tuple[int, int]], before: date, zone: str
) -> list[tuple[datetime, datetime]]:
    """The UTC instants of each (month, day) in ``zone`` in the years before ``before``'s
    (up to ``ANNIVERSARY_YEARS`` back): joining on one of them makes ``before``'s year an
    anniversary. Days a year lacks (29 February) are left out of it."""
    tz = ZoneInfo(zone)
    spans: list[tuple[datetime, datetime]] = []
    for year in range(before.year - ANNIVERSARY_YEARS, before.year):
        for month, day in days:
            try:
                local = date(year, month, day)
            except ValueError:
                continue
            start = datetime.combine(local, time(0), tzinfo=tz).astimezone(UTC)
            end = datetime.combine(local + timedelta(days=1), time(0), tzinfo=tz)
            spans.append((start, end.astimezone(UTC)))
    return spans
