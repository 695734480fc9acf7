"""The member's card, the app's home page: the card's QR code and number (what the till
scans), the balance — points to spend, points on their way with the day they arrive, points
about to expire with their dates — and the tier with what is left to reach the next one.
The app's front door (``/app``) leads to the program's app.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import segno
from babel import numbers
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import read_with_retry
from kopilka.kit.clock import clock
from kopilka.ledger.domain import Balance, Lot
from kopilka.ledger.service import ledger_service
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext, program_service
from kopilka.tiers.schemas import MemberTierOut
from kopilka.tiers.service import tier_service
from kopilka.wallet.service import wallet_service
from kopilka.web.app.access import SignedInMember, member_read
from kopilka.web.charts import progress_bar
from kopilka.web.i18n import Formats, language_of, translations
from kopilka.web.rendering import gettext, render

router = APIRouter(prefix="/app", include_in_schema=False)

EXPIRING_DAYS = 30  # points that expire within this many days are shown with their dates
PROGRAMS_LISTED = 100


# --- the front door ----------------------------------------------------------------------


@router.get("")
@router.get("/")
async def front_door(request: Request) -> Response:
    """With one program on the server, its app; with several, the list of their apps."""
    engine: AsyncEngine = request.app.state.engine

    async def work(conn: AsyncConnection) -> list[ProgramContext]:
        ids = (await program_service.ids(conn))[:PROGRAMS_LISTED]
        return [await program_service.get(conn, program_id) for program_id in ids]

    programs = await read_with_retry(engine, work)
    if len(programs) == 1:
        return Response(status_code=307, headers={"Location": f"/app/{programs[0].slug}/"})
    programs.sort(key=lambda p: p.name.lower())
    return render(request, "app/card/programs.html", {"programs": programs})


# --- the card ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dated:
    """Points of one day: arriving (pending) or expiring on it."""

    day: date
    amount: int


@dataclass(frozen=True)
class OtherBalance:
    currency: str
    money: bool
    available: int


@dataclass(frozen=True)
class Requirement:
    """One thing the next tier asks for, as the page shows it."""

    label: str
    current: str
    threshold: str


@dataclass(frozen=True)
class TierView:
    name: str
    next_name: str | None
    sentence: str | None
    share: float
    bar: Markup | None
    requirements: list[Requirement]


@dataclass(frozen=True)
class CardView:
    name: str | None
    card_number: str | None
    qr: str | None
    available: int
    pending: int
    arriving: list[Dated]
    expiring: list[Dated]
    others: list[OtherBalance]
    tier: TierView | None


@dataclass(frozen=True)
class Wallets:
    """Which phone wallets the program has set up (their buttons are shown)."""

    apple: bool
    google: bool


@router.get("/{slug}/")
async def card(request: Request, slug: str, member: SignedInMember) -> Response:
    """The member's card: QR code and number, balance, tier and progress."""
    program = member.program
    now = clock.now()
    language = language_of(request)
    fmt = Formats(language, program.settings.timezone)

    async def work(conn: AsyncConnection, current: ProgramContext) -> tuple[CardView, Wallets]:
        profile = await member_service.get(conn, current, member.member_id)
        balances = await ledger_service.balances(conn, current, member.member_id)
        lots: dict[str, list[Lot]] = {}
        for currency, lot in await ledger_service.lots_holding_points(
            conn, current, member.member_id
        ):
            lots.setdefault(currency, []).append(lot)
        tier = None
        if current.settings.tiers is not None:
            found = await tier_service.member_tier(conn, current, member.member_id, now)
            tier = MemberTierOut.model_validate(found)
        card_number = next((i.value for i in profile.identifiers if i.kind == "card"), None)
        wallet = await wallet_service.settings(conn, current)
        wallets = Wallets(apple=wallet.apple is not None, google=wallet.google is not None)
        view = _card_view(current, profile.name, card_number, balances, lots, tier, now, fmt)
        return view, wallets

    view, wallets = await member_read(request, work)
    return render(
        request,
        "app/card/card.html",
        {"slug": slug, "program_name": program.name, "card": view, "wallets": wallets},
        zone=program.settings.timezone,
    )


def _card_view(
    program: ProgramContext,
    name: str | None,
    card_number: str | None,
    balances: dict[str, Balance],
    lots: dict[str, list[Lot]],
    tier: MemberTierOut | None,
    now: datetime,
    fmt: Formats,
) -> CardView:
    settings = program.settings
    main = settings.points_currency()
    zone = ZoneInfo(settings.timezone)
    balance = balances.get(main) or Balance()
    own = lots.get(main, [])
    money = {c.code for c in settings.currencies if c.kind == "money"}
    return CardView(
        name=name,
        card_number=grouped(card_number) if card_number else None,
        qr=qr_data_url(card_number) if card_number else None,
        available=balance.available,
        pending=balance.pending,
        arriving=arriving(own, zone),
        expiring=expiring(own, now, zone),
        others=[
            OtherBalance(code, code in money, (balances.get(code) or Balance()).available)
            for code in settings.currency_codes()
            if code != main and (balances.get(code) or Balance()).available
        ],
        tier=tier_view(tier, settings.money_currency, now, fmt) if tier else None,
    )


def grouped(card_number: str) -> str:
    """The card number in groups of four digits, as printed on a card."""
    return " ".join(card_number[i : i + 4] for i in range(0, len(card_number), 4))


