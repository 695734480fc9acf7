"""The member's own view of surveys (the app): what they are invited to or may answer, and
one survey as they may answer it now. Answers go through ``survey_service.respond``, as
over the API. Never commits.

What the app offers a member:

- each invitation of theirs not answered, not expired, to a survey still active;
- each active ``manual`` survey (answered from the app, no invitation) they have not
  answered yet: the app asks once.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import NotFound
from kopilka.programs.service import ProgramContext
from kopilka.support.domain import SurveyTrigger
from kopilka.support.member_survey_repository import (
    MemberSurveyRepository,
    member_survey_repository,
)
from kopilka.support.repository import SupportRepository, support_repository
from kopilka.support.schemas import Survey
from kopilka.support.surveys import survey_service

# Active manual surveys the app lists at most (a program has a handful).
MAX_MANUAL_SURVEYS = 100


@dataclass(frozen=True, slots=True)
class OpenSurvey:
    """A survey the member may answer now: by an invitation (until ``expires_at``), or a
    manual one."""

    key: str
    name: str
    description: str | None
    invitation_id: UUID | None
    expires_at: datetime | None


class SurveyState(StrEnum):
    OPEN = "open"  # the member may answer it now
    ANSWERED = "answered"  # this invitation, or this manual survey, is answered
    EXPIRED = "expired"  # the invitation's time is over
    CLOSED = "closed"  # archived, or asked by invitation only and the member has none open


@dataclass(frozen=True, slots=True)
class MemberSurvey:
    survey: Survey
    state: SurveyState
    invitation_id: UUID | None
    expires_at: datetime | None
    answered_at: datetime | None


class MemberSurveyService:
    def __init__(
        self,
        repository: SupportRepository = support_repository,
        member_repository: MemberSurveyRepository = member_survey_repository,
    ) -> None:
        self.repository = repository
        self.member_repository = member_repository

    async def open_surveys(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> list[OpenSurvey]:
        """The surveys the member may answer now: invitations first (newest first), then the
        manual surveys not answered yet (in key order)."""
        invited = await self.member_repository.open_invitations(conn, program.id, member_id, now)
        manual = await self.repository.surveys(
            conn,
            program.id,
            after=None,
            limit=MAX_MANUAL_SURVEYS,
            status="active",
            trigger=str(SurveyTrigger.MANUAL),
        )
        answered = await self.member_repository.last_answers(
            conn, program.id, member_id, [s.id for s in manual]
        )
        found = [OpenSurvey(r.key, r.name, r.description, r.id, r.expires_at) for r in invited]
        found += [
            OpenSurvey(s.key, s.name, s.description, None, None)
            for s in manual
            if s.id not in answered
        ]
        return found

    async def member_survey(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        key: str,
        now: datetime,
        *,
        invitation_id: UUID | None = None,
    ) -> MemberSurvey:
        """The survey ``key`` as the member may answer it now. With ``invitation_id`` (the
        member's invitation to it, else NotFound): open until answered or expired. Without
        one: a manual survey is open until the member answers it; a survey asked by
        invitation takes the member's latest open invitation to it, if any."""
        survey = await survey_service.get(conn, program, key)
        row = await self.repository.survey(conn, program.id, key)
        if invitation_id is not None:
            invitation = await self.repository.invitation(conn, program.id, invitation_id)
            if (
                invitation is None
                or invitation.member_id != member_id
                or invitation.survey_id != row.id
            ):
                raise NotFound(
                    f"no invitation {invitation_id} of this member to this survey",
                    field="invitation_id",
                )
            if invitation.answered_at is not None:
                state = SurveyState.ANSWERED
            elif invitation.expires_at < now:
                state = SurveyState.EXPIRED
            else:
                state = SurveyState.OPEN if survey.status == "active" else SurveyState.CLOSED
            return MemberSurvey(
                survey, state, invitation.id, invitation.expires_at, invitation.answered_at
            )
        if survey.status != "active":
            return MemberSurvey(survey, SurveyState.CLOSED, None, None, None)
        if survey.trigger == SurveyTrigger.MANUAL:
            answered = await self.member_repository.last_answers(
                conn, program.id, member_id, [row.id]
            )
            at = answered.get(row.id)
            state = SurveyState.ANSWERED if at is not None else SurveyState.OPEN
            return MemberSurvey(survey, state, None, None, at)
        invited = await self.member_repository.open_invitations(
            conn, program.id, member_id, now, survey_id=row.id
        )
        if not invited:
            return MemberSurvey(survey, SurveyState.CLOSED, None, None, None)
        latest = invited[0]
        return MemberSurvey(survey, SurveyState.OPEN, latest.id, latest.expires_at, None)


member_survey_service = MemberSurveyService()
