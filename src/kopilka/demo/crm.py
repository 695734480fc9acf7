"""The demo's CRM: a team with their roles, a survey after purchases, tickets and calls from
some members, answers to the survey — made through the same services as the API, after the
simulated year, so the console and the API have something to show."""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import ROLE_PERMISSIONS, Principal, Role
from kopilka.kit.ids import new_id
from kopilka.programs.service import ProgramContext
from kopilka.segments.schemas import SegmentCreate
from kopilka.segments.service import segment_service
from kopilka.staff.schemas import StaffCreate, StaffOut
from kopilka.staff.service import staff_service
from kopilka.stores.schemas import StoreCreate
from kopilka.stores.service import store_service
from kopilka.support.schemas import (
    AnswerIn,
    InteractionCreate,
    NoteCreate,
    ReplyCreate,
    ResponseCreate,
    SurveyCreate,
    TicketCreate,
    TicketUpdate,
)
from kopilka.support.service import support_service
from kopilka.support.surveys import survey_service
from kopilka.support.tickets import ticket_service

# The chain's five stores in Moscow (the codes the simulated purchases name), open
# 08:00-23:00 as the simulation has it.
STORES: list[dict[str, Any]] = [
    {
        "code": "store-01",
        "name": "Тверская",
        "address": "Москва, Тверская ул., 12",
        "latitude": 55.7649,
        "longitude": 37.6055,
        "tags": ["flagship", "kitchen"],
    },
    {
        "code": "store-02",
        "name": "Арбат",
        "address": "Москва, ул. Арбат, 24",
        "latitude": 55.7503,
        "longitude": 37.5923,
        "tags": ["kitchen"],
    },
    {
        "code": "store-03",
        "name": "Чистые пруды",
        "address": "Москва, Чистопрудный бул., 8",
        "latitude": 55.7622,
        "longitude": 37.6452,
        "tags": [],
    },
    {
        "code": "store-04",
        "name": "Павелецкая",
        "address": "Москва, Павелецкая пл., 1",
        "latitude": 55.7298,
        "longitude": 37.6389,
        "tags": ["station"],
    },
    {
        "code": "store-05",
        "name": "Сокол",
        "address": "Москва, Ленинградский пр-т, 74",
        "latitude": 55.8053,
        "longitude": 37.5153,
        "tags": [],
    },
]
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STORE_HOURS = {day: ["08:00-23:00"] for day in WEEK}
# Every demo account signs in with this password (a demo on a laptop, never a real one).
DEMO_PASSWORD = "kopilka-demo-2026"
TEAM: list[tuple[str, str, Role, list[str] | None]] = [
    ("owner@demo-cafe.example", "Ольга Соколова", Role.OWNER, None),
    ("marketing@demo-cafe.example", "Марина Ковалёва", Role.MARKETING, None),
    ("crm@demo-cafe.example", "Сергей Павлов", Role.CRM, None),
    ("analyst@demo-cafe.example", "Анна Лебедева", Role.ANALYST, None),
    ("support@demo-cafe.example", "Дмитрий Орлов", Role.SUPPORT, None),
    ("manager01@demo-cafe.example", "Елена Морозова", Role.STORE_MANAGER, ["store-01"]),
    ("cashier01@demo-cafe.example", "Игорь Волков", Role.CASHIER, ["store-01"]),
]
SURVEY_KEY = "after-purchase"
NPS_SURVEY: dict[str, Any] = {
    "key": SURVEY_KEY,
    "name": "Как вам у нас?",
    "trigger": "purchase",
    "sample_percent": 10,
    "cooldown_days": 90,
    "questions": [
        {"id": "nps", "type": "nps", "text": "Порекомендуете ли вы нас друзьям?"},
        {
            "id": "best",
            "type": "choice",
            "text": "Что понравилось больше всего?",
            "options": ["кофе", "выпечка", "персонал", "цены"],
            "required": False,
        },
    ],
}
# (subject, category, the member's words, the reply, what happens to the ticket)
TICKETS: list[tuple[str, str, str, str, str]] = [
    (
        "Не начислились баллы",
        "points",
        "Вчера купил кофе, баллов нет.",
        "Начислили вручную.",
        "resolved",
    ),
    ("Потерял карту", "account", "Можно перевыпустить карту?", "Карта перевыпущена.", "resolved"),
    (
        "Долго ждал заказ",
        "complaint",
        "В кофейне на Тверской 20 минут.",
        "Простите, разберёмся.",
        "waiting",
    ),
    ("Идея", "suggestion", "Добавьте овсяное молоко.", "Передали в закупки.", "closed"),
    ("Подарок не пришёл", "rewards", "Обменял баллы на кружку.", "", "open"),
]


