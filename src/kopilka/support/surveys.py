"""Surveys: their questions as versioned data, invitations after a purchase or a resolved
ticket (sampled, with a cool-down per member), answers checked against their questions,
and scores per store, month and staff member. Never commits.

An answer is also an activity of the member: it is recorded through the activities
service as the custom event ``survey_answered`` (rules on ``trigger: event``, ``event:
survey_answered`` reward it), once per answer.
"""

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Principal
from kopilka.activities.schemas import ActivityCreate
from kopilka.activities.service import activity_service
from kopilka.errors import Conflict, Forbidden, InvalidInput, NotFound
from kopilka.idempotency.service import idempotency_store
from kopilka.kit.ids import new_id
from kopilka.kit.pagination import encode_cursor
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.outbox.support_events import SurveyAnswered, SurveyInvited
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.support import domain
from kopilka.support.domain import (
    AnswerProblem,
    ScoredAnswer,
    ScoreGroup,
    SurveyTrigger,
)
from kopilka.support.repository import SupportRepository, support_repository
from kopilka.support.schemas import Question as QuestionOut
from kopilka.support.schemas import (
    ResponseCreate,
    ResponsePage,
    ScoreOut,
    Scores,
    Survey,
    SurveyCreate,
    SurveyPage,
    SurveyResponse,
    SurveyUpdate,
)
from kopilka.support.service import support_service
from kopilka.support.survey_rows import (
    questions_of,
    response_out,
    score_out,
    stored_questions,
)

# The custom event a survey answer is recorded as, for the rules.
ANSWERED_EVENT = "survey_answered"
Key = tuple[datetime, UUID]


