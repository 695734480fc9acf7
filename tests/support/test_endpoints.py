"""Support over HTTP on both databases: interactions, tickets with their workflow and SLA,
surveys with their answers and scores, permissions."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.support.tasks import check_sla
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body
from tests.staff.test_endpoints import make_staff

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
NPS = {
    "key": "after-purchase",
    "name": "After a purchase",
    "trigger": "purchase",
    "questions": [
        {"id": "nps", "type": "nps", "text": "Would you recommend us?"},
        {"id": "why", "type": "choice", "text": "Why?", "options": ["price", "staff"]},
        {"id": "note", "type": "text", "text": "Anything else?", "required": False},
    ],
}


async def member(api: Api, **fields: Any) -> str:
    created = await api.post("/v1/members", member_body(**fields))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def ticket(api: Api, member_id: str, **fields: Any) -> dict[str, Any]:
    body = {"member_id": member_id, "subject": "Points missing", "body": "Where are they?"}
    opened = await api.post("/v1/tickets", body | fields)
    assert opened.status_code == 201, opened.text
    found: dict[str, Any] = opened.json()
    return found


async def test_interactions_are_logged_and_listed_newest_first(api: Api) -> None:
    anna = await member(api)
    with clock.frozen(T0):
        first = await api.post(
            f"/v1/members/{anna}/interactions",
            {
                "kind": "call",
                "direction": "inbound",
                "summary": "Asked about points",
                "outcome": "resolved",
                "store": "store-01",
            },
        )
        assert first.status_code == 201, first.text
        assert first.json()["logged_by"]["kind"] == "staff"
        assert first.json()["occurred_at"] == "2031-03-03T12:00:00Z"
        second = await api.post(
            f"/v1/members/{anna}/interactions",
            {
                "kind": "note",
                "summary": "Prefers e-mail",
                "outcome": "other",
                "outcome_note": "no calls please",
                "occurred_at": "2031-03-03T14:00:00+00:00",
            },
        )
        assert second.status_code == 201, second.text
        wrong = await api.post(
            f"/v1/members/{anna}/interactions",
            {"kind": "visit", "direction": "inbound", "summary": "x"},
        )
        assert wrong.status_code == 422
        assert wrong.json()["errors"][0]["field"] == "direction"
    listed = await api.get(f"/v1/members/{anna}/interactions", limit=1)
    assert listed.status_code == 200
    assert [i["summary"] for i in listed.json()["items"]] == ["Prefers e-mail"]
    more = await api.get(f"/v1/members/{anna}/interactions", cursor=listed.json()["next_cursor"])
    assert [i["summary"] for i in more.json()["items"]] == ["Asked about points"]


async def test_ticket_workflow_sla_and_transitions(api: Api, engine: AsyncEngine) -> None:
    anna = await member(api)
    with clock.frozen(T0):
        opened = await ticket(api, anna, priority="high", store="store-01")
        tid = opened["id"]
        assert opened["status"] == "new"
        # high: 4 h to the first response, 24 h to resolution (the defaults)
        assert opened["sla"]["first_response_due_at"] == "2031-03-03T16:00:00Z"
        assert opened["sla"]["resolution_due_at"] == "2031-03-04T12:00:00Z"
        assert opened["messages"][0]["body"] == "Where are they?"
        bad = await api.patch(f"/v1/tickets/{tid}", {"status": "lost"})
        assert bad.status_code == 422
    with clock.frozen(T0 + timedelta(hours=1)):
        replied = await api.post(
            f"/v1/tickets/{tid}/replies", {"body": "Checking", "status": "waiting"}
        )
        assert replied.status_code == 201, replied.text
        assert replied.json()["status"] == "waiting"
        assert replied.json()["sla"]["first_responded_at"] == "2031-03-03T13:00:00Z"
        assert replied.json()["sla"]["paused"] is True
        note = await api.post(f"/v1/tickets/{tid}/notes", {"body": "VIP, be quick"})
        assert note.status_code == 201
    with clock.frozen(T0 + timedelta(hours=11)):
        # The member answers after 10 hours of waiting: reopened, resolution due 10 h later.
        back = await api.post(f"/v1/members/{anna}/tickets/{tid}/replies", {"body": "Any news?"})
        assert back.status_code == 201, back.text
        assert back.json()["status"] == "open"
        mine = (await api.get(f"/v1/members/{anna}/tickets")).json()["items"][0]
        assert [m["body"] for m in mine["messages"]] == ["Where are they?", "Checking", "Any news?"]
        full = (await api.get(f"/v1/tickets/{tid}")).json()
        assert full["sla"]["resolution_due_at"] == "2031-03-04T22:00:00Z"
        assert "VIP, be quick" in [m["body"] for m in full["messages"]]
        resolved = await api.patch(f"/v1/tickets/{tid}", {"status": "resolved"})
        assert resolved.json()["status"] == "resolved"
        refused = await api.patch(f"/v1/tickets/{tid}", {"status": "waiting"})
        assert refused.status_code == 409
        assert refused.json()["errors"][0]["field"] == "status"
        closed = await api.patch(f"/v1/tickets/{tid}", {"status": "closed"})
        assert closed.json()["status"] == "closed"
        final = await api.patch(f"/v1/tickets/{tid}", {"status": "open"})
        assert final.status_code == 409
        late = await api.post(f"/v1/members/{anna}/tickets/{tid}/replies", {"body": "Hello?"})
        assert late.status_code == 409


async def test_breach_job_flags_and_the_queue_filters(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    with clock.frozen(T0):
        urgent = await ticket(api, anna, priority="urgent")
        low = await ticket(api, anna, priority="low")
        waiting = await ticket(api, anna, priority="urgent")
        await api.patch(f"/v1/tickets/{waiting['id']}", {"status": "waiting"})
    with clock.frozen(T0 + timedelta(hours=2)):
        queue = (await api.get("/v1/tickets")).json()["items"]
        assert [t["id"] for t in queue][:1] == [urgent["id"]]  # the nearest deadline first
        assert {t["id"]: t["breached"] for t in queue} == {
            urgent["id"]: True,
            low["id"]: False,
            waiting["id"]: False,
        }
        report = await check_sla(engine, program.id, clock.now())
        assert (report.tickets, report.first_response, report.resolution) == (1, 1, 0)
        again = await check_sla(engine, program.id, clock.now())
        assert again.tickets == 0
        breached = (await api.get("/v1/tickets", breached="true")).json()["items"]
        assert [t["id"] for t in breached] == [urgent["id"]]


async def test_permissions_and_other_programs(
    api: Api, http: httpx.AsyncClient, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api)
    opened = await ticket(api, anna)
    partner = Api(http, await make_key(engine, program, "partner"))
    assert (await partner.get("/v1/tickets")).status_code == 403
    assert (await partner.post("/v1/tickets", {"member_id": anna})).status_code == 403
    analyst = Api(http, await make_key(engine, program, "analyst"))
    denied = await analyst.post(
        f"/v1/members/{anna}/interactions", {"kind": "note", "summary": "x"}
    )
    assert denied.status_code == 403
    assert (await analyst.post("/v1/surveys", NPS)).status_code == 403
    other = await make_program(engine)
    stranger = Api(http, await make_key(engine, other, "admin"))
    assert (await stranger.get(f"/v1/tickets/{opened['id']}")).status_code == 404
    assert (await stranger.get(f"/v1/members/{anna}/interactions")).status_code == 404
    moved = await stranger.patch(f"/v1/tickets/{opened['id']}", {"status": "open"})
    assert moved.status_code == 404


async def test_member_ticket_about_a_purchase_takes_its_store(api: Api) -> None:
    external = "m-" + str(datetime.now().timestamp())
    anna = await member(api, external_id=external)
    bought = await api.post("/v1/purchases", purchase_body(external, 50_000, store="store-09"))
    assert bought.status_code == 201, bought.text
    opened = await api.post(
        f"/v1/members/{anna}/tickets",
        {
            "subject": "Wrong price",
            "body": "Charged twice",
            "category": "purchase",
            "purchase_external_id": bought.json()["external_id"],
        },
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["store"] == "store-09"
    assert opened.json()["opened_by"]["kind"] == "member"
    unknown = await api.post(
        f"/v1/members/{anna}/tickets", {"subject": "x", "body": "y", "category": "nonsense"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "category"


async def test_survey_answers_validation_versions_and_scores(api: Api) -> None:
    created = await api.post("/v1/surveys", NPS)
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "nps"
    members = [await member(api) for _ in range(4)]
    bad = await api.post(
        "/v1/surveys/after-purchase/responses",
        {
            "member_id": members[0],
            "answers": [
                {"question": "nps", "value": 9},
                {"question": "why", "value": "price"},
                {"question": "note", "value": 5},
            ],
        },
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "answers.2.value"
    with clock.frozen(T0):
        for who, score, store in zip(members, (10, 9, 6, 3), ("A", "A", "B", "B"), strict=True):
            answered = await api.post(
                "/v1/surveys/after-purchase/responses",
                {
                    "member_id": who,
                    "store": store,
                    "answers": [
                        {"question": "nps", "value": score},
                        {"question": "why", "value": "staff"},
                    ],
                },
            )
            assert answered.status_code == 201, answered.text
    scored = (await api.get("/v1/surveys/after-purchase/scores", by="store")).json()
    assert scored["overall"]["nps"] == 0  # 2 promoters − 2 detractors
    assert [(g["group"], g["nps"], g["responses"]) for g in scored["groups"]] == [
        ("A", 100, 2),
        ("B", -100, 2),
    ]
    monthly = (await api.get("/v1/surveys/after-purchase/scores", by="month")).json()
    assert [g["group"] for g in monthly["groups"]] == ["2031-03"]
    changed = await api.patch(
        "/v1/surveys/after-purchase",
        {"questions": [{"id": "nps", "type": "nps", "text": "Recommend?"}]},
    )
    assert changed.json()["version"] == 2  # version 1 has answers: it stays as it was
    listed = (await api.get("/v1/surveys/after-purchase/responses")).json()["items"]
    assert {r["version"] for r in listed} == {1}


async def test_an_answer_is_an_activity_a_rule_rewards(
    http: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rule = {
        "id": "survey-badge",
        "trigger": "event",
        "event": "survey_answered",
        "effects": [{"type": "points", "amount": 50}, {"type": "tag", "tag": "survey_taker"}],
    }
    program = await make_program(engine, rules=[rule])
    api = Api(http, await make_key(engine, program, "admin"))
    anna = await member(api)
    await api.post("/v1/surveys", NPS | {"trigger": "manual"})
    answered = await api.post(
        "/v1/surveys/after-purchase/responses",
        {
            "member_id": anna,
            "answers": [{"question": "nps", "value": 8}, {"question": "why", "value": "price"}],
        },
        **{"Idempotency-Key": "answer-1"},
    )
    assert answered.status_code == 201, answered.text
    again = await api.post(
        "/v1/surveys/after-purchase/responses",
        {
            "member_id": anna,
            "answers": [{"question": "nps", "value": 8}, {"question": "why", "value": "price"}],
        },
        **{"Idempotency-Key": "answer-1"},
    )
    assert again.status_code == 201 and again.json()["id"] == answered.json()["id"]
    balance = (await api.get(f"/v1/members/{anna}/balance")).json()
    points = next(b for b in balance["balances"] if b["currency"] == "points")
    assert points["available"] == 50
    profile = (await api.get(f"/v1/members/{anna}")).json()
    assert "survey_taker" in profile["tags"]


async def test_a_ticket_is_assigned_only_to_active_staff_who_handle_tickets(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    _, agent = await make_staff(engine, program, Role.SUPPORT)
    _, cashier = await make_staff(engine, program, Role.CASHIER)
    _, elsewhere = await make_staff(engine, await make_program(engine), Role.SUPPORT)
    opened = await ticket(api, await member(api))
    path = f"/v1/tickets/{opened['id']}"
    for wrong in (cashier, elsewhere):
        refused = await api.patch(path, {"assignee_id": str(wrong)})
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "assignee_id"
    assigned = await api.patch(path, {"assignee_id": str(agent)})
    assert assigned.status_code == 200 and assigned.json()["assignee_id"] == str(agent)
    queue = (await api.get("/v1/tickets", assignee_id=str(agent))).json()["items"]
    assert [t["id"] for t in queue] == [opened["id"]]