# The marketer's segments, kept current by the worker from then on.
SEGMENTS: list[dict[str, Any]] = [
    {
        "key": "champions",
        "name": "Чемпионы",
        "definition": {"type": "rfm_group", "groups": ["champions"]},
    },
    {
        "key": "at-risk",
        "name": "Под угрозой ухода",
        "definition": {"type": "rfm_group", "groups": ["at_risk", "cant_lose_them"]},
    },
    {
        "key": "quiet-30",
        "name": "Не покупали 30 дней",
        "definition": {"type": "days_since_last_purchase", "min": 30},
    },
    {
        "key": "big-spenders",
        "name": "Потратили от 5 000 ₽ за 90 дней",
        "definition": {"type": "purchases", "measure": "spend", "last_days": 90, "min": 500000},
    },
    {
        "key": "silver-and-gold",
        "name": "Серебро и золото",
        "definition": {"type": "tier", "tiers": ["silver", "gold"]},
    },
    {
        "key": "detractors",
        "name": "Критики (NPS 0–6)",
        "definition": {"type": "survey_score", "survey": SURVEY_KEY, "max": 6},
    },
]


@dataclass
class CrmSummary:
    staff: list[StaffOut] = field(default_factory=list)
    tickets: dict[str, int] = field(default_factory=dict)  # by status
    interactions: int = 0
    answers: int = 0
    segments: dict[str, int] = field(default_factory=dict)  # members per segment


async def open_stores(conn: AsyncConnection, program: ProgramContext, now: datetime) -> None:
    for store in STORES:
        body = StoreCreate.model_validate(
            {**store, "region": "Москва", "timezone": "Europe/Moscow", "hours": STORE_HOURS}
        )
        await store_service.create(conn, program, body, now)


async def set_up_team(
    conn: AsyncConnection, program: ProgramContext, now: datetime
) -> list[StaffOut]:
    """The team, each with their role, and the survey after purchases."""
    team = [
        await staff_service.create(
            conn,
            program.id,
            StaffCreate(email=email, name=name, role=role, stores=stores, password=DEMO_PASSWORD),
            now,
        )
        for email, name, role, stores in TEAM
    ]
    await survey_service.create(conn, program, SurveyCreate.model_validate(NPS_SURVEY), now)
    for segment in SEGMENTS:
        await segment_service.create(conn, program, SegmentCreate.model_validate(segment), now)
    return team


def _as(staff: StaffOut, program: ProgramContext) -> Principal:
    """The staff member acting (the demo does what they would do at the console)."""
    return Principal(
        key_id=new_id(),
        program_id=program.id,
        scopes=frozenset(),
        permissions=ROLE_PERMISSIONS[staff.role],
        staff_id=staff.id,
        name=staff.name,
        stores=frozenset(staff.stores) if staff.stores is not None else None,
    )


async def support_days(
    conn: AsyncConnection,
    program: ProgramContext,
    team: list[StaffOut],
    members: list[UUID],
    rng: random.Random,
    now: datetime,
) -> CrmSummary:
    """A few days of the support desk: tickets opened, answered, resolved; calls logged;
    survey answers."""
    agent = _as(next(s for s in team if s.role is Role.SUPPORT), program)
    summary = CrmSummary(staff=team)
    chosen = rng.sample(members, min(len(members), len(TICKETS) + 40))
    for index, (subject, category, words, reply, outcome) in enumerate(TICKETS):
        # Within the last two days: the members hear of the replies (older events are history).
        at = now - timedelta(hours=6 * (len(TICKETS) - index) + rng.randint(1, 3))
        member = chosen[index]
        ticket = await ticket_service.open_ticket(
            conn,
            program,
            agent,
            TicketCreate.model_validate(
                {
                    "member_id": member,
                    "subject": subject,
                    "body": words,
                    "category": category,
                    "channel": "phone",
                    "assignee_id": agent.staff_id,
                }
            ),
            at,
        )
        if reply:
            await ticket_service.reply(
                conn, program, agent, ticket.id, ReplyCreate(body=reply), at + timedelta(hours=1)
            )
            await ticket_service.note(
                conn, program, agent, ticket.id, NoteCreate(body="Проверено в истории."), at
            )
        if outcome in ("resolved", "waiting", "closed"):
            for status in ("resolved", "closed") if outcome == "closed" else (outcome,):
                await ticket_service.update_ticket(
                    conn,
                    program,
                    agent,
                    ticket.id,
                    TicketUpdate.model_validate({"status": status}),
                    at + timedelta(hours=2),
                )
        summary.tickets[outcome] = summary.tickets.get(outcome, 0) + 1
        await support_service.log_interaction(
            conn,
            program,
            agent,
            member,
            InteractionCreate.model_validate(
                {
                    "kind": "call",
                    "direction": "inbound",
                    "summary": subject,
                    "outcome": "resolved" if outcome != "open" else "follow_up",
                    "occurred_at": at.isoformat(),
                    "ticket_id": str(ticket.id),
                }
            ),
            at,
        )
        summary.interactions += 1
    for member in chosen[len(TICKETS) :]:
        score = rng.choices(range(11), weights=[1, 1, 1, 1, 2, 3, 4, 6, 10, 12, 9])[0]
        answers = [AnswerIn(question="nps", value=score)]
        if rng.random() < 0.5:
            answers.append(
                AnswerIn(question="best", value=rng.choice(["кофе", "выпечка", "персонал", "цены"]))
            )
        await survey_service.respond(
            conn,
            program,
            SURVEY_KEY,
            ResponseCreate(member_id=member, answers=answers, channel="app"),
            None,
            now - timedelta(hours=rng.randint(1, 72)),
        )
        summary.answers += 1
    return summary
