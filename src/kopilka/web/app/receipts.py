"""App page: "Add a receipt" — the member claims a purchase made without their card, by the
receipt's number, through the same service as ``POST /v1/purchases/claims``, and sees what
it earned or why it could not be added.

Receipt numbers can be guessed, so failed attempts are limited per member (a few a minute,
more an hour, in this process, as sign-in codes are); a refused member is told when to try
again, with ``Retry-After``. A receipt added already answers as the first time did.
"""

import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from limits import RateLimitItem, parse, storage, strategies
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import KopilkaError, NotFound
from kopilka.kit.clock import clock
from kopilka.members.schemas import MemberRef
from kopilka.programs.service import ProgramContext
from kopilka.purchases.batches import Outcome
from kopilka.purchases.claims import claim_service
from kopilka.purchases.schemas import ClaimCreate
from kopilka.web.app.access import MemberCaller, SignedInMember, member_transaction
from kopilka.web.app.history import app_page
from kopilka.web.forms import form_of, text
from kopilka.web.i18n import language_of, translations
from kopilka.web.rendering import gettext

router = APIRouter(prefix="/app", include_in_schema=False)
TEMPLATE = "app/history/receipt.html"
# Failed attempts per member: enough for typing mistakes, far too few to walk through
# receipt numbers.
FAILURES_PER_MINUTE = "5/minute"
FAILURES_PER_HOUR = "20/hour"

# Why a receipt could not be added, in the member's words (by the refusal's ``reason``).
REFUSALS = {
    "claimed": "This receipt has already been added to another card.",
    "has_member": "This purchase was already counted on a card.",
    "claim_window_closed": "This receipt is too old to be added.",
    "claims_closed": "Receipts cannot be added in this program.",
    "returned": "This purchase was returned: there is nothing to earn on it.",
}
NOT_FOUND = "We found no purchase with this receipt number. Check it and try again."
MALFORMED = "Type the receipt number as it is printed on the receipt."


class FailureLimit:
    """Failed attempts per member in moving windows, in this process."""

    def __init__(self, *specs: str) -> None:
        self.items: list[RateLimitItem] = [parse(spec) for spec in specs]
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        waits = [0.0]
        for item in self.items:
            stats = self.limiter.get_window_stats(item, key)
            if stats.remaining <= 0:
                waits.append(max(stats.reset_time - time.time(), 1.0))
        return max(waits)

    def failed(self, key: str) -> None:
        for item in self.items:
            self.limiter.hit(item, key)


def failure_limit(request: Request) -> FailureLimit:
    """The application's limit (made with it, on first use)."""
    found: FailureLimit | None = getattr(request.app.state, "app_receipt_failures", None)
    if found is None:
        found = FailureLimit(FAILURES_PER_MINUTE, FAILURES_PER_HOUR)
        request.app.state.app_receipt_failures = found
    return found


@dataclass(frozen=True)
class Added:
    """What the page shows of a receipt added: points net of what returns took back."""

    external_id: str
    total: int
    earned: dict[str, int]
    again: bool


def added(outcome: Outcome) -> Added:
    body: dict[str, Any] = outcome.result or {}
    earned: dict[str, int] = {}
    for item in body.get("earned", []):
        earned[item["currency"]] = earned.get(item["currency"], 0) + item["amount"]
    for item in body.get("reversed", []):
        earned[item["currency"]] = earned.get(item["currency"], 0) - item["reversed"]
    return Added(body["external_id"], body["total"], earned, outcome.replayed)


@router.get("/{slug}/history/receipt")
async def receipt_form(request: Request, member: SignedInMember) -> Response:
    """The form: the receipt's number."""
    return _page(request, member)


@router.post("/{slug}/history/receipt")
async def add_receipt(request: Request, member: SignedInMember) -> Response:
    """Claim the purchase for the signed-in member; the page says what it earned, or why
    not (the form again, with the number typed)."""
    form = await form_of(request)
    language = language_of(request)
    limit, key = failure_limit(request), f"{member.program.id}:{member.member_id}"
    if wait := limit.wait(key):
        return _too_many(request, member, wait)
    typed = (text(form, "receipt", limit=300) or "").strip()
    try:
        body = ClaimCreate(receipt=typed, member=MemberRef(id=member.member_id))
    except ValidationError:
        limit.failed(key)
        return _refused(request, member, typed, gettext(language, MALFORMED))

    async def work(conn: AsyncConnection, program: ProgramContext) -> Outcome:
        return await claim_service.claim(conn, program, body, clock.now())

    try:
        outcome = await member_transaction(request, work)
    except NotFound as exc:
        limit.failed(key)
        if exc.field != "receipt":
            raise
        return _refused(request, member, typed, gettext(language, NOT_FOUND), status=404)
    except KopilkaError as exc:
        limit.failed(key)
        reason = exc.extra.get("reason")
        known = REFUSALS.get(reason) if isinstance(reason, str) else None
        message = gettext(language, known) if known else exc.detail
        return _refused(request, member, typed, message, status=exc.status)
    return _page(request, member, added=added(outcome))


def _page(
    request: Request,
    member: MemberCaller,
    *,
    added: Added | None = None,
    receipt: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    context = {"tab": "purchases", "added": added, "receipt": receipt, "error": error}
    return app_page(request, member, TEMPLATE, context, status=status)


def _refused(
    request: Request, member: MemberCaller, typed: str, message: str, *, status: int = 422
) -> Response:
    return _page(request, member, receipt=typed, error=message, status=status)


def _too_many(request: Request, member: MemberCaller, wait: float) -> Response:
    minutes = max(1, math.ceil(wait / 60))
    said = translations(language_of(request)).ngettext(
        "Too many receipts could not be added: try again in %(num)s minute.",
        "Too many receipts could not be added: try again in %(num)s minutes.",
        minutes,
    )
    response = _page(request, member, error=said % {"num": minutes}, status=429)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response
