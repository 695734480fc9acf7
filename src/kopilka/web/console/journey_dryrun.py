"""The journey page's dry run: the days asked for (``?dry_run=1&from=…&to=…``) and what
the journey (its draft, else the version in force) would have done over them — entrants,
holdouts, the runs reaching each step, messages per channel, points and their cost,
coupons and offers, and what the figures assume. The same service call as
``POST /v1/journeys/{key}/dry-run``, under the page's ``messages.read``; nothing is
changed, so the form is a GET of the journey's page."""

from dataclasses import dataclass, field
from datetime import date

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput
from kopilka.journeys.dryrun import DryRun
from kopilka.journeys.dryrun_service import dry_run_service
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.web.forms import query_day

RANGE_FIELDS = ("from", "to")
ASKED = "dry_run"


@dataclass
class Tried:
    """The dry run's form as shown: the days typed, what is wrong with them, the answer."""

    values: dict[str, str] = field(default_factory=lambda: dict.fromkeys(RANGE_FIELDS, ""))
    errors: dict[str, str] = field(default_factory=dict)
    found: DryRun | None = None
    span: tuple[date | None, date | None] = (None, None)
    asked: bool = False


def asked_of(request: Request) -> Tried:
    """The form as the query string gives it; a day that is not one is an error at its
    field."""
    tried = Tried(
        values={name: request.query_params.get(name, "") for name in RANGE_FIELDS},
        asked=ASKED in request.query_params,
    )
    try:
        tried.span = (query_day(request, "from"), query_day(request, "to"))
    except InvalidInput as exc:
        tried.errors[exc.field or "from"] = exc.detail
    return tried


async def run_asked(
    conn: AsyncConnection, program: ProgramContext, key: str, tried: Tried, kept_days: int
) -> None:
    """The dry run, once asked for with good days; a bad range is an error at its field."""
    if not tried.asked or tried.errors:
        return
    try:
        tried.found = await dry_run_service.of_journey(
            conn, program, key, tried.span, clock.now(), kept_days=kept_days
        )
    except InvalidInput as exc:
        if exc.field not in RANGE_FIELDS:
            raise
        tried.errors[exc.field] = exc.detail
