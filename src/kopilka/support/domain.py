"""Support's pure rules: interactions' vocabulary, a ticket's statuses and the transitions
between them, SLA deadlines and their pause, and the surveys' questions, answers and scores.

No database, no web framework, no clock: every function takes the instant it needs.
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from uuid import UUID

# --- interactions ---------------------------------------------------------------------------


class InteractionKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    CHAT = "chat"
    VISIT = "visit"
    NOTE = "note"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    FOLLOW_UP = "follow_up"
    NO_ANSWER = "no_answer"
    LEFT_MESSAGE = "left_message"
    COMPLAINT = "complaint"
    SALE = "sale"
    INFORMATION = "information"
    OTHER = "other"


# A visit and a note have no direction: the member came in, or staff wrote something down.
DIRECTED_KINDS = frozenset({InteractionKind.CALL, InteractionKind.EMAIL, InteractionKind.CHAT})


# --- tickets --------------------------------------------------------------------------------


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"  # on the member: the SLA clock stops
    RESOLVED = "resolved"
    CLOSED = "closed"  # final


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


S = TicketStatus
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.WAITING, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.WAITING, S.RESOLVED, S.CLOSED}),
    S.WAITING: frozenset({S.OPEN, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
}
# Statuses in which nothing more is owed to the member: no deadline runs.
DONE = frozenset({S.RESOLVED, S.CLOSED})

DEFAULT_CATEGORIES = (
    "points",
    "purchase",
    "rewards",
    "account",
    "complaint",
    "suggestion",
    "other",
)
# Hours to the first response and to resolution, per priority (calendar hours).
DEFAULT_SLA_HOURS: dict[Priority, tuple[int, int]] = {
    Priority.LOW: (48, 240),
    Priority.NORMAL: (24, 120),
    Priority.HIGH: (4, 24),
    Priority.URGENT: (1, 8),
}


class QueueOrder(StrEnum):
    """How a list of tickets is ordered: the nearest deadline first (the queue), or by
    when they were opened."""

    DEADLINE = "deadline"
    NEWEST = "newest"
    OLDEST = "oldest"


def queue_statuses(status: Sequence[TicketStatus] | None) -> list[str]:
    """The statuses a queue shows: those asked for, else the tickets still owed something
    (new, open, waiting)."""
    return [str(s) for s in status] if status else [str(s) for s in S if s not in DONE]


def may_move(current: TicketStatus, target: TicketStatus) -> bool:
    """Whether a ticket in ``current`` may be moved to ``target`` (staying is no move)."""
    return target == current or target in TRANSITIONS[current]


def member_reply_status(current: TicketStatus) -> TicketStatus | None:
    """The status a ticket takes when the member writes on it (a reply to a waiting or
    resolved ticket reopens it); None: the ticket is closed and takes no more replies."""
    if current is S.CLOSED:
        return None
    if current in (S.WAITING, S.RESOLVED):
        return S.OPEN
    return current


@dataclass(frozen=True)
class Sla:
    """A ticket's SLA clock: its two deadlines, when its first response came, and when its
    pause (waiting on the member) began."""

    first_response_due_at: datetime
    resolution_due_at: datetime
    first_responded_at: datetime | None = None
    paused_at: datetime | None = None

    @classmethod
    def start(cls, opened_at: datetime, first_response: timedelta, resolution: timedelta) -> "Sla":
        return cls(opened_at + first_response, opened_at + resolution)

    @property
    def due_at(self) -> datetime:
        """The deadline that matters next: the first response's until it is given."""
        if self.first_responded_at is None:
            return self.first_response_due_at
        return self.resolution_due_at

    def paused(self, at: datetime) -> "Sla":
        if self.paused_at is not None:
            return self
        return Sla(self.first_response_due_at, self.resolution_due_at, self.first_responded_at, at)

    def resumed(self, at: datetime) -> "Sla":
        """The clock running again: the deadlines still ahead move on by the pause (a
        first response already given keeps its deadline, which no longer matters)."""
        if self.paused_at is None:
            return self
        pause = max(at - self.paused_at, timedelta(0))
        first = self.first_response_due_at
        if self.first_responded_at is None:
            first += pause
        return Sla(first, self.resolution_due_at + pause, self.first_responded_at, None)

    def responded(self, at: datetime) -> "Sla":
        if self.first_responded_at is not None:
            return self
        return Sla(self.first_response_due_at, self.resolution_due_at, at, self.paused_at)

    def for_status(self, status: TicketStatus, at: datetime) -> "Sla":
        """The clock as a ticket moving to ``status`` at ``at`` has it: stopped while waiting
        on the member or done, running otherwise."""
        if status is S.WAITING or status in DONE:
            return self.paused(at)
        return self.resumed(at)

    def breaches(
        self, status: TicketStatus, now: datetime, resolved_at: datetime | None = None
    ) -> tuple[bool, bool]:
        """(first response breached, resolution breached) as of ``now``: a deadline is
        breached when it passed before it was met; a paused clock counts up to its pause."""
        clock_at = self.paused_at or now
        if self.first_responded_at is not None:
            first = self.first_responded_at > self.first_response_due_at
        else:
            first = clock_at > self.first_response_due_at
        if resolved_at is not None and status in DONE:
            resolution = resolved_at > self.resolution_due_at
        else:
            resolution = clock_at > self.resolution_due_at
        return first, resolution


