"""Support's services on both databases: a store-limited staff member sees only their
stores' tickets; a public reply reaches the member as a message; an e-mail answering it
comes back onto the ticket and reopens it; a purchase invites to the purchase survey once."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import ROLE_PERMISSIONS, Permission, Principal, Role
from kopilka.db import reading, transaction
from kopilka.errors import Forbidden, NotFound
from kopilka.kit.clock import clock
from kopilka.messaging import inbound
from kopilka.messaging.consumers import CONSUMER
from kopilka.messaging.email import mime
from kopilka.messaging.sender import MessageSender, email_of
from kopilka.messaging.service import messaging_service
from kopilka.outbox.consumers import registry
from kopilka.programs.service import ProgramContext
from kopilka.support import consumers as support_consumers
from kopilka.support.schemas import TicketCreate
from kopilka.support.service import support_service
from kopilka.support.tickets import ticket_service
from kopilka.worker.runner import Worker
from tests.conftest import Api
from tests.fixtures.factories import member_body, purchase_body

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


def staff(program: ProgramContext, stores: frozenset[str] | None) -> Principal:
    return Principal(
        key_id=uuid4(),
        program_id=program.id,
        scopes=frozenset(),
        permissions=ROLE_PERMISSIONS[Role.STORE_MANAGER],
        staff_id=uuid4(),
        name="Olga",
        stores=stores,
    )


async def test_a_store_limited_staff_member_sees_only_their_stores(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = UUID((await api.post("/v1/members", member_body())).json()["id"])
    boss = staff(program, None)
    olga = staff(program, frozenset({"store-01"}))
    assert olga.can(Permission.TICKETS_HANDLE)
    async with transaction(engine) as conn:
        here = await ticket_service.open_ticket(
            conn,
            program,
            olga,
            TicketCreate(member_id=anna, subject="a", body="b", store="store-01"),
            T0,
        )
        there = await ticket_service.open_ticket(
            conn,
            program,
            boss,
            TicketCreate(member_id=anna, subject="c", body="d", store="store-02"),
            T0,
        )
        office = await ticket_service.open_ticket(
            conn, program, boss, TicketCreate(member_id=anna, subject="e", body="f"), T0
        )
        with pytest.raises(Forbidden):
            await ticket_service.open_ticket(
                conn,
                program,
                olga,
                TicketCreate(member_id=anna, subject="g", body="h", store="store-02"),
                T0,
            )
    async with reading(engine) as conn:
        mine = await ticket_service.queue(conn, program, olga, T0)
        assert [t.id for t in mine.items] == [here.id]
        every = await ticket_service.queue(conn, program, boss, T0)
        assert {t.id for t in every.items} == {here.id, there.id, office.id}
        with pytest.raises(NotFound):
            await ticket_service.ticket(conn, program, olga, there.id, T0)
        items = await support_service.member_items(conn, program, anna, principal=olga)
        assert [i.id for i in items] == [here.id]


async def test_a_reply_is_a_message_and_an_email_answer_reopens_the_ticket(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    await api.put("/v1/messaging/settings", {"quiet_hours": None})
    await api.put("/v1/support/settings", {"reply_address": "support@reply.shop.example"})
    anna = (
        await api.post("/v1/members", member_body(email="anna@shop.example", language="en"))
    ).json()["id"]
    boris = (await api.post("/v1/members", member_body(language="en"))).json()["id"]
    with clock.frozen(T0):
        tid = (
            await api.post("/v1/tickets", {"member_id": anna, "subject": "Points", "body": "?"})
        ).json()["id"]
        other = (
            await api.post("/v1/tickets", {"member_id": boris, "subject": "Card", "body": "?"})
        ).json()["id"]
        replied = await api.post(
            f"/v1/tickets/{tid}/replies", {"body": "Done!", "status": "waiting"}
        )
        assert replied.status_code == 201
        await api.post(f"/v1/tickets/{other}/replies", {"body": "Sent a new one"})
        consumer = registry.get(CONSUMER)
        assert consumer is not None
        await Worker(engine, [consumer], senders=[MessageSender(engine, {})]).drain()
    mails = (await api.get("/v1/messages", member_id=anna)).json()["items"]
    assert [(m["kind"], m["channel"]) for m in mails] == [("ticket_reply", "email")]
    async with reading(engine) as conn:
        setup = await messaging_service.setup(conn, program)
    reply_id = next(m for m in replied.json()["messages"] if m["body"] == "Done!")["id"]
    address = inbound.reply_address(setup.secret, "support@reply.shop.example", UUID(reply_id))
    assert address is not None and len(address.partition("@")[0]) <= 64
    detail = (await api.get(f"/v1/messages/{mails[0]['id']}")).json()
    assert address in detail["body"]
    # The member's mail client answers to the ticket's address.
    async with reading(engine) as conn:
        stored, _ = await messaging_service.get(conn, program, UUID(mails[0]["id"]))
    sent = mime(email_of(stored, "shop.example"), "Club <club@shop.example>")
    assert sent["Reply-To"] == address
    inboxed = (await api.get(f"/v1/members/{boris}/messages")).json()["items"]
    assert [m["kind"] for m in inboxed] == ["ticket_reply"]  # no e-mail address: the inbox
    raw = (
        f"From: Anna <anna@shop.example>\r\nTo: {address}\r\nSubject: Re: Points\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Thank you, but one purchase is still missing.\r\n\r\n"
        "On Mon, 3 Mar 2031 at 12:00, Shop <noreply@shop.example> wrote:\r\n> Done!\r\n"
    ).encode()
    url = inbound.inbound_url(setup, program).partition("/m/inbound/")[2]
    with clock.frozen(T0.replace(hour=15)):
        posted = await api.client.post(f"/m/inbound/{url}", content=raw)
        assert posted.status_code == 200, posted.text
        assert posted.text.startswith("added to ticket")
        forged = await api.client.post(f"/m/inbound/{url}x", content=raw)
        assert forged.status_code == 404
    found = (await api.get(f"/v1/tickets/{tid}")).json()
    assert found["status"] == "open"
    assert found["messages"][-1]["body"] == "Thank you, but one purchase is still missing."
    assert found["messages"][-1]["via"] == "email"


async def test_a_purchase_invites_to_the_purchase_survey_once(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    survey = {
        "key": "shop",
        "name": "Your visit",
        "trigger": "purchase",
        "cooldown_days": 30,
        "questions": [{"id": "csat", "type": "csat", "text": "How was it?"}],
    }
    assert (await api.post("/v1/surveys", survey)).status_code == 201
    body = member_body()
    anna = (await api.post("/v1/members", body)).json()["id"]
    with clock.frozen(T0):
        for _ in range(2):
            bought = await api.post(
                "/v1/purchases", purchase_body(body["external_id"], occurred_at=T0.isoformat())
            )
            assert bought.status_code == 201
        handler = registry.get(support_consumers.CONSUMER)
        assert handler is not None
        await Worker(engine, [handler]).drain()
        await Worker(engine, [handler]).drain()
    async with reading(engine) as conn:
        invited = await support_service.repository.last_invited(conn, program.id, UUID(anna))
    assert invited == T0
