"""A survey's answers and figures as answered: an answer's row, a group's scores with the
distribution of the scores given."""

from typing import Any

from kopilka.support import domain
from kopilka.support.domain import Question, QuestionType
from kopilka.support.schemas import Answer, QuestionIn, ScoreCount, ScoreOut, SurveyResponse


def score_out(score: domain.Score, bounds: tuple[int, int] | None) -> ScoreOut:
    """A group's figures; ``bounds`` (the scored question's lowest and highest score)
    lists every possible score in the distribution, those no one gave with 0."""
    given = score.histogram
    values = range(bounds[0], bounds[1] + 1) if bounds else sorted(given)
    return ScoreOut(
        group=score.group,
        responses=score.responses,
        average=score.average,
        nps=score.nps,
        csat=score.csat,
        promoters=score.promoters,
        passives=score.passives,
        detractors=score.detractors,
        satisfied=score.satisfied,
        distribution=[ScoreCount(score=v, responses=given.get(v, 0)) for v in values],
    )


def response_out(row: Any, key: str) -> SurveyResponse:
    return SurveyResponse(
        id=row["id"],
        survey=key,
        version=row["version"],
        member_id=row["member_id"],
        invitation_id=row["invitation_id"],
        purchase_id=row["purchase_id"],
        ticket_id=row["ticket_id"],
        store=row["store"],
        staff_id=row["staff_id"],
        score=row["score"],
        answers=[Answer(question=a["question"], value=a["value"]) for a in row["answers"]],
        channel=row["channel"],
        answered_at=row["answered_at"],
    )


def questions_of(stored: list[dict[str, Any]]) -> list[Question]:
    """A survey version's questions as stored (JSON) → the domain's."""
    return [
        Question(
            id=q["id"],
            type=QuestionType(q["type"]),
            text=q["text"],
            required=bool(q.get("required", True)),
            options=tuple(q.get("options") or ()),
            scale=int(q.get("scale") or 5),
            max_choices=q.get("max_choices"),
        )
        for q in stored
    ]


def stored_questions(questions: list[QuestionIn]) -> list[dict[str, Any]]:
    """Questions as a survey version stores them."""
    return [q.model_dump(mode="json", exclude_none=True) for q in questions]
