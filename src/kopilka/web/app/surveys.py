"""App pages: surveys. The surveys the member may answer now (their invitations, and the
program's app surveys not answered yet), one survey's questions — NPS as a row of 0–10,
CSAT 1–5, ratings, choices, text — answered once, and a thank-you page.

An answer is ``POST /v1/surveys/{key}/responses`` for the signed-in member, through the same
service: each answer is checked against its question there, and the refusal is shown
beside that question. An invitation is answered once (the same answers again are the
first answer; others are refused); without one, the form carries a key of its own, so a
form sent twice (a double tap, a reload) records one answer.
"""

import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import FormData

from kopilka.errors import Conflict, InvalidInput, KopilkaError, NotFound
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.support.member_surveys import (
    MemberSurvey,
    OpenSurvey,
    SurveyState,
    member_survey_service,
)
from kopilka.support.schemas import Question, ResponseCreate, Survey
from kopilka.support.surveys import survey_service
from kopilka.web.app.access import SignedInMember, app_url, member_read, member_transaction
from kopilka.web.forms import FormInvalid, form_of, validated
from kopilka.web.i18n import language_of
from kopilka.web.rendering import gettext, redirect, render

router = APIRouter(prefix="/app", include_in_schema=False)

ATTEMPT = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SCALES = {"nps": (0, 10), "csat": (1, 5)}
_ANSWER_FIELD = re.compile(r"^answers\.(\d+)\.(value|question)$")


def field_name(question_id: str) -> str:
    """The form field of a question."""
    return f"q.{question_id}"


def bounds(question: Question) -> tuple[int, int] | None:
    """The numbers a scored or rating question takes."""
    if question.type == "rating":
        return 1, question.scale or 5
    return SCALES.get(question.type)


class NotOpen(Conflict):
    """The survey is not one the member may answer now (closed, or the invitation expired)."""


def invitation_of(raw: str | None) -> UUID | None:
    if not raw:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"no invitation {raw!r}", field="invitation_id") from None


# --- reading the form ---------------------------------------------------------------------


@dataclass
class Given:
    """What the member chose, per question (to send, and to show again when refused)."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # question ids, in the order of ``answers``
    shown: dict[str, Any] = field(default_factory=dict)  # question id → text or list typed


def _number(raw: str) -> int | str:
    """A whole number as typed, else the text itself (the service names it as no answer)."""
    return int(raw) if re.fullmatch(r"-?\d{1,6}", raw) else raw


def answers_of(form: FormData, questions: list[Question]) -> Given:
    """Each question's answer from the form. A required question is sent even when left
    empty, so that the service names that very question; an optional one left empty is
    not sent."""
    given = Given()
    for question in questions:
        name = field_name(question.id)
        value: Any
        if question.type == "multi_choice":
            value = [v for v in form.getlist(name) if isinstance(v, str)]
            empty = not value
        else:
            raw = form.get(name)
            text = raw.strip() if isinstance(raw, str) else ""
            empty = not text
            value = _number(text) if bounds(question) and text else text
            if bounds(question) and empty:
                value = None
        given.shown[question.id] = value
        if empty and not question.required:
            continue
        given.answers.append({"question": question.id, "value": value})
        given.sent.append(question.id)
    return given


def _question_message(language: str, question: Question, value: Any, detail: str) -> str:
    """The service's refusal of an answer, in the member's words."""
    limits = bounds(question)
    if limits is not None:
        low, high = limits
        return gettext(language, "Choose a number from %(low)s to %(high)s.", low=low, high=high)
    if question.type == "choice":
        return gettext(language, "Choose one of the options.")
    if not value:
        if question.type == "multi_choice":
            return gettext(language, "Choose at least one option.")
        return gettext(language, "Please fill this in.")
    return detail


def answer_errors(
    exc: KopilkaError, language: str, questions: list[Question], given: Given
) -> dict[str, str]:
    """The refusal shown beside the question it names (``answers.N.value`` is the N-th
    answer sent), else above the form."""
    if isinstance(exc, FormInvalid):
        return {"form": gettext(language, "Answer at least one question.")}
    found = _ANSWER_FIELD.match(exc.field or "")
    if found and int(found.group(1)) < len(given.sent):
        question_id = given.sent[int(found.group(1))]
        question = next(q for q in questions if q.id == question_id)
        message = _question_message(language, question, given.shown.get(question_id), exc.detail)
        return {field_name(question_id): message}
    if isinstance(exc, Conflict):
        return {"form": gettext(language, "You have answered this survey already.")}
    return {"form": exc.detail}


# --- pages ---------------------------------------------------------------------------------


@router.get("/{slug}/surveys")
async def surveys_page(request: Request, member: SignedInMember) -> Response:
    """The surveys the member may answer now: invitations first, then the app's surveys."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> list[OpenSurvey]:
        return await member_survey_service.open_surveys(
            conn, program, member.member_id, clock.now()
        )

    surveys = await member_read(request, work)
    return render(
        request,
        "app/surveys/index.html",
        {"slug": member.slug, "program_name": member.program.name, "surveys": surveys},
        zone=member.program.settings.timezone,
    )