def qr_data_url(card_number: str) -> str:
    """The card number as a QR code: an SVG drawn here, as a ``data:`` URL (the policy of
    the pages allows such images; no script draws it)."""
    qr = segno.make(card_number, micro=False)
    return str(qr.svg_data_uri(border=2, dark="#000000", light="#ffffff"))


def _by_day(pairs: list[tuple[datetime, int]], zone: tzinfo) -> list[Dated]:
    days: dict[date, int] = {}
    for moment, amount in pairs:
        day = moment.astimezone(zone).date()
        days[day] = days.get(day, 0) + amount
    return [Dated(day, amount) for day, amount in sorted(days.items())]


def arriving(lots: list[Lot], zone: tzinfo) -> list[Dated]:
    """Pending points by the day they become available."""
    return _by_day(
        [
            (lot.available_at, lot.remaining)
            for lot in lots
            if lot.status == "pending" and lot.remaining > 0
        ],
        zone,
    )


def expiring(lots: list[Lot], now: datetime, zone: tzinfo) -> list[Dated]:
    """Available points that expire within ``EXPIRING_DAYS``, by day."""
    until = now + timedelta(days=EXPIRING_DAYS)
    return _by_day(
        [
            (lot.expires_at, lot.remaining)
            for lot in lots
            if lot.status == "available"
            and lot.remaining > 0
            and lot.expires_at is not None
            and now < lot.expires_at <= until
        ],
        zone,
    )


# --- the tier ----------------------------------------------------------------------------


def tier_view(found: MemberTierOut, currency: str, now: datetime, fmt: Formats) -> TierView:
    upcoming = found.next
    if upcoming is None:
        return TierView(found.tier.name, None, None, 1.0, None, [])
    requirements = [
        Requirement(
            _metric_label(fmt.language, r.metric),
            _amount(fmt, r.metric, r.current, currency),
            _amount(fmt, r.metric, r.threshold, currency),
        )
        for r in upcoming.requirements
    ]
    shares = [min(r.current / r.threshold, 1.0) for r in upcoming.requirements if r.threshold]
    share = (max if upcoming.match == "any" else min)(shares) if shares else 0.0
    missing = [(r.metric, r.missing) for r in upcoming.requirements if r.missing > 0]
    sentence = tier_sentence(
        fmt, missing, upcoming.match, upcoming.by, upcoming.tier.name, currency, now
    )
    label = gettext(
        fmt.language,
        "%(share)s of the way to %(tier)s",
        share=fmt.percent(share, 0),
        tier=upcoming.tier.name,
    )
    return TierView(
        found.tier.name,
        upcoming.tier.name,
        sentence,
        share,
        progress_bar(share, label),
        requirements,
    )


def _metric_label(language: str, metric: str) -> str:
    if metric == "spend":
        return gettext(language, "Spent")
    if metric == "points":
        return gettext(language, "Points earned")
    if metric == "visits":
        return gettext(language, "Purchases")
    return gettext(language, "Months as a member")


def _amount(fmt: Formats, metric: str, value: int, currency: str) -> str:
    return money(fmt, value, currency) if metric == "spend" else fmt.number(value)


def tier_sentence(
    fmt: Formats,
    missing: Sequence[tuple[str, int]],
    match: str,
    by: date | None,
    tier: str,
    currency: str,
    now: datetime,
) -> str:
    """The sentence of what is left to reach the next tier, in the page's language: «Spend
    2 300 ₽ more by 31 December to reach Gold»."""
    language = fmt.language
    phrases = [_phrase(fmt, metric, amount, currency) for metric, amount in missing]
    if not phrases:
        return gettext(language, "You will reach %(tier)s with your next purchase.", tier=tier)
    what = phrases[0]
    for phrase in phrases[1:]:
        if match == "any":
            what = gettext(language, "%(first)s or %(second)s", first=what, second=phrase)
        else:
            what = gettext(language, "%(first)s and %(second)s", first=what, second=phrase)
    if by is not None:
        same_year = by.year == now.astimezone(fmt.zone).year
        when = fmt.date(by, "d MMMM" if same_year else "long")
        sentence = gettext(
            language, "%(what)s by %(date)s to reach %(tier)s", what=what, date=when, tier=tier
        )
    else:
        sentence = gettext(language, "%(what)s to reach %(tier)s", what=what, tier=tier)
    return sentence[:1].upper() + sentence[1:]


def _phrase(fmt: Formats, metric: str, amount: int, currency: str) -> str:
    catalog = translations(fmt.language)
    if metric == "spend":
        return gettext(fmt.language, "spend %(amount)s more", amount=money(fmt, amount, currency))
    if metric == "points":
        text = catalog.ngettext("earn %(num)s more point", "earn %(num)s more points", amount)
    elif metric == "visits":
        text = catalog.ngettext("make %(num)s more purchase", "make %(num)s more purchases", amount)
    else:
        text = catalog.ngettext("stay %(num)s more month", "stay %(num)s more months", amount)
    return text % {"num": fmt.number(amount)}


def money(fmt: Formats, minor_units: int, currency: str) -> str:
    """Money in the page's language, without kopecks when there are none ("2 300 ₽")."""
    digits = numbers.get_currency_precision(currency)
    if minor_units % 10**digits:
        return fmt.money(minor_units, currency)
    pattern = fmt.locale.currency_formats["standard"].pattern
    whole = pattern.split(";")[0].replace(".00", "")
    return numbers.format_currency(
        minor_units // 10**digits, currency, whole, locale=fmt.locale, currency_digits=False
    )
