"""Fixtures for the pages: a browser-like client (cookies, HTTPS so that ``Secure`` cookies
come back), a signed-in staff member of any role, a signed-in member."""

import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.app import create_app
from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.memberaccess.service import member_access_service
from kopilka.programs.service import ProgramContext
from kopilka.staff.schemas import StaffCreate
from kopilka.staff.service import staff_service
from kopilka.web.app.access import APP_COOKIE

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """An HTTP client that behaves like a browser on the pages: it keeps cookies and sends
    each form with the page's CSRF token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params)

    async def token(self) -> str:
        known = self.client.cookies.get("kopilka_csrf")
        if known:
            return known
        page = await self.client.get("/console/sign-in")
        found = CSRF.search(page.text)
        assert found, "the sign-in page carries a CSRF token"
        return found.group(1)

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, files: Any = None
    ) -> httpx.Response:
        """A form sent as a browser sends it: with this browser's CSRF token."""
        form = {"csrf_token": await self.token(), **(data or {})}
        return await self.client.post(path, data=form, files=files)


@pytest.fixture
async def browsers(engine: AsyncEngine) -> AsyncIterator[Callable[[], Browser]]:
    """Make any number of browsers (each its own cookies) on one application."""
    app = create_app(engine=engine)
    clients: list[httpx.AsyncClient] = []

    def make() -> Browser:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="https://kopilka.test",
            headers={"accept-language": "en"},
        )
        clients.append(client)
        return Browser(client)

    async with app.router.lifespan_context(app):
        yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def browser(browsers: Callable[[], Browser]) -> Browser:
    return browsers()


async def make_staff(
    engine: AsyncEngine, program: ProgramContext, role: Role, **extra: Any
) -> tuple[str, uuid.UUID]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@shop.example"
    async with transaction(engine) as conn:
        staff = await staff_service.create(
            conn,
            program.id,
            StaffCreate(email=email, name=f"{role} person", role=role, password=PASSWORD, **extra),
            clock.now(),
        )
    return email, staff.id


async def sign_in_staff(browser: Browser, email: str) -> httpx.Response:
    return await browser.post("/console/sign-in", {"email": email, "password": PASSWORD})


async def console_as(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, role: Role, **extra: Any
) -> Browser:
    """``browser`` signed in to the console as a new staff member of ``role``."""
    email, _ = await make_staff(engine, program, role, **extra)
    answer = await sign_in_staff(browser, email)
    assert answer.status_code == 303, answer.text
    return browser


async def app_as(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, member_id: uuid.UUID
) -> Browser:
    """``browser`` signed in to the program's app as the member."""
    async with transaction(engine) as conn:
        token = await member_access_service.start_session(conn, program.id, member_id, clock.now())
    browser.client.cookies.set(
        APP_COOKIE, token, domain="kopilka.test", path=f"/app/{program.slug}/"
    )
    return browser