# --- surveys --------------------------------------------------------------------------------


class QuestionType(StrEnum):
    NPS = "nps"  # 0–10
    CSAT = "csat"  # 1–5
    RATING = "rating"  # 1–scale
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    TEXT = "text"


class SurveyTrigger(StrEnum):
    MANUAL = "manual"  # answered from the app, no invitation
    PURCHASE = "purchase"
    TICKET_RESOLVED = "ticket_resolved"


SCORED = (QuestionType.NPS, QuestionType.CSAT)
MAX_TEXT_ANSWER = 2000


@dataclass(frozen=True)
class Question:
    id: str
    type: QuestionType
    text: str
    required: bool = True
    options: tuple[str, ...] = ()
    scale: int = 5  # rating: 1..scale
    max_choices: int | None = None  # multi_choice

    def bounds(self) -> tuple[int, int] | None:
        if self.type is QuestionType.NPS:
            return 0, 10
        if self.type is QuestionType.CSAT:
            return 1, 5
        if self.type is QuestionType.RATING:
            return 1, self.scale
        return None


class AnswerProblem(ValueError):
    """An answer that does not fit its question; ``field`` names it (``answers.2.value``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def scored_question(questions: Sequence[Question]) -> Question | None:
    """The question whose answer is the survey's score: its first NPS or CSAT question."""
    return next((q for q in questions if q.type in SCORED), None)


def survey_kind(questions: Sequence[Question]) -> str:
    """``nps``, ``csat``, or ``custom`` for a survey without a scored question."""
    scored = scored_question(questions)
    return str(scored.type) if scored else "custom"


def check_answers(questions: Sequence[Question], answers: Sequence[tuple[str, Any]]) -> None:
    """Each answer (question id, value) against its question, in the order given; every
    required question answered; no question twice. ``AnswerProblem`` names the first fault."""
    by_id = {q.id: q for q in questions}
    seen: set[str] = set()
    for index, (question_id, value) in enumerate(answers):
        question = by_id.get(question_id)
        if question is None:
            raise AnswerProblem(
                f"no question {question_id!r} in this survey "
                f"(it has: {', '.join(by_id) or 'none'})",
                f"answers.{index}.question",
            )
        if question_id in seen:
            raise AnswerProblem(
                f"question {question_id!r} is answered twice", f"answers.{index}.question"
            )
        seen.add(question_id)
        problem = _value_problem(question, value)
        if problem is not None:
            raise AnswerProblem(problem, f"answers.{index}.value")
    missing = [q.id for q in questions if q.required and q.id not in seen]
    if missing:
        raise AnswerProblem(f"required question(s) not answered: {', '.join(missing)}", "answers")


