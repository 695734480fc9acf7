"""Console pages: surveys — each with its score (NPS or CSAT), the figures and the answer
distribution of ``GET /v1/surveys/{key}/scores`` by month, store or staff member, its
answers (to those who may read members), and the forms to create and edit one."""

import datetime as dt
import re
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.errors import KopilkaError
from kopilka.http import EngineDep, in_transaction, read_only
from kopilka.kit.clock import clock
from kopilka.kit.pagination import decode_cursor, decode_key_cursor
from kopilka.kit.types import error_location
from kopilka.programs.service import ProgramContext
from kopilka.staff.service import staff_service
from kopilka.support.domain import QuestionType, ScoreGroup, SurveyTrigger
from kopilka.support.schemas import (
    ResponsePage,
    Scores,
    Survey,
    SurveyCreate,
    SurveyUpdate,
)
from kopilka.support.surveys import survey_service
from kopilka.web.charts import Point, bar_chart, line_chart
from kopilka.web.console.access import console_page
from kopilka.web.forms import FormInvalid, field_errors, flag, form_of, text
from kopilka.web.i18n import Formats, language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)
M = TypeVar("M", bound=BaseModel)
Reader = Annotated[Principal, console_page(P.SURVEYS_READ)]
Manager = Annotated[Principal, console_page(P.SURVEYS_MANAGE)]
PAGE_SIZE = 50
RESPONSES_PAGE = 25
BLANK_QUESTIONS = 2  # empty rows the form offers after the survey's questions
MAX_QUESTIONS = 50
NUMBER = re.compile(r"^[+-]?\d{1,9}$")


def next_url(request: Request, name: str, cursor: str | None) -> str | None:
    """This page's address with the next page's cursor in ``name`` (its filters kept)."""
    if cursor is None:
        return None
    url = request.url.include_query_params(**{name: cursor})
    return f"{url.path}?{url.query}"


# --- the list -------------------------------------------------------------------------------


