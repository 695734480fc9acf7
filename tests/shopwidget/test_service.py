"""The widget's service on both databases: who a token stands for, and for how long."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import NotFound, Unauthorized
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.shopwidget.schemas import WidgetSessionCreate, WidgetSettings
from kopilka.shopwidget.service import widget_service
from tests.conftest import make_program

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)


async def _member(engine: AsyncEngine, program: ProgramContext) -> uuid.UUID:
    async with transaction(engine) as conn:
        member = await member_service.register(conn, program, MemberCreate(name="Shopper"), T0)
    return member.id


async def test_a_token_stands_for_its_member_until_it_expires(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    member_id = await _member(engine, program)
    async with transaction(engine) as conn:
        started = await widget_service.start_session(
            conn, program, member_id, WidgetSessionCreate(max_points=300), T0
        )
    async with reading(engine) as conn:
        session = await widget_service.session(
            conn, program, started.token, T0 + timedelta(minutes=59)
        )
        assert (session.member_id, session.program_id) == (member_id, program.id)
        assert (session.max_points, session.points_held, session.points_left) == (300, 0, 300)
        with pytest.raises(Unauthorized):
            await widget_service.session(conn, program, started.token, T0 + timedelta(hours=1))
        other = await make_program(engine)
        with pytest.raises(Unauthorized):
            await widget_service.session(conn, other, started.token, T0)
        with pytest.raises(Unauthorized):
            await widget_service.session(conn, program, started.token + "x", T0)


async def test_no_session_for_a_member_of_another_program(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    member_id = await _member(engine, program)
    other = await make_program(engine)
    async with transaction(engine) as conn:
        with pytest.raises(NotFound):
            await widget_service.start_session(conn, other, member_id, WidgetSessionCreate(), T0)


async def test_the_settings_are_replaced_whole(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    async with transaction(engine) as conn:
        assert await widget_service.allowed_origins(conn, program) == []
        await widget_service.save_settings(
            conn, program, WidgetSettings(allowed_origins=["https://a.example"]), T0
        )
        await widget_service.save_settings(
            conn, program, WidgetSettings(allowed_origins=["https://b.example"]), T0
        )
    async with reading(engine) as conn:
        assert await widget_service.allowed_origins(conn, program) == ["https://b.example"]
        assert (await widget_service.settings(conn, program)).allowed_origins == [
            "https://b.example"
        ]