def _value_problem(question: Question, value: Any) -> str | None:
    bounds = question.bounds()
    if bounds is not None:
        low, high = bounds
        # A boolean is an int in Python, and no one's score.
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return f"{question.type} answer must be a whole number from {low} to {high}"
        return None
    if question.type is QuestionType.CHOICE:
        if not isinstance(value, str) or value not in question.options:
            return f"answer must be one of: {', '.join(question.options)}"
        return None
    if question.type is QuestionType.MULTI_CHOICE:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "answer must be a list of options"
        if len(set(value)) != len(value):
            return "an option is chosen twice"
        unknown = [v for v in value if v not in question.options]
        if unknown:
            return f"not an option: {unknown[0]!r} (options: {', '.join(question.options)})"
        if question.required and not value:
            return "choose at least one option"
        if question.max_choices is not None and len(value) > question.max_choices:
            return f"choose at most {question.max_choices} options"
        return None
    if not isinstance(value, str):
        return "answer must be text"
    if len(value) > MAX_TEXT_ANSWER:
        return f"answer is longer than {MAX_TEXT_ANSWER} characters"
    if question.required and not value.strip():
        return "answer must not be empty"
    return None


def score_of(questions: Sequence[Question], answers: Sequence[tuple[str, Any]]) -> int | None:
    scored = scored_question(questions)
    if scored is None:
        return None
    found = next((v for q, v in answers if q == scored.id), None)
    return found if isinstance(found, int) else None


def sampled(occasion: str, percent: int) -> bool:
    """Whether an occasion (a purchase, a ticket) is in the sample: a hash of its id, so the
    same occasion seen again (an event delivered twice) gets the same answer."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    digest = hashlib.sha256(occasion.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def cooled_down(last_invited: datetime | None, now: datetime, cooldown_days: int) -> bool:
    """Whether a member last invited at ``last_invited`` may be asked again at ``now``."""
    return last_invited is None or now - last_invited >= timedelta(days=cooldown_days)


# --- scores ---------------------------------------------------------------------------------


class ScoreGroup(StrEnum):
    STORE = "store"
    MONTH = "month"
    STAFF = "staff"


@dataclass(frozen=True)
class ScoredAnswer:
    answered_at: datetime
    store: str | None
    staff_id: UUID | None
    score: int


@dataclass
class Score:
    """The figures of one group of answers. ``nps`` = % promoters (9–10) − % detractors
    (0–6), a whole number from −100 to 100 (rounded half away from zero); ``csat`` = %
    satisfied (4–5), a whole number from 0 to 100; ``average`` to two decimals."""

    group: str | None
    responses: int = 0
    total: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0
    satisfied: int = 0
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, score: int, times: int = 1) -> None:
        """``times`` answers of ``score``."""
        self.responses += times
        self.total += score * times
        self.histogram[score] = self.histogram.get(score, 0) + times
        if score >= 9:
            self.promoters += times
        elif score >= 7:
            self.passives += times
        else:
            self.detractors += times
        if score >= 4:
            self.satisfied += times

    @property
    def average(self) -> float | None:
        return round(self.total / self.responses, 2) if self.responses else None

    @property
    def nps(self) -> int | None:
        if not self.responses:
            return None
        return _percent(self.promoters - self.detractors, self.responses)

    @property
    def csat(self) -> int | None:
        if not self.responses:
            return None
        return _percent(self.satisfied, self.responses)


def _percent(part: int, whole: int) -> int:
    """100 × part / whole, rounded half away from zero, in integers only."""
    scaled = 200 * abs(part) + whole
    value = scaled // (2 * whole)
    return value if part >= 0 else -value


def group_key(answer: ScoredAnswer, by: ScoreGroup, zone: tzinfo = UTC) -> str | None:
    """The group of an answer: its store, its staff member, or its month (``2026-11``) in
    the program's time zone."""
    if by is ScoreGroup.STORE:
        return answer.store
    if by is ScoreGroup.STAFF:
        return str(answer.staff_id) if answer.staff_id else None
    return answer.answered_at.astimezone(zone).strftime("%Y-%m")


def scores(
    answers: Iterable[ScoredAnswer], by: ScoreGroup, zone: tzinfo = UTC
) -> tuple[Score, list[Score]]:
    """The figures of all answers and of each group, groups in key order (no key last)."""
    overall = Score(None)
    groups: dict[str | None, Score] = {}
    for answer in answers:
        overall.add(answer.score)
        key = group_key(answer, by, zone)
        groups.setdefault(key, Score(key)).add(answer.score)
    ordered = sorted(groups.values(), key=lambda s: (s.group is None, s.group or ""))
    return overall, ordered


def score_of_counts(counts: Mapping[int, int], group: str | None = None) -> Score:
    """The figures of answers counted per score (score → how many gave it)."""
    score = Score(group)
    for value, times in sorted(counts.items()):
        score.add(value, times)
    return score