class SurveyService:
    def __init__(self, repository: SupportRepository = support_repository) -> None:
        self.repository = repository

    # --- definitions -------------------------------------------------------------------------

    async def create(
        self, conn: AsyncConnection, program: ProgramContext, data: SurveyCreate, now: datetime
    ) -> Survey:
        if await self.repository.survey(conn, program.id, data.key) is not None:
            raise Conflict(f"a survey {data.key!r} exists already", field="key")
        row = {
            "id": new_id(),
            "program_id": program.id,
            "key": data.key,
            "name": data.name,
            "description": data.description,
            "version": 1,
            "trigger": str(data.trigger),
            "sample_percent": data.sample_percent,
            "cooldown_days": data.cooldown_days,
            "expires_days": data.expires_days,
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        await self.repository.insert_survey(conn, row)
        await self.repository.insert_version(
            conn,
            {
                "id": new_id(),
                "program_id": program.id,
                "survey_id": row["id"],
                "version": 1,
                "questions": stored_questions(data.questions),
                "created_at": now,
            },
        )
        return await self._answer(conn, row)

    async def get(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        *,
        principal: Principal | None = None,
    ) -> Survey:
        """The survey; its answers counted as its scores are: a store-limited
        ``principal``'s at their stores only."""
        row = (await self._survey(conn, program, key))._mapping
        stores = principal.stores if principal else None
        counts = await self.repository.response_counts(conn, [row["id"]], stores=stores)
        return await self._answer(conn, row, counts.get(row["id"], 0))

    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        *,
        after: str | None,
        limit: int,
        status: str | None = None,
        principal: Principal | None = None,
    ) -> SurveyPage:
        """Surveys in key order, each with its answers counted as ``get`` counts them."""
        rows = await self.repository.surveys(
            conn, program.id, after=after, limit=limit, status=status
        )
        stores = principal.stores if principal else None
        counts = await self.repository.response_counts(conn, [r.id for r in rows], stores=stores)
        items = [await self._answer(conn, r._mapping, counts.get(r.id, 0)) for r in rows]
        last = rows[-1] if len(rows) == limit else None
        return SurveyPage(items=items, next_cursor=encode_cursor(last.key) if last else None)

    async def update(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        data: SurveyUpdate,
        now: datetime,
    ) -> Survey:
        """Change a survey. New questions replace the version in use while it has no
        answers; once it has, they make the next version (answers keep theirs). The same
        questions again change nothing (no new version)."""
        row = dict((await self._survey(conn, program, key, lock=True))._mapping)
        values: dict[str, Any] = {
            name: str(value) if name == "trigger" else value
            for name, value in data.model_dump(exclude_unset=True, exclude={"questions"}).items()
            if value is not None or name == "description"
        }
        current = await self.repository.questions(conn, row["id"], row["version"])
        if data.questions is not None and stored_questions(data.questions) != current:
            answered = await self.repository.response_counts(conn, [row["id"]], row["version"])
            if answered.get(row["id"], 0):
                values["version"] = row["version"] + 1
                await self.repository.insert_version(
                    conn,
                    {
                        "id": new_id(),
                        "program_id": program.id,
                        "survey_id": row["id"],
                        "version": values["version"],
                        "questions": stored_questions(data.questions),
                        "created_at": now,
                    },
                )
            else:
                await self.repository.replace_questions(
                    conn, row["id"], row["version"], stored_questions(data.questions)
                )
        values["updated_at"] = now
        await self.repository.update_survey(conn, row["id"], values)
        return await self._answer(conn, row | values)

    async def _survey(
        self, conn: AsyncConnection, program: ProgramContext, key: str, *, lock: bool = False
    ) -> Any:
        row = await self.repository.survey(conn, program.id, key, lock=lock)
        if row is None:
            raise NotFound(f"survey {key!r} not found", field="key")
        return row

    async def _answer(
        self, conn: AsyncConnection, row: Any, responses: int | None = None
    ) -> Survey:
        stored = await self.repository.questions(conn, row["id"], row["version"])
        questions = questions_of(stored)
        if responses is None:
            responses = (await self.repository.response_counts(conn, [row["id"]])).get(row["id"], 0)
        return Survey(
            key=row["key"],
            name=row["name"],
            description=row["description"],
            kind=domain.survey_kind(questions),
            version=row["version"],
            questions=[QuestionOut.model_validate(q) for q in stored],
            trigger=row["trigger"],
            sample_percent=row["sample_percent"],
            cooldown_days=row["cooldown_days"],
            expires_days=row["expires_days"],
            status=row["status"],
            responses=responses,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    # --- invitations -------------------------------------------------------------------------

    async def after_purchase(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        purchase_id: UUID,
        store: str | None,
        now: datetime,
    ) -> UUID | None:
        """Invite the member to the program's purchase survey about this purchase, if it
        is sampled and the member's cool-down is over."""
        return await self._invite_on(
            conn,
            program,
            SurveyTrigger.PURCHASE,
            member_id,
            f"purchase:{purchase_id}",
            now,
            purchase_id=purchase_id,
            store=store,
        )

    async def after_ticket_resolved(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        ticket_id: UUID,
        store: str | None,
        staff_id: UUID | None,
        now: datetime,
    ) -> UUID | None:
        """Invite the member to the program's ticket survey about this resolved ticket
        (once per ticket, however often it is resolved)."""
        return await self._invite_on(
            conn,
            program,
            SurveyTrigger.TICKET_RESOLVED,
            member_id,
            f"ticket:{ticket_id}",
            now,
            ticket_id=ticket_id,
            store=store,
            staff_id=staff_id,
        )

    async def _invite_on(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        trigger: SurveyTrigger,
        member_id: UUID,
        occasion: str,
        now: datetime,
        *,
        purchase_id: UUID | None = None,
        ticket_id: UUID | None = None,
        store: str | None = None,
        staff_id: UUID | None = None,
    ) -> UUID | None:
        surveys = await self.repository.surveys(
            conn, program.id, after=None, limit=100, status="active", trigger=str(trigger)
        )
        for survey in surveys:
            if not domain.sampled(f"{survey.id}:{occasion}", survey.sample_percent):
                continue
            if await self.repository.invitation_for(conn, survey.id, occasion) is not None:
                return None  # this occasion was seen before (an event delivered twice)
            last = await self.repository.last_invited(conn, program.id, member_id)
            if not domain.cooled_down(last, now, survey.cooldown_days):
                return None
            row = {
                "id": new_id(),
                "program_id": program.id,
                "survey_id": survey.id,
                "member_id": member_id,
                "occasion": occasion,
                "purchase_id": purchase_id,
                "ticket_id": ticket_id,
                "store": store,
                "staff_id": staff_id,
                "created_at": now,
                "expires_at": now + timedelta(days=survey.expires_days),
                "answered_at": None,
            }
            await self.repository.insert_invitation(conn, row)
            async with unit_of_work(conn, now) as uow:
                uow.emit(
                    SurveyInvited(
                        program_id=program.id,
                        member_id=member_id,
                        occurred_at=now,
                        invitation_id=row["id"],
                        survey_key=survey.key,
                        survey_name=survey.name,
                        occasion=occasion.partition(":")[0],
                        purchase_id=purchase_id,
                        ticket_id=ticket_id,
                        store=store,
                        expires_at=row["expires_at"],
                    )
                )
            return UUID(str(row["id"]))
        return None

    # --- answers -----------------------------------------------------------------------------

    async def respond(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        data: ResponseCreate,
        idempotency_key: str | None,
        now: datetime,
        *,
        principal: Principal | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
        """Record a member's answers once: per invitation (the same answers again answer
        with the first, other answers are a 409), or per ``Idempotency-Key``. Returns
        (status, answer, replayed)."""
        survey = await self._survey(conn, program, key)
        await member_service.writable(conn, program, data.member_id)
        if (
            principal is not None
            and data.store is not None
            and not principal.may_act_at(data.store)
        ):
            raise Forbidden(
                f"this staff member does not act at store {data.store!r}", field="store"
            )
        await support_service.check_store(conn, program, data.store)
        # The member lock first, as every change of a member's value takes it: the answer
        # runs the rules, which may credit points.
        await member_service.lock(conn, program, [data.member_id])
        if data.invitation_id is not None:
            return await self._respond_invited(conn, program, survey, data, now)

        async def operation() -> dict[str, Any]:
            return (await self._record(conn, program, survey, data, None, now)).model_dump(
                mode="json"
            )

        async def lock() -> None:
            await member_service.lock(conn, program, [data.member_id])

        store_key = f"survey-response:{idempotency_key}" if idempotency_key else None
        return await idempotency_store.run_once(conn, program.id, store_key, data, operation, lock)

    async def _respond_invited(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        survey: Any,
        data: ResponseCreate,
        now: datetime,
    ) -> tuple[int, dict[str, Any], bool]:
        assert data.invitation_id is not None
        invitation = await self.repository.invitation(
            conn, program.id, data.invitation_id, lock=True
        )
        if (
            invitation is None
            or invitation.survey_id != survey.id
            or invitation.member_id != data.member_id
        ):
            raise NotFound(
                f"no invitation {data.invitation_id} of this member to this survey",
                field="invitation_id",
            )
        answered = await self.repository.response_of_invitation(conn, invitation.id)
        if answered is not None:
            given = [a.model_dump(mode="json") for a in data.answers]
            if given != answered.answers:
                raise Conflict("this invitation has been answered already", field="invitation_id")
            return 200, response_out(answered._mapping, survey.key).model_dump(mode="json"), True
        if invitation.expires_at < now:
            raise Conflict("this invitation has expired", field="invitation_id")
        out = await self._record(conn, program, survey, data, invitation, now)
        await self.repository.mark_answered(conn, invitation.id, now)
        return 201, out.model_dump(mode="json"), False

    async def _record(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        survey: Any,
        data: ResponseCreate,
        invitation: Any,
        now: datetime,
    ) -> SurveyResponse:
        if survey.status != "active":
            raise Conflict(f"survey {survey.key!r} is archived", field="key")
        questions = questions_of(await self.repository.questions(conn, survey.id, survey.version))
        answers = [(a.question, a.value) for a in data.answers]
        try:
            domain.check_answers(questions, answers)
        except AnswerProblem as exc:
            raise InvalidInput(str(exc), field=exc.field) from None
        purchase_id, ticket_id, store, staff_id = await self._occasion(
            conn, program, data, invitation
        )
        score = domain.score_of(questions, answers)
        row = {
            "id": new_id(),
            "program_id": program.id,
            "survey_id": survey.id,
            "version": survey.version,
            "member_id": data.member_id,
            "invitation_id": invitation.id if invitation is not None else None,
            "purchase_id": purchase_id,
            "ticket_id": ticket_id,
            "store": store,
            "staff_id": staff_id,
            "score": score,
            "answers": [{"question": q, "value": v} for q, v in answers],
            "channel": data.channel,
            "answered_at": now,
        }
        await self.repository.insert_response(conn, row)
        kind = domain.survey_kind(questions)
        async with unit_of_work(conn, now) as uow:
            uow.emit(
                SurveyAnswered(
                    program_id=program.id,
                    member_id=data.member_id,
                    occurred_at=now,
                    response_id=row["id"],
                    survey_key=survey.key,
                    survey_version=survey.version,
                    kind=kind,
                    score=score,
                    invitation_id=row["invitation_id"],
                    store=store,
                    staff_id=staff_id,
                    purchase_id=purchase_id,
                    ticket_id=ticket_id,
                    answers=row["answers"],
                )
            )
        # The answer as an activity: the rules on ``survey_answered`` run on it, once (its
        # external id is the answer's).
        attributes: dict[str, Any] = {"survey": survey.key, "kind": kind}
        if score is not None:
            attributes["score"] = score
        if store is not None:
            attributes["store"] = store
        await activity_service.record(
            conn,
            program,
            ActivityCreate(
                member=MemberRef(id=data.member_id),
                external_id=f"survey-response:{row['id']}",
                type="event",
                name=ANSWERED_EVENT,
                occurred_at=now,
                channel=data.channel,
                attributes=attributes,
            ),
            now,
        )
        return response_out(row, survey.key)

    async def _occasion(
        self, conn: AsyncConnection, program: ProgramContext, data: ResponseCreate, invitation: Any
    ) -> tuple[UUID | None, UUID | None, str | None, UUID | None]:
        """(purchase, ticket, store, staff member) the answer is about: the invitation's,
        or the purchase's store, or the ticket's store and assignee."""
        if invitation is not None:
            return (
                invitation.purchase_id,
                invitation.ticket_id,
                invitation.store,
                invitation.staff_id,
            )
        if data.purchase_id is not None:
            found = await self.repository.purchase(conn, program.id, purchase_id=data.purchase_id)
            if found is None or found.member_id != data.member_id:
                raise NotFound(
                    f"no purchase {data.purchase_id} of this member", field="purchase_id"
                )
            return found.id, None, data.store or found.store, None
        if data.ticket_id is not None:
            ticket = await self.repository.ticket(conn, program.id, data.ticket_id)
            if ticket is None or ticket.member_id != data.member_id:
                raise NotFound(f"no ticket {data.ticket_id} of this member", field="ticket_id")
            return None, ticket.id, data.store or ticket.store, ticket.assignee_id
        return None, None, data.store, None

    async def responses(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal | None,
        key: str,
        *,
        member_id: UUID | None = None,
        store: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: Key | None = None,
        limit: int = 50,
    ) -> ResponsePage:
        survey = await self._survey(conn, program, key)
        rows = await self.repository.responses(
            conn,
            survey.id,
            member_id=member_id,
            store=store,
            stores=principal.stores if principal else None,
            since=since,
            until=until,
            before=before,
            limit=limit,
        )
        items = [response_out(r._mapping, key) for r in rows]
        last = items[-1] if len(items) == limit else None
        return ResponsePage(
            items=items, next_cursor=encode_cursor(last.answered_at, last.id) if last else None
        )

    async def scores(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal | None,
        key: str,
        by: ScoreGroup,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Scores:
        """NPS, CSAT, average and counts of the scored answers in [since, until), overall
        and per store, month (in the program's time zone) or staff member."""
        survey = await self._survey(conn, program, key)
        questions = questions_of(await self.repository.questions(conn, survey.id, survey.version))
        stores: Collection[str] | None = principal.stores if principal else None
        rows = await self.repository.scored(
            conn, survey.id, since=since, until=until, stores=stores
        )
        answers = [ScoredAnswer(r.answered_at, r.store, r.staff_id, int(r.score)) for r in rows]
        overall, groups = domain.scores(answers, by, ZoneInfo(program.settings.timezone))
        scored = domain.scored_question(questions)
        bounds = scored.bounds() if scored else None
        return Scores(
            survey=key,
            kind=domain.survey_kind(questions),
            by=str(by),
            since=since,
            until=until,
            overall=score_out(overall, bounds),
            groups=[score_out(g, bounds) for g in groups],
        )

    async def overall_scores(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        principal: Principal | None,
        keys: Collection[str],
    ) -> dict[str, ScoreOut]:
        """The overall figures of several surveys at once (one grouped query), over every
        scored answer a store-limited principal may see: a list of surveys with their
        scores."""
        stores: Collection[str] | None = principal.stores if principal else None
        counts = await self.repository.score_counts(conn, program.id, keys, stores=stores)
        return {
            key: score_out(domain.score_of_counts(histogram), None)
            for key, histogram in counts.items()
        }


survey_service = SurveyService()
