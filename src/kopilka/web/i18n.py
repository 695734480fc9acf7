"""Languages of the pages: the user's choice (a cookie), then ``Accept-Language``; texts from
the message catalogues in ``locales/<language>/LC_MESSAGES/*.po`` (English is the source
language, so English needs no catalogue), numbers, money and dates formatted per locale.

Catalogues are read once per process from the ``.po`` files the package ships (one file per
part of the web, so that each part keeps its own texts), merged into one translation.
"""

import datetime as dt
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
LANGUAGE_COOKIE = "kopilka_lang"
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}
LOCALES_DIR = Path(__file__).parent / "locales"


def catalogue_files(language: str) -> list[Path]:
    return sorted((LOCALES_DIR / language / "LC_MESSAGES").glob("*.po"))


@cache
def translations(language: str) -> NullTranslations:
    """Every catalogue of ``language`` merged into one translation (none for English)."""
    merged: NullTranslations = NullTranslations()
    for path in catalogue_files(language):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        part = Translations(compiled, domain=path.stem)
        if isinstance(merged, Translations):
            merged.merge(part)
        else:
            merged = part
    return merged


def language_of(request: Request) -> str:
    """The language chosen by the user, else the browser's first supported one, else the
    default (Russian)."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    header = request.headers.get("accept-language", "")
    preferred = [
        part.split(";", 1)[0].strip().replace("-", "_")
        for part in header.split(",")
        if part.strip()
    ]
    negotiated = Locale.negotiate(preferred, list(LANGUAGES), sep="_") if preferred else None
    return negotiated.language if negotiated else DEFAULT_LANGUAGE


class Formats:
    """Numbers, money, points and dates in one language and time zone (what templates call
    ``fmt``)."""

    def __init__(self, language: str, zone: str = "UTC") -> None:
        self.language = language
        self.locale = Locale.parse(language)
        self.zone: dt.tzinfo = ZoneInfo(zone)

    def number(self, value: int | float | None) -> str:
        if value is None:
            return "—"
        return numbers.format_decimal(value, locale=self.locale)

    def percent(self, share: float | None, digits: int = 1) -> str:
        if share is None:
            return "—"
        pattern = "#,##0." + "0" * digits + "%" if digits else "#,##0%"
        return numbers.format_percent(share, pattern, locale=self.locale)

    def money(self, minor_units: int | None, currency: str = "RUB") -> str:
        """Money kept in minor units (kopecks, cents), shown in major units."""
        if minor_units is None:
            return "—"
        digits = numbers.get_currency_precision(currency)
        return numbers.format_currency(minor_units / 10**digits, currency, locale=self.locale)

    def date(self, value: dt.date | dt.datetime | None, form: str = "medium") -> str:
        if value is None:
            return "—"
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.zone).date()
        return dates.format_date(value, form, locale=self.locale)

    def datetime(self, value: dt.datetime | None, form: str = "medium") -> str:
        if value is None:
            return "—"
        return dates.format_datetime(value, form, tzinfo=self.zone, locale=self.locale)

    def ago(self, value: dt.datetime | None, now: dt.datetime) -> str:
        """How long ago (or from now), in words: ``3 дня назад``."""
        if value is None:
            return "—"
        return dates.format_timedelta(
            value - now, add_direction=True, threshold=1.0, locale=self.locale
        )