@router.get("/surveys")
async def surveys(
    request: Request,
    engine: EngineDep,
    principal: Reader,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The program's surveys with their overall score (NPS or CSAT) and answers."""
    after = decode_key_cursor(cursor) if cursor else None

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        page = await survey_service.page(
            conn, program, after=after, limit=PAGE_SIZE, principal=principal
        )
        keys = [s.key for s in page.items if s.kind != "custom"]
        scores = await survey_service.overall_scores(conn, program, principal, keys)
        return {"page": page, "scores": scores, "zone": program.settings.timezone}

    found = await read_only(engine, principal, work)
    return render(
        request,
        "console/surveys/index.html",
        {
            "surveys": found["page"].items,
            "scores": found["scores"],
            "next_url": next_url(request, "cursor", found["page"].next_cursor),
        },
        zone=found["zone"],
    )


# --- creating and editing -------------------------------------------------------------------


def _validated(model: type[M], data: dict[str, Any]) -> M:
    """``data`` as ``model``; ``FormInvalid`` naming every bad field, a question's own
    checks (options of a choice, a rating's scale) at the question's field, as the API
    names them (``questions.2.options``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            name = ".".join(str(part) for part in error_location(error)) or "form"
            errors.setdefault(name, error["msg"])
        raise FormInvalid(errors) from None


def _number(form: FormData, name: str) -> int | str | None:
    """A whole number as typed; anything else is passed on for the model to name."""
    raw = text(form, name, limit=40)
    if raw is None:
        return None
    cleaned = raw.replace(" ", "").replace("\u00a0", "")
    return int(cleaned) if NUMBER.match(cleaned) else raw


def _question_rows(form: FormData) -> list[tuple[int, dict[str, Any]]]:
    """The form's question rows that were filled in: (row number, the question)."""
    rows: list[tuple[int, dict[str, Any]]] = []
    for row in range(MAX_QUESTIONS + BLANK_QUESTIONS):
        name = f"questions.{row}."
        fields = {
            "id": text(form, name + "id", limit=40),
            "type": text(form, name + "type", limit=20),
            "text": text(form, name + "text", limit=500),
            "options": [
                line.strip()
                for line in (text(form, name + "options", limit=6000) or "").splitlines()
                if line.strip()
            ],
            "scale": _number(form, name + "scale"),
            "max_choices": _number(form, name + "max_choices"),
        }
        if not (fields["id"] or fields["text"] or fields["options"]):
            continue
        question: dict[str, Any] = {k: v for k, v in fields.items() if v not in (None, [])}
        question["required"] = flag(form, name + "required")
        rows.append((row, question))
    return rows


def _survey_fields(form: FormData, *, creating: bool) -> tuple[dict[str, Any], list[int]]:
    """The survey as the form sent it, and the form row of each question sent."""
    rows = _question_rows(form)
    data: dict[str, Any] = {
        "name": text(form, "name", limit=200) or "",
        "description": text(form, "description", limit=2000),
        "trigger": text(form, "trigger", limit=40) or str(SurveyTrigger.MANUAL),
        "questions": [question for _, question in rows],
    }
    for name in ("sample_percent", "cooldown_days", "expires_days"):
        value = _number(form, name)
        if value is not None:
            data[name] = value
    if creating:
        data["key"] = text(form, "key", limit=64) or ""
    else:
        data["status"] = text(form, "status", limit=20) or "active"
    return data, [row for row, _ in rows]


def _in_rows(errors: dict[str, str], rows: list[int]) -> dict[str, str]:
    """Errors about the n-th question sent named by its row of the form (blank rows are
    not sent, so the two may differ)."""
    renamed: dict[str, str] = {}
    for name, message in errors.items():
        parts = name.split(".")
        if len(parts) > 1 and parts[0] == "questions" and parts[1].isdigit():
            index = int(parts[1])
            if index < len(rows):
                parts[1] = str(rows[index])
        renamed[".".join(parts)] = message
    return renamed


def _form_page(
    request: Request,
    survey: dict[str, Any],
    *,
    creating: bool,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    questions = list(survey.get("questions") or [])
    blank = max(BLANK_QUESTIONS, 3 - len(questions))
    return render(
        request,
        "console/surveys/form.html",
        {
            "survey": survey,
            "questions": questions + [{} for _ in range(blank)],
            "creating": creating,
            "errors": errors or {},
            "triggers": list(SurveyTrigger),
            "question_types": list(QuestionType),
        },
        status=status,
    )


def _as_form(survey: Survey) -> dict[str, Any]:
    data = survey.model_dump(mode="json")
    for question in data["questions"]:
        question["options"] = "\n".join(question.get("options") or [])
    return data


def _sent_again(data: dict[str, Any], rows: list[int]) -> dict[str, Any]:
    """What was sent, as the form shows it again (each question in its row)."""
    shown: list[dict[str, Any]] = []
    for row, question in zip(rows, data["questions"], strict=True):
        while len(shown) < row:
            shown.append({})
        shown.append({**question, "options": "\n".join(question.get("options") or [])})
    # Numbers left empty are shown empty again (the service said what it needs).
    empty = {"sample_percent": None, "cooldown_days": None, "expires_days": None}
    return {**empty, **data, "questions": shown}


@router.get("/surveys/new")
async def new_survey(request: Request, principal: Manager) -> Response:
    """The form of a new survey."""
    blank = {
        "key": "",
        "name": "",
        "description": "",
        "trigger": "manual",
        "sample_percent": 100,
        "cooldown_days": 30,
        "expires_days": 14,
        "questions": [],
    }
    return _form_page(request, blank, creating=True)


@router.post("/surveys/new")
async def create_survey(request: Request, engine: EngineDep, principal: Manager) -> Response:
    """Create a survey (version 1) from the form; a refusal shows the form again with the
    message beside its field."""
    form = await form_of(request)
    data, rows = _survey_fields(form, creating=True)
    try:
        body = _validated(SurveyCreate, data)
        created = await in_transaction(
            engine,
            principal,
            lambda conn, program: survey_service.create(conn, program, body, clock.now()),
        )
    except KopilkaError as exc:
        if exc.status in (401, 403):
            raise
        errors = _in_rows(field_errors(exc), rows)
        return _form_page(
            request, _sent_again(data, rows), creating=True, errors=errors, status=exc.status
        )
    notice = gettext(language_of(request), "The survey has been created.")
    return redirect(request, f"/console/surveys/{created.key}", notice)


@router.get("/surveys/{key}/edit")
async def edit_survey(
    request: Request, key: str, engine: EngineDep, principal: Manager
) -> Response:
    """The form of a survey as it is."""
    survey = await read_only(
        engine, principal, lambda conn, program: survey_service.get(conn, program, key)
    )
    return _form_page(request, _as_form(survey), creating=False)


@router.post("/surveys/{key}/edit")
async def update_survey(
    request: Request, key: str, engine: EngineDep, principal: Manager
) -> Response:
    """Save the survey; new questions on a version that has answers make the next version
    (the same questions again change nothing)."""
    form = await form_of(request)
    data, rows = _survey_fields(form, creating=False)
    try:
        body = _validated(SurveyUpdate, data)
        await in_transaction(
            engine,
            principal,
            lambda conn, program: survey_service.update(conn, program, key, body, clock.now()),
        )
    except KopilkaError as exc:
        if exc.status in (401, 403, 404):
            raise
        errors = _in_rows(field_errors(exc), rows)
        shown = {**_sent_again(data, rows), "key": key}
        return _form_page(request, shown, creating=False, errors=errors, status=exc.status)
    notice = gettext(language_of(request), "The survey has been saved.")
    return redirect(request, f"/console/surveys/{key}", notice)


# --- a survey -------------------------------------------------------------------------------


def _period(day: dt.date | None, zone: str) -> dt.datetime | None:
    """Midnight of ``day`` in the program's time zone."""
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time(0), ZoneInfo(zone))


def _charts(scores: Scores, fmt: Formats, language: str) -> dict[str, Any]:
    """The distribution of the scores given, and the score per month (bars and a line drawn
    on the server; the page shows the numbers beside them)."""
    distribution = bar_chart(
        gettext(language, "Answers per score"),
        [
            Point(str(c.score), c.responses, fmt.number(c.responses))
            for c in scores.overall.distribution
        ],
    )
    trend = None
    if scores.by == ScoreGroup.MONTH and len(scores.groups) > 1:
        values = [(g.group or "", g.nps if scores.kind == "nps" else g.csat) for g in scores.groups]
        trend = line_chart(
            gettext(language, "Score per month"),
            [Point(m, max(v or 0, 0), fmt.number(v)) for m, v in values],
        )
    return {"distribution": distribution, "trend": trend}


@router.get("/surveys/{key}")
async def survey_page(
    request: Request,
    key: str,
    engine: EngineDep,
    principal: Reader,
    by: ScoreGroup = ScoreGroup.MONTH,
    since: Annotated[dt.date | None, Query(alias="from")] = None,
    until: Annotated[dt.date | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """A survey: its questions, its score with promoters, passives and detractors (NPS) or
    satisfied answers (CSAT), the distribution of the scores, the figures per month, store
    or staff member over the days chosen, and its answers a page at a time (only to those
    who may read members: answers are a person's)."""
    before = decode_cursor(cursor) if cursor else None
    language = language_of(request)

    async def work(conn: AsyncConnection, program: ProgramContext) -> dict[str, Any]:
        zone = program.settings.timezone
        start = _period(since, zone)
        end = _period(until + dt.timedelta(days=1), zone) if until else None
        # Its answers counted at the stores its score covers (a store-limited reader's).
        survey = await survey_service.get(conn, program, key, principal=principal)
        scores = None
        if survey.kind != "custom":
            scores = await survey_service.scores(
                conn, program, principal, key, by, since=start, until=end
            )
        answers: ResponsePage | None = None
        if principal.can(P.MEMBERS_READ):
            answers = await survey_service.responses(
                conn,
                program,
                principal,
                key,
                since=start,
                until=end,
                before=before,
                limit=RESPONSES_PAGE,
            )
        staff = await staff_service.ticket_handlers(conn, program.id) if by == "staff" else []
        return {
            "survey": survey,
            "scores": scores,
            "answers": answers,
            "staff_names": {str(s.id): s.name for s in staff},
            "zone": zone,
        }

    found = await read_only(engine, principal, work)
    zone = found.pop("zone")
    scores: Scores | None = found["scores"]
    charts = _charts(scores, Formats(language, zone), language) if scores else {}
    answers: ResponsePage | None = found["answers"]
    return render(
        request,
        "console/surveys/survey.html",
        {
            **found,
            **charts,
            "by": str(by),
            "since": since,
            "until": until,
            "next_url": next_url(request, "cursor", answers.next_cursor if answers else None),
        },
        zone=zone,
    )
