"""HTTP routes of shopwidget: the shop's server asks for a member's widget session; an
administrator names the shops whose pages may show the widget. (The widget's own calls,
authenticated by its session, are served outside ``/v1``: ``kopilka.web.app.widget``.)"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter

from kopilka.access.domain import Permission as P
from kopilka.access.domain import Principal
from kopilka.http import EngineDep, in_transaction, read_only, requires
from kopilka.kit.clock import clock
from kopilka.shopwidget.schemas import WidgetSessionCreate, WidgetSessionOut, WidgetSettings
from kopilka.shopwidget.service import widget_service

router = APIRouter(prefix="/v1", tags=["widget"])


@router.post(
    "/members/{member_id}/widget-sessions", status_code=201, response_model=WidgetSessionOut
)
async def create_widget_session(
    member_id: UUID,
    principal: Annotated[Principal, requires(P.PAYMENTS_TAKE)],
    engine: EngineDep,
    body: WidgetSessionCreate | None = None,
) -> WidgetSessionOut:
    """A session of the web-shop widget for the member, for an hour: the shop's server asks
    for it when it renders a page for its signed-in customer and puts the token on the
    widget's script tag. It reads that member's balance, tier and rewards and puts their
    points on hold (at most ``max_points``), through the widget's routes only."""
    data = body or WidgetSessionCreate()
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: widget_service.start_session(
            conn, program, member_id, data, clock.now()
        ),
    )


@router.get("/widget/settings", response_model=WidgetSettings)
async def get_widget_settings(
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)], engine: EngineDep
) -> WidgetSettings:
    """The shops' origins whose pages may call the widget's API."""
    return await read_only(
        engine, principal, lambda conn, program: widget_service.settings(conn, program)
    )


@router.put("/widget/settings", response_model=WidgetSettings)
async def put_widget_settings(
    body: WidgetSettings,
    principal: Annotated[Principal, requires(P.INTEGRATIONS_MANAGE)],
    engine: EngineDep,
) -> WidgetSettings:
    """Replace the shops' origins (``https://shop.example``; plain HTTP only for this
    machine, a shop under development). The widget's API answers other pages with a 403."""
    return await in_transaction(
        engine,
        principal,
        lambda conn, program: widget_service.save_settings(conn, program, body, clock.now()),
    )
