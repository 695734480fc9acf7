"""Message templates read a member's recommendations (the ``recommendations`` variable):
saved, previewed with sample data, and filled when a message is composed."""

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.messaging.composition import Outgoing
from kopilka.messaging.domain import Channel
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import program_service
from tests.conftest import Api
from tests.recommendations.test_service import NOW, shop

TEXT = "{% for r in recommendations %}[{{ r.name }}:{{ r.reason }}]{% endfor %}"


async def test_a_saved_template_lists_the_members_recommendations(
    engine: AsyncEngine, api: Api
) -> None:
    anna = await shop(api)
    with clock.frozen(NOW):
        assert (await api.post("/v1/recommendations/build")).status_code == 200
    saved = await api.put("/v1/templates/points_spent/ru", {"parts": {"text": TEXT}})
    assert saved.status_code == 200, saved.text
    preview = await api.post("/v1/templates/points_spent/preview", {"variables": {"amount": 1}})
    assert preview.json()["parts"]["text"] == "[Кофе в зёрнах, 250 г:bought_with]"

    program_id = (await api.get("/v1/program")).json()["id"]
    async with transaction(engine) as conn:
        program = await program_service.get(conn, UUID(program_id))
        made = await messaging_service.compose(
            conn,
            program,
            [
                Outgoing(
                    "points_spent",
                    UUID(anna["id"]),
                    "rec-1",
                    {"amount": 5},
                    channels=[Channel.INBOX],
                )
            ],
            NOW,
        )
    assert [m.body for m in made] == [
        "[Milk:refill][Espresso:bought_with][Cake:bought_with][Beans:new_in_category]"
    ]


async def test_without_a_text_that_asks_the_variable_is_empty(
    engine: AsyncEngine, api: Api
) -> None:
    anna = await shop(api)
    program_id = (await api.get("/v1/program")).json()["id"]
    async with transaction(engine) as conn:
        program = await program_service.get(conn, UUID(program_id))
        setup = await messaging_service.setup(conn, program)
        batch = await messaging_service.load_batch(
            conn, program, setup, [UUID(anna["id"])], ["points_spent"], NOW
        )
    assert batch.recommendations == {}
