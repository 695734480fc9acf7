"""Journeys as the program's marketers keep them: created as a draft, checked on every
save with the field named, published as numbered versions (members in flight stay on
theirs), paused, resumed and archived; and their results: counts per step of each version,
runs, conversion against the holdout, and what the journey cost and returned
(``docs/journeys.md``). Never commits."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import liability
from kopilka.analytics.attribution_service import Window, attribution_service
from kopilka.benefits.domain import checked_payload
from kopilka.errors import Conflict, InvalidInput, KopilkaError, NotFound
from kopilka.journeys import domain
from kopilka.journeys.domain import (
    BranchStep,
    CouponStep,
    JourneyDocument,
    JourneyStatus,
    OfferStep,
    PointsStep,
    SegmentEntry,
    SendStep,
    WebhookStep,
)
from kopilka.journeys.repository import JourneyRepository, JourneyRow, RunRow, journey_repository
from kopilka.journeys.returns import DEFAULT_WINDOW_DAYS, Cost, Return, journey_cost, journey_return
from kopilka.journeys.statistics import JourneyStats, journey_stats, steps_listed
from kopilka.kit.ids import new_id
from kopilka.messaging.composition import known_kind
from kopilka.programs.service import ProgramContext
from kopilka.rewards.service import reward_service
from kopilka.segments.domain import parse_definition
from kopilka.segments.service import segment_service

MAX_RUNS_PAGE = 200
MAX_JOURNEYS_PAGE = 200
MAX_DATA = 10_000
# Deeper data is refused before it reaches the JSON encoders (theirs stop near 255).
MAX_DATA_DEPTH = 32
# Keys the console's addresses use for pages of their own (``/console/journeys/new``).
RESERVED_KEYS = frozenset({"new"})


@dataclass(frozen=True)
class JourneyView:
    key: str
    name: str
    status: JourneyStatus
    version: int | None
    document: dict[str, Any] | None  # the version in force
    draft: dict[str, Any] | None
    versions: list[tuple[int, datetime]]
    created_at: datetime
    updated_at: datetime


class JourneyService:
    def __init__(self, repository: JourneyRepository = journey_repository) -> None:
        self.repository = repository

    async def create(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        document: Any,
        now: datetime,
    ) -> JourneyView:
        """A new journey holding ``document`` as its draft (nothing runs until published)."""
        if not re.fullmatch(domain.KEY_PATTERN, key) or key in RESERVED_KEYS:
            raise InvalidInput(
                f"key must match {domain.KEY_PATTERN} and not be one of "
                f"{', '.join(sorted(RESERVED_KEYS))}",
                field="key",
            )
        checked = self.checked(document)
        if await self.repository.journey(conn, program.id, key) is not None:
            raise Conflict(f"a journey {key!r} exists already", field="key")
        await self.repository.add_journey(
            conn,
            {
                "id": new_id(),
                "program_id": program.id,
                "key": key,
                "name": checked.name,
                "status": JourneyStatus.DRAFT,
                "version": None,
                "draft": _stored(checked),
                "created_at": now,
                "updated_at": now,
            },
        )
        return await self.get(conn, program, key)

    async def put_draft(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        document: Any,
        now: datetime,
    ) -> JourneyView:
        """Replace the draft once it validates (an invalid one changes nothing)."""
        row = await self._row(conn, program, key, lock=True)
        if row.status == JourneyStatus.ARCHIVED:
            raise Conflict("an archived journey takes no draft", field="status")
        checked = self.checked(document)
        await self.repository.update_journey(
            conn, row.id, {"draft": _stored(checked), "updated_at": now}
        )
        return await self.get(conn, program, key)

    async def publish(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
    ) -> JourneyView:
        """The draft as the next version, in force from now; a draft or paused journey
        becomes active. What it names must exist: the entry's segment, the coupon
        campaigns, the message kinds (409 naming the step otherwise)."""
        row = await self._row(conn, program, key, lock=True)
        if row.draft is None:
            raise Conflict("there is no draft to publish: save one first", field="draft")
        if row.status == JourneyStatus.ARCHIVED:
            raise Conflict("an archived journey is not published again", field="status")
        checked = self.checked(row.draft)
        await self.check_references(conn, program, checked)
        version = (row.version or 0) + 1
        await self.repository.add_version(
            conn,
            {
                "journey_id": row.id,
                "version": version,
                "document": _stored(checked),
                "published_at": now,
            },
        )
        await self.repository.update_journey(
            conn,
            row.id,
            {
                "version": version,
                "draft": None,
                "name": checked.name,
                "status": JourneyStatus.ACTIVE,
                "updated_at": now,
            },
        )
        return await self.get(conn, program, key)

    async def set_status(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        status: JourneyStatus,
        now: datetime,
    ) -> JourneyView:
        """Pause (no run moves, no member enters), resume, or archive (for good)."""
        row = await self._row(conn, program, key, lock=True)
        allowed = {
            JourneyStatus.PAUSED: {JourneyStatus.ACTIVE},
            JourneyStatus.ACTIVE: {JourneyStatus.PAUSED},
            JourneyStatus.ARCHIVED: {
                JourneyStatus.DRAFT,
                JourneyStatus.ACTIVE,
                JourneyStatus.PAUSED,
            },
        }
        if JourneyStatus(row.status) not in allowed.get(status, set()):
            raise Conflict(f"a journey that is {row.status} cannot be {status}", field="status")
        await self.repository.update_journey(conn, row.id, {"status": status, "updated_at": now})
        return await self.get(conn, program, key)

    async def get(self, conn: AsyncConnection, program: ProgramContext, key: str) -> JourneyView:
        row = await self._row(conn, program, key)
        return await self._view(conn, row)

    async def listing(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        after: str | None = None,
        limit: int = MAX_JOURNEYS_PAGE,
    ) -> list[JourneyView]:
        """A page of the program's journeys in key order, after the key ``after``."""
        if not 1 <= limit <= MAX_JOURNEYS_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_JOURNEYS_PAGE}", field="limit")
        rows = await self.repository.page(conn, program.id, after, limit)
        return [await self._view(conn, row) for row in rows]

    async def stats(self, conn: AsyncConnection, program: ProgramContext, key: str) -> JourneyStats:
        """Counts per step of the version in force (or the draft's steps before one) and of
        each earlier version that has runs, under its version; the runs' conversion,
        treated against held out, over every version."""
        row = await self._row(conn, program, key)
        view = await self._view(conn, row)
        runs = await self.repository.run_counts(conn, row.id)
        earlier = sorted({v for v, _ in runs} - {row.version})
        documents = await self.repository.documents(conn, [(row.id, v) for v in earlier])
        steps_of: dict[int | None, list[tuple[str, str]]] = {
            v: steps_listed(documents[(row.id, v)]) for v in earlier if (row.id, v) in documents
        }
        steps_of[row.version] = steps_listed(view.document or view.draft)
        steps = await self.repository.step_counts(conn, row.id)
        at = await self.repository.at_steps(conn, row.id)
        return journey_stats(key, row.version, steps_of, steps, at, runs)

    async def returns(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime
    ) -> tuple[Cost, Return]:
        """What the journey's steps cost and what the treated bought beyond the held out
        (``journeys/returns.py`` defines each figure)."""
        row = await self._row(conn, program, key)
        view = await self._view(conn, row)
        settings = program.settings
        credited = await self.repository.credited(conn, row.id)
        rates = {c: liability.point_rate(settings, c) for c in credited}
        coupons = await attribution_service.coupons_used(
            conn, program, "journey", await self.repository.issued_coupons(conn, row.id)
        )
        offers = await attribution_service.offers_used(conn, program, "journey", key, now)
        cost = journey_cost(
            settings.money_currency,
            credited,
            rates,
            (coupons.uses, coupons.discounts),
            (offers.used, offers.value, offers.unvalued),
        )
        default = timedelta(days=DEFAULT_WINDOW_DAYS)
        windows, held = [], []
        for member_id, held_out, entered_at, goal_until in await self.repository.run_windows(
            conn, row.id
        ):
            end = min(goal_until or entered_at + default, now)
            windows.append(Window(member_id, entered_at, max(end, entered_at)))
            held.append(held_out)
        revenue = await attribution_service.revenue_in_windows(conn, program, windows)
        treated = [r for r, h in zip(revenue, held, strict=True) if not h]
        control = [r for r, h in zip(revenue, held, strict=True) if h]
        document = view.document or view.draft or {}
        goal = document.get("goal") if isinstance(document, dict) else None
        days = goal.get("within_days") if isinstance(goal, dict) else None
        window_days = days if type(days) is int else DEFAULT_WINDOW_DAYS
        return cost, journey_return(treated, control, window_days, cost)

    async def runs(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        after: UUID | None,
        limit: int,
        status: str | None,
    ) -> list[RunRow]:
        if not 1 <= limit <= MAX_RUNS_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_RUNS_PAGE}", field="limit")
        if status is not None and status not in set(domain.RunStatus):
            raise InvalidInput(f"no run status {status!r}", field="status")
        row = await self._row(conn, program, key)
        return await self.repository.runs_page(conn, row.id, after, limit, status)

    async def run_steps(
        self, conn: AsyncConnection, program: ProgramContext, key: str, run_id: UUID
    ) -> tuple[RunRow, list[dict[str, Any]]]:
        """One run and the steps it took, in order."""
        row = await self._row(conn, program, key)
        run = await self.repository.run(conn, row.id, run_id)
        if run is None:
            raise NotFound(f"no run {run_id} of journey {key!r}", field="run_id")
        return run, await self.repository.logs_of(conn, run_id)

    # --- checking --------------------------------------------------------------------------

    def checked(self, document: Any) -> JourneyDocument:
        """The document parsed, with its branch conditions and message kinds checked."""
        parsed = domain.parse_journey(document)
        for i, step in enumerate(parsed.steps):
            if isinstance(step, BranchStep):
                parse_definition(step.condition, where=f"steps.{i}.condition")
            if isinstance(step, SendStep):
                try:
                    known_kind(step.kind)
                except KopilkaError as exc:
                    raise InvalidInput(exc.detail, field=f"steps.{i}.kind") from None
            if isinstance(step, WebhookStep) and _depth(step.data) > MAX_DATA_DEPTH:
                raise InvalidInput(
                    f"a webhook's data nests at most {MAX_DATA_DEPTH} levels deep",
                    field=f"steps.{i}.data",
                )
            if isinstance(step, WebhookStep) and len(json.dumps(step.data)) > MAX_DATA:
                raise InvalidInput(
                    f"a webhook's data holds at most {MAX_DATA} characters of JSON",
                    field=f"steps.{i}.data",
                )
            if isinstance(step, OfferStep):
                try:
                    checked_payload(step.kind, step.payload)
                except InvalidInput as exc:
                    raise InvalidInput(exc.detail, field=f"steps.{i}.{exc.field}") from None
        return parsed

    async def check_references(
        self, conn: AsyncConnection, program: ProgramContext, document: JourneyDocument
    ) -> None:
        """What the document names exists in the program: the entry's segment, a points
        step's currency, the coupon campaigns (409 naming the field), and an offer's
        reward (422: the payload names what is not there). A free sample's sku is not
        checked: the program keeps no catalogue of its items."""
        if isinstance(document.entry, SegmentEntry):
            try:
                await segment_service.get(conn, program, document.entry.segment)
            except NotFound:
                raise Conflict(
                    f"no segment {document.entry.segment!r}", field="entry.segment"
                ) from None
        currencies = {c.code for c in program.settings.currencies}
        for i, step in enumerate(document.steps):
            if isinstance(step, PointsStep) and step.currency and step.currency not in currencies:
                raise Conflict(
                    f"the program has no currency {step.currency!r}", field=f"steps.{i}.currency"
                )
            if isinstance(step, CouponStep):
                await self._check_campaign(conn, program, step.campaign, f"steps.{i}.campaign")
            if isinstance(step, OfferStep) and step.kind == "reward":
                await self._check_reward(conn, program, step, f"steps.{i}.payload.reward")

    async def _check_campaign(
        self, conn: AsyncConnection, program: ProgramContext, key: str, field: str
    ) -> None:
        from kopilka.coupons.service import coupon_service

        try:
            campaign = await coupon_service.campaign(conn, program, key)
        except NotFound:
            raise Conflict(f"no coupon campaign {key!r}", field=field) from None
        if campaign.get("status") != "active":
            raise Conflict(f"coupon campaign {key!r} is not active", field=field)

    async def _check_reward(
        self, conn: AsyncConnection, program: ProgramContext, step: OfferStep, field: str
    ) -> None:
        key = str(step.payload.get("reward"))
        if key not in await reward_service.names(conn, program, [key]):
            raise InvalidInput(f"the program has no reward {key!r}", field=field)

    async def _row(
        self, conn: AsyncConnection, program: ProgramContext, key: str, *, lock: bool = False
    ) -> JourneyRow:
        row = await self.repository.journey(conn, program.id, key, lock=lock)
        if row is None:
            raise NotFound(f"no journey {key!r}", field="key")
        return row

    async def _view(self, conn: AsyncConnection, row: JourneyRow) -> JourneyView:
        document = None
        if row.version is not None:
            found = await self.repository.documents(conn, [(row.id, row.version)])
            document = found.get((row.id, row.version))
        return JourneyView(
            key=row.key,
            name=row.name,
            status=JourneyStatus(row.status),
            version=row.version,
            document=document,
            draft=row.draft,
            versions=await self.repository.versions(conn, row.id),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _depth(value: Any) -> int:
    """How many levels of objects and arrays ``value`` nests (stops counting past the
    limit: the caller refuses it anyway)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, level = stack.pop()
        if level > MAX_DATA_DEPTH + 1:
            return level
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def _stored(document: JourneyDocument) -> Mapping[str, Any]:
    """The document as stored: normalised, without defaults left implicit."""
    try:
        return document.model_dump(mode="json")
    except ValueError:
        raise InvalidInput("the document nests too deep", field="document") from None


journey_service = JourneyService()
