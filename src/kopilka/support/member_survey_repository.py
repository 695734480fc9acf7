"""The queries of the member's own view of surveys: their open invitations, the surveys
they have answered."""

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import one_of
from kopilka.models import Survey, SurveyInvitation, SurveyResponse
from kopilka.models.base import table

surveys_t = table(Survey)
invitations_t = table(SurveyInvitation)
responses_t = table(SurveyResponse)
MAX_OPEN_INVITATIONS = 50


class MemberSurveyRepository:
    async def open_invitations(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        now: datetime,
        *,
        survey_id: UUID | None = None,
    ) -> list[Any]:
        """The member's invitations not yet answered nor expired, to surveys still active,
        newest first, with the survey's key, name and description (``ix_survey_invitations_
        member``)."""
        i = invitations_t.c
        query = (
            select(
                i.id,
                i.survey_id,
                i.created_at,
                i.expires_at,
                surveys_t.c.key,
                surveys_t.c.name,
                surveys_t.c.description,
            )
            .join(surveys_t, surveys_t.c.id == i.survey_id)
            .where(
                i.program_id == program_id,
                i.member_id == member_id,
                i.answered_at.is_(None),
                i.expires_at >= now,
                surveys_t.c.status == "active",
            )
        )
        if survey_id is not None:
            query = query.where(i.survey_id == survey_id)
        query = query.order_by(i.created_at.desc(), i.id.desc()).limit(MAX_OPEN_INVITATIONS)
        return list((await conn.execute(query)).all())

    async def last_answers(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        survey_ids: Collection[UUID],
    ) -> dict[UUID, datetime]:
        """survey → when the member last answered it, for those of ``survey_ids`` they have
        answered."""
        if not survey_ids:
            return {}
        r = responses_t.c
        query = (
            select(r.survey_id, func.max(r.answered_at))
            .where(
                r.program_id == program_id,
                r.member_id == member_id,
                one_of(conn, r.survey_id, set(survey_ids)),
            )
            .group_by(r.survey_id)
        )
        return {row[0]: row[1] for row in (await conn.execute(query)).all()}


member_survey_repository = MemberSurveyRepository()
