"""Support's pure rules: ticket transitions, SLA deadlines and their pause, answers checked
against their questions, and the score formulas. No database."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopilka.support.domain import (
    AnswerProblem,
    Question,
    QuestionType,
    ScoredAnswer,
    ScoreGroup,
    Sla,
    TicketStatus,
    check_answers,
    may_move,
    member_reply_status,
    sampled,
    scores,
)

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
S = TicketStatus


def test_closed_is_final_and_resolved_only_reopens_or_closes() -> None:
    assert not any(may_move(S.CLOSED, s) for s in S if s is not S.CLOSED)
    assert may_move(S.RESOLVED, S.OPEN) and may_move(S.RESOLVED, S.CLOSED)
    assert not may_move(S.RESOLVED, S.WAITING)
    assert not may_move(S.OPEN, S.NEW)
    assert member_reply_status(S.WAITING) is S.OPEN
    assert member_reply_status(S.RESOLVED) is S.OPEN
    assert member_reply_status(S.NEW) is S.NEW
    assert member_reply_status(S.CLOSED) is None


def test_a_pause_moves_the_deadlines_still_ahead() -> None:
    sla = Sla.start(T0, timedelta(hours=4), timedelta(hours=24))
    assert sla.due_at == T0 + timedelta(hours=4)
    waiting = sla.for_status(S.WAITING, T0 + timedelta(hours=1))
    back = waiting.for_status(S.OPEN, T0 + timedelta(hours=7))
    assert back.first_response_due_at == T0 + timedelta(hours=10)
    assert back.resolution_due_at == T0 + timedelta(hours=30)
    # A first response already given keeps its deadline; the resolution's still moves.
    answered = sla.responded(T0 + timedelta(hours=2)).paused(T0 + timedelta(hours=3))
    later = answered.resumed(T0 + timedelta(hours=5))
    assert later.first_response_due_at == T0 + timedelta(hours=4)
    assert later.resolution_due_at == T0 + timedelta(hours=26)
    assert later.due_at == later.resolution_due_at


def test_a_paused_clock_does_not_breach() -> None:
    sla = Sla.start(T0, timedelta(hours=1), timedelta(hours=8)).paused(T0 + timedelta(minutes=30))
    assert sla.breaches(S.WAITING, T0 + timedelta(days=3)) == (False, False)
    running = Sla.start(T0, timedelta(hours=1), timedelta(hours=8))
    assert running.breaches(S.OPEN, T0 + timedelta(hours=2)) == (True, False)


@given(st.lists(st.integers(min_value=0, max_value=48), min_size=1, max_size=6))
def test_the_deadline_moves_by_exactly_the_time_spent_waiting(pauses: list[int]) -> None:
    sla = Sla.start(T0, timedelta(hours=4), timedelta(hours=24))
    at = T0
    for hours in pauses:
        sla = sla.for_status(S.WAITING, at)
        at += timedelta(hours=hours)
        sla = sla.for_status(S.OPEN, at)
        at += timedelta(minutes=1)
    assert sla.resolution_due_at == T0 + timedelta(hours=24 + sum(pauses))


QUESTIONS = [
    Question("nps", QuestionType.NPS, "Would you recommend us?"),
    Question("csat", QuestionType.CSAT, "How satisfied?", required=False),
    Question("why", QuestionType.CHOICE, "Why?", options=("price", "staff")),
    Question("more", QuestionType.MULTI_CHOICE, "What else?", required=False, options=("a", "b")),
    Question("note", QuestionType.TEXT, "Anything?", required=False),
]


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ([("nps", 9), ("why", "price"), ("csat", 6)], "answers.2.value"),
        ([("nps", 11), ("why", "price")], "answers.0.value"),
        ([("nps", True), ("why", "price")], "answers.0.value"),
        ([("nps", "9"), ("why", "price")], "answers.0.value"),
        ([("nps", 9), ("why", "cheap")], "answers.1.value"),
        ([("nps", 9), ("why", "staff"), ("more", ["a", "a"])], "answers.2.value"),
        ([("nps", 9), ("why", "staff"), ("who", "x")], "answers.2.question"),
        ([("nps", 9), ("nps", 8)], "answers.1.question"),
        ([("nps", 9)], "answers"),
    ],
)
def test_answers_are_checked_against_their_questions(answers: list, field: str) -> None:
    with pytest.raises(AnswerProblem) as refused:
        check_answers(QUESTIONS, answers)
    assert refused.value.field == field


def test_good_answers_pass() -> None:
    check_answers(QUESTIONS, [("nps", 0), ("why", "staff"), ("more", ["b"]), ("note", "ok")])


def test_sampling_is_stable_and_near_its_share() -> None:
    picked = [sampled(f"purchase:{n}", 30) for n in range(2000)]
    assert picked == [sampled(f"purchase:{n}", 30) for n in range(2000)]
    assert 500 < sum(picked) < 700
    assert all(sampled(f"x{n}", 100) for n in range(50))
    assert not any(sampled(f"x{n}", 0) for n in range(50))


def test_scores_hand_computed() -> None:
    at = datetime(2031, 3, 10, tzinfo=UTC)
    data = [("A", 10), ("A", 9), ("A", 7), ("A", 3), ("B", 6), ("B", 10), ("B", 8)]
    answers = [ScoredAnswer(at, store, None, score) for store, score in data]
    overall, groups = scores(answers, ScoreGroup.STORE)
    # 3 promoters, 2 detractors of 7: 100 × 1/7 = 14.29 → 14
    assert (overall.responses, overall.promoters, overall.detractors) == (7, 3, 2)
    assert overall.nps == 14
    assert overall.average == round(53 / 7, 2)
    a, b = groups
    assert (a.group, a.nps) == ("A", 25)  # 2 − 1 of 4
    assert (b.group, b.nps) == ("B", 0)  # 1 − 1 of 3
    csat = [ScoredAnswer(at, "A", None, s) for s in (5, 4, 3, 1, 4, 5)]
    overall, _ = scores(csat, ScoreGroup.MONTH)
    assert overall.csat == 67  # 4 of 6 = 66.67 → 67
    assert _[0].group == "2031-03"
