"""What the console's catalogue pages (rewards, coupons, gift cards, stores) read from their
forms beyond ``kopilka.web.forms``: sums of money typed in major units, moments typed on
the program's wall clock, lists typed one per line, every bad field of a form at once, and
the field names a service's refusal is shown beside.

Pages parse with a :class:`FieldReader`, then validate with :func:`checked` (the API's own
schema), then call the service; each step's error ends up beside its field.
"""

import base64
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from babel import numbers
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from kopilka.errors import InvalidInput, KopilkaError
from kopilka.kit.codes import qr_svg
from kopilka.kit.types import error_location
from kopilka.web.forms import FormInvalid, field_errors, integer, text

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
FORM = "form"  # errors that belong to no one field: shown above the form
# ASCII digits only: ``\d`` would take other scripts' digits too (``١٠٠`` as 100).
_MONEY = re.compile(r"([0-9]+)(?:[.,]([0-9]+))?")
_GROUPING = str.maketrans("", "", " \u00a0\u202f'")


def raw(form: FormData, name: str) -> str:
    """A field as typed (for re-showing a form), ``""`` when absent."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def raw_values(form: FormData, names: Iterable[str]) -> dict[str, str]:
    return {name: raw(form, name) for name in names}


class FieldReader:
    """Reads a form's fields, keeping every field's error instead of stopping at the first
    (``done`` raises them together)."""

    def __init__(self, form: FormData) -> None:
        self.form = form
        self.errors: dict[str, str] = {}

    def take(self, name: str, parse: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``parse(*args, **kwargs)``, or ``None`` with its error kept for ``name``."""
        try:
            return parse(*args, **kwargs)
        except KopilkaError as exc:
            self.errors.setdefault(name, _without_prefix(exc.detail, name))
            return None

    def text(self, name: str, limit: int = 2000) -> str | None:
        return self.take(name, text, self.form, name, limit=limit)

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        return self.take(name, integer, self.form, name, required=required, minimum=minimum)

    def money(self, name: str, currency: str) -> int | None:
        return self.take(name, money, raw(self.form, name), currency, name)

    def instant(self, name: str, zone: str) -> datetime | None:
        return self.take(name, local_instant, raw(self.form, name), zone, name)

    def done(self) -> None:
        if self.errors:
            raise FormInvalid(self.errors)


def _without_prefix(message: str, name: str) -> str:
    # The shared parsers say "price: a whole number…"; beside the price field, the field's
    # name is already there.
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def money(text: str | None, currency: str, name: str) -> int | None:
    """A sum typed in major units (``1500``, ``1 500,50``) as minor units; ``None`` when
    empty. More decimals than the currency has are refused, never rounded."""
    if text is None or not text.strip():
        return None
    cleaned = text.strip().translate(_GROUPING)
    match = _MONEY.fullmatch(cleaned)
    digits: int = numbers.get_currency_precision(currency)
    if match is None or len(match.group(2) or "") > digits:
        example = "1500" if digits == 0 else "1500" + "." + "5" * digits
        raise InvalidInput(f"a sum such as {example}, not {text.strip()!r}", field=name)
    whole, fraction = match.group(1), (match.group(2) or "").ljust(digits, "0")
    scale = int(10**digits)
    return int(whole) * scale + (int(fraction) if fraction else 0)


def money_input(minor_units: int | None, currency: str) -> str:
    """Minor units as a form shows them back: major units without grouping (``1500.50``)."""
    if minor_units is None:
        return ""
    digits: int = numbers.get_currency_precision(currency)
    if digits == 0:
        return str(minor_units)
    whole, fraction = divmod(minor_units, 10**digits)
    return f"{whole}.{fraction:0{digits}d}" if fraction else str(whole)


def local_instant(text: str | None, zone: str, name: str) -> datetime | None:
    """A ``datetime-local`` value (``2026-12-01T18:00``), a moment of the program's wall
    clock, as an aware instant in UTC; ``None`` when empty."""
    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"a date and time such as 2027-03-01T09:00, not {text.strip()!r}", field=name
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)


def local_input(value: datetime | None, zone: str) -> str:
    """An instant as a ``datetime-local`` input shows it, on the program's wall clock."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def lines(text: str | None) -> list[str]:
    """A textarea's non-blank lines, stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def words(text: str | None) -> list[str] | None:
    """A comma-separated list; ``None`` when empty."""
    found = [part.strip() for part in (text or "").split(",") if part.strip()]
    return found or None


def checked(model: type[M], data: Any) -> M:
    """``data`` as ``model`` (the API's schema); ``FormInvalid`` naming every bad field by
    its dotted location (``tier_prices.gold``, ``hours.mon``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = ".".join(str(part) for part in error_location(error)) or FORM
            errors.setdefault(name, str(error["msg"]))
        raise FormInvalid(errors) from None


def form_errors(
    exc: KopilkaError,
    fields: Iterable[str],
    rename: Callable[[str], str] | Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A refusal as the messages a form shows: each beside its field (``rename`` maps the
    API's field names to the form's), the rest above the form."""
    known = set(fields)
    shown: dict[str, str] = {}
    for name, message in field_errors(exc).items():
        if callable(rename):
            target = rename(name)
        elif rename is not None:
            target = rename.get(name, name.split(".", 1)[0])
        else:
            target = name.split(".", 1)[0]
        if target not in known:
            message = f"{name}: {message}" if name != FORM else message
            target = FORM
        if target in shown and target == FORM:
            shown[FORM] += "; " + message
        else:
            shown.setdefault(target, message)
    return shown


def new_token() -> str:
    """A random name for one submission of a form (its idempotency key): sending the same
    form twice (a double click, a reload) does its work once."""
    return secrets.token_urlsafe(18)


def qr_data_url(text: str) -> str:
    """``text`` as a QR code in a ``data:`` URL for an ``<img>`` (the policy allows
    ``data:`` images, and an image's SVG cannot run anything on the page)."""
    encoded = base64.b64encode(qr_svg(text).encode()).decode()
    return f"data:image/svg+xml;base64,{encoded}"