async def _read_survey(
    request: Request, member: SignedInMember, key: str, invitation: UUID | None
) -> MemberSurvey:
    async def work(conn: AsyncConnection, program: ProgramContext) -> MemberSurvey:
        return await member_survey_service.member_survey(
            conn, program, member.member_id, key, clock.now(), invitation_id=invitation
        )

    return await member_read(request, work)


def _survey_page(
    request: Request,
    member: SignedInMember,
    found: MemberSurvey,
    *,
    given: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    attempt: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "app/surveys/survey.html",
        {
            "slug": member.slug,
            "program_name": member.program.name,
            "found": found,
            "survey": found.survey,
            "given": given or {},
            "errors": errors or {},
            "attempt": attempt or secrets.token_urlsafe(18),
            "field_name": field_name,
            "bounds": bounds,
        },
        status=status,
        zone=member.program.settings.timezone,
    )


@router.get("/{slug}/surveys/{key}")
async def survey_page(
    request: Request, member: SignedInMember, key: str, invitation: str | None = None
) -> Response:
    """The survey's questions, while the member may answer it (``invitation``: theirs to
    it); else what became of it (answered, expired, closed)."""
    found = await _read_survey(request, member, key, invitation_of(invitation))
    return _survey_page(request, member, found)


@router.post("/{slug}/surveys/{key}")
async def answer_survey(request: Request, member: SignedInMember, key: str) -> Response:
    """Record the member's answers, as ``POST /v1/surveys/{key}/responses``; then the
    thank-you page."""
    form = await form_of(request)
    language = language_of(request)
    invitation = invitation_of(_field(form, "invitation"))
    attempt = _field(form, "attempt")
    idempotency_key = f"app:{attempt}" if attempt and ATTEMPT.match(attempt) else None
    found = await _read_survey(request, member, key, invitation)
    questions = found.survey.questions
    given = answers_of(form, questions)
    try:
        if found.state is SurveyState.CLOSED:
            raise NotOpen(gettext(language, "This survey is not open now."))
        if found.state is SurveyState.EXPIRED:
            raise NotOpen(gettext(language, "This invitation has expired."))
        data = validated(
            ResponseCreate,
            {
                "member_id": member.member_id,
                "answers": given.answers,
                "invitation_id": found.invitation_id,
                "channel": "app",
            },
        )

        async def work(conn: AsyncConnection, program: ProgramContext) -> Any:
            return await survey_service.respond(
                conn, program, key, data, idempotency_key, clock.now()
            )

        await member_transaction(request, work)
    except (InvalidInput, Conflict) as exc:
        if isinstance(exc, NotOpen):
            errors = {"form": exc.detail}
        else:
            errors = answer_errors(exc, language, questions, given)
        status = 409 if isinstance(exc, Conflict) else 422
        return _survey_page(
            request, member, found, given=given.shown, errors=errors, attempt=attempt, status=status
        )
    return redirect(request, app_url(member.slug, f"surveys/{key}/thanks"))


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


@router.get("/{slug}/surveys/{key}/thanks")
async def thanks_page(request: Request, member: SignedInMember, key: str) -> Response:
    """Thanks for the answers, and what else the member may answer."""

    async def work(conn: AsyncConnection, program: ProgramContext) -> Survey:
        return await survey_service.get(conn, program, key)

    survey = await member_read(request, work)
    return render(
        request,
        "app/surveys/thanks.html",
        {"slug": member.slug, "program_name": member.program.name, "survey": survey},
        zone=member.program.settings.timezone,
    )
